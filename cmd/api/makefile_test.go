package main

import (
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// TestMakefile_ServersStopWithMake keeps the long-running targets stoppable
// by make's own PID: make passes SIGTERM to its child, so the server must be
// that child, not a grandchild. `go run` leaves the program it builds running
// when it is killed, and a shell that runs more than one command stays in
// between; so the last command of each target is exec'd, or is the only one.
func TestMakefile_ServersStopWithMake(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make on PATH")
	}
	shellList := regexp.MustCompile(`;|&&|\|\||\|`)
	for _, target := range []string{"run", "run-collector", "run-mailpit", "monitor", "replicate"} {
		t.Run(target, func(t *testing.T) {
			cmd := exec.Command("make", "-n", "--no-print-directory", "-C", "../..", target)
			cmd.Env = append(cmd.Environ(), "STATUS_TOKEN=x")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("make -n %s: %v\n%s", target, err, out)
			}
			// The recipe as make would run it: continued lines joined, the last command.
			lines := strings.Split(strings.TrimSpace(strings.ReplaceAll(string(out), "\\\n", " ")), "\n")
			last := lines[len(lines)-1]
			if strings.Contains(last, "go run") {
				t.Errorf("make %s ends in go run, which leaves the server running when make is stopped: %s", target, last)
			}
			if !strings.Contains(" "+last, " exec ") && shellList.MatchString(last) {
				t.Errorf("make %s runs its server inside a shell list without exec; stopping make would leave it running: %s", target, last)
			}
		})
	}
}
