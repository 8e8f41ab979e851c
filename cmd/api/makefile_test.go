package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestMakefile_BuildStampsAnyCheckout: make build links a version stamp of
// one word per value wherever it runs, including a copy just made with git
// init and no commit yet, as docs/NEW_SERVICE.md's first steps leave it
// (git rev-parse HEAD printed "HEAD" there before failing, the stamp became
// "HEAD unknown", and the linker stopped with its usage).
func TestMakefile_BuildStampsAnyCheckout(t *testing.T) {
	for _, tool := range []string{"make", "git"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skip("no " + tool + " on PATH")
		}
	}
	makefile, err := filepath.Abs("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	stamp := regexp.MustCompile(`-X main\.(\w+)=(\S*)`)
	for _, tc := range []struct {
		name  string
		setup []string // commands run in an empty directory
		want  map[string]string
	}{
		{"not a git checkout", nil, map[string]string{"version": "dev", "commit": "unknown", "commitTime": "unknown"}},
		{"git init, no commit yet", []string{"git init -q"}, map[string]string{"version": "dev", "commit": "unknown", "commitTime": "unknown"}},
		{"one commit", []string{"git init -q", "git -c user.name=t -c user.email=t@example.com commit -q --allow-empty -m first"},
			map[string]string{"commit": "[0-9a-f]{40}", "commitTime": `\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`, "version": "[0-9a-f]{7,}"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			// The stamps come from git here, not from variables (make's ?=), and
			// git must not find the checkout this test runs in.
			env := []string{"GIT_CEILING_DIRECTORIES=" + filepath.Dir(dir)}
			for _, kv := range os.Environ() {
				if k, _, _ := strings.Cut(kv, "="); k != "VERSION" && k != "COMMIT" && k != "COMMIT_TIME" && !strings.HasPrefix(k, "GIT_") {
					env = append(env, kv)
				}
			}
			for _, c := range tc.setup {
				cmd := exec.Command("sh", "-c", c)
				cmd.Dir, cmd.Env = dir, env
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("%s: %v\n%s", c, err, out)
				}
			}
			cmd := exec.Command("make", "-n", "--no-print-directory", "-f", makefile, "build")
			cmd.Dir, cmd.Env = dir, env
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("make -n build: %v\n%s", err, out)
			}
			ldflags := regexp.MustCompile(`-ldflags "([^"]*)"`).FindStringSubmatch(string(out))
			if ldflags == nil {
				t.Fatalf("make -n build shows no -ldflags:\n%s", out)
			}
			got := map[string]string{}
			for _, m := range stamp.FindAllStringSubmatch(ldflags[1], -1) {
				got[m[1]] = m[2]
			}
			// Each -X is followed by another flag or the end: a value of two words would show as a stray one.
			if words := strings.Fields(ldflags[1]); len(words) != 2+2*len(got) {
				t.Errorf("-ldflags %q: a stamp is not one word", ldflags[1])
			}
			for k, want := range tc.want {
				if !regexp.MustCompile("^(" + want + ")$").MatchString(got[k]) {
					t.Errorf("main.%s = %q, want %s (-ldflags %q)", k, got[k], want, ldflags[1])
				}
			}
		})
	}
}

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
