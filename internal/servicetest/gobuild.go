package servicetest

import (
	"os"
	"runtime/debug"
	"strings"
)

// GoFlags is the GOFLAGS for a go command a test (or make checklist) runs:
// the N-1 test's build of the previous release, the NEW_SERVICE guide's
// build of its copy, the checklist's package tests. Built with the flags the
// running binary was built with, the dependencies come from the build cache
// instead of a second full compile; and always offline-safe (-mod=readonly)
// and without VCS stamping.
//
// Under make test those flags are its GOFLAGS (the Makefile's TEST_GOFLAGS:
// -race, tags, no DWARF), which this process
// inherited. Run any other way (go test -race ./cmd/api/, bin/checklist),
// they are read back from the binary's build information: -race, -tags and
// the last -gcflags (the only one it records).
func GoFlags() string {
	if env := os.Getenv("GOFLAGS"); env != "" {
		return env + " -mod=readonly -buildvcs=false"
	}
	flags := []string{"-mod=readonly", "-buildvcs=false"}
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			switch {
			case s.Key == "-race" && s.Value == "true":
				flags = append(flags, "-race")
			case s.Key == "-tags" && s.Value != "":
				flags = append(flags, "-tags="+s.Value)
			case s.Key == "-gcflags" && s.Value != "":
				flags = append(flags, "'-gcflags="+s.Value+"'")
			}
		}
	}
	return strings.Join(flags, " ")
}
