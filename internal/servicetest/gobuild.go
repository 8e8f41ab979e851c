package servicetest

import (
	"runtime/debug"
	"strings"
)

// GoFlags is the GOFLAGS for a go command a test (or make checklist) runs:
// the N-1 test's build of the previous release, the NEW_SERVICE guide's
// build of its copy, the checklist's package tests. Offline-safe
// (-mod=readonly), without VCS stamping, and with the -race, -tags and
// -gcflags this binary was built with (make test: -race, the Makefile's
// GO_TAGS and RACE_GCFLAGS; GOFLAGS cannot carry a value with spaces). Built
// with the running binary's own flags, the dependencies come from the build
// cache instead of a second full compile.
func GoFlags() string {
	flags := []string{"-mod=readonly", "-buildvcs=false"}
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			switch {
			case s.Key == "-race" && s.Value == "true":
				flags = append(flags, "-race")
			case s.Key == "-tags" && s.Value != "":
				flags = append(flags, "-tags="+s.Value)
			case s.Key == "-gcflags" && s.Value != "" && !strings.ContainsAny(s.Value, " \t"):
				flags = append(flags, "-gcflags="+s.Value)
			}
		}
	}
	return strings.Join(flags, " ")
}
