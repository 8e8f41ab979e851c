package servicetest

import (
	"os"
	"regexp"
	"runtime/debug"
	"strings"
	"testing"
)

// MakefileGoTags returns the GO_TAGS line of makefile (the Makefile's
// contents): the build tags of every build and test of the service, which
// the image (.ko.yaml) and the linker check (cmd/api) must use too. It
// fails t when there is none.
func MakefileGoTags(t testing.TB, makefile []byte) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^GO_TAGS := (\S+)$`).FindSubmatch(makefile)
	if m == nil {
		t.Fatal("the Makefile sets no GO_TAGS")
	}
	return string(m[1])
}

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
