package servicetest

import (
	"os/exec"
	"runtime/debug"
	"strings"
	"testing"
)

// The flags a test's own go command gets: make test's GOFLAGS as they are,
// or, run any other way, this binary's own -race and -tags; always readonly
// modules and no VCS stamp. Either way the go command accepts them.
func TestGoFlags(t *testing.T) {
	info, _ := debug.ReadBuildInfo()
	race := false
	for _, s := range info.Settings {
		race = race || (s.Key == "-race" && s.Value == "true")
	}
	tests := []struct {
		name    string
		goflags string
		want    []string
		absent  []string
	}{
		{"under make test", "-race -tags=nomsgpack '-gcflags=all=-dwarf=false -N'",
			[]string{"-race -tags=nomsgpack '-gcflags=all=-dwarf=false -N'", "-mod=readonly", "-buildvcs=false"}, nil},
		{"run by hand", "", []string{"-mod=readonly", "-buildvcs=false"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("GOFLAGS", tt.goflags)
			got := GoFlags()
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("GoFlags() = %q, lacks %q", got, w)
				}
			}
			if tt.goflags == "" && strings.Contains(got, "-race") != race {
				t.Errorf("GoFlags() = %q; this binary was built with -race: %v", got, race)
			}
			// The go command parses them (quotes included).
			cmd := exec.Command("go", "list", "-find", "errors")
			cmd.Env = append(cmd.Environ(), "GOFLAGS="+got)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("go list with GOFLAGS=%q: %v\n%s", got, err, out)
			}
		})
	}
}
