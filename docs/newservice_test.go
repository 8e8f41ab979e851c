// Package docs_test keeps docs/NEW_SERVICE.md true: it follows the page in
// a copy of the repository.
package docs_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prodready/service/internal/servicetest"
)

// TestNewServiceGuide runs every sh block of docs/NEW_SERVICE.md, in order,
// in a copy of the repository's files (tracked, and untracked but not
// ignored): rename the module, remove notes, add the widgets resource. The
// result must build, its configuration, server and health tests
// must pass (the configuration test checks the new section is in
// config.yaml and docs/CONFIGURATION.md), and its binary must show the new
// keys and apply the new migration.
//
// The go commands share this machine's build and module caches, never use
// the network (GOPROXY=off, -mod=readonly) and build as this test binary was
// built (-race under make test), so the dependencies come from the build
// cache and a run costs the compilation of this module's own packages.
func TestNewServiceGuide(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the guide's copy builds the whole module")
	}
	for _, tool := range []string{"git", "perl", "sh"} {
		if _, err := exec.LookPath(tool); err != nil {
			servicetest.Missing(t, tool, "docs/NEW_SERVICE.md's commands need it")
		}
	}
	guide, err := os.ReadFile("NEW_SERVICE.md")
	if err != nil {
		t.Fatal(err)
	}
	steps := shellBlocks(string(guide))
	if len(steps) < 5 {
		t.Fatalf("docs/NEW_SERVICE.md has %d sh blocks; the rename, removal and addition steps are gone", len(steps))
	}
	dir := copyDir(t)
	copyRepository(t, "..", dir)

	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Minute)
	defer cancel()
	run(ctx, t, dir, "step 0", "git", "init", "-q") // a repository with no commit yet, as step 0 leaves it
	for i, step := range steps {
		run(ctx, t, dir, fmt.Sprintf("step %d", i+1), "sh", "-e", "-c", step)
	}

	// The module and the repository are renamed everywhere (the image, the
	// signer the admission policy accepts, links), and notes and this guide
	// are gone.
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			if d != nil && d.Name() == ".git" {
				return filepath.SkipDir
			}
			return err
		}
		b, _ := os.ReadFile(path)
		if bytes.Contains(b, []byte("prodready/service")) {
			t.Errorf("%s still names the template's module or repository", path)
		}
		if filepath.Base(path) == "README.md" && bytes.Contains(b, []byte("NEW_SERVICE.md")) {
			t.Errorf("%s still links to the guide, which the copy no longer has", path)
		}
		return nil
	})
	for _, gone := range []string{"internal/notes", "docs/NEW_SERVICE.md", "docs/newservice_test.go"} {
		if _, err := os.Stat(filepath.Join(dir, gone)); !os.IsNotExist(err) {
			t.Errorf("%s is still there: %v", gone, err)
		}
	}
	for file, want := range map[string]string{
		"deploy/kubernetes/overlays/production/kustomization.yaml": "newName: ghcr.io/yourorg/yourservice",
		"deploy/kubernetes/cluster/signed-images.yaml":             `subject: "https://github.com/yourorg/yourservice/.github/workflows/cd.yml@refs/heads/main"`,
	} {
		if b, _ := os.ReadFile(filepath.Join(dir, file)); !bytes.Contains(b, []byte(want)) {
			t.Errorf("%s does not have %s", file, want)
		}
	}

	// Built and tested, not vetted: go vet analyses every dependency for its
	// facts, minutes of CPU on a cold cache, to check code that make vet
	// checks in the repository itself; -vet=off likewise for go test.
	run(ctx, t, dir, "build", "go", "build", "./...")
	run(ctx, t, dir, "test", "go", "test", "-count=1", "-vet=off", "./internal/config/", "./internal/server/", "./internal/health/", "./internal/resources/", "./internal/widgets/")

	run(ctx, t, dir, "binary", "go", "build", "-o", "bin/api", "./cmd/api")
	db := "APP_DATABASE_SQLITE_PATH=" + filepath.Join(t.TempDir(), "w.db")
	cfg := run(ctx, t, dir, "api config", "env", "APP_ENVIRONMENT=development", "APP_WIDGETS_PAGE_SIZE=7", "bin/api", "config", "--config", "config.yaml")
	if !regexp.MustCompile(`(?m)^widgets\.page_size +7 +env APP_WIDGETS_PAGE_SIZE`).MatchString(cfg) ||
		!regexp.MustCompile(`(?m)^widgets\.check_timeout +1s +config\.yaml:\d+`).MatchString(cfg) || regexp.MustCompile(`(?m)^notes\.`).MatchString(cfg) {
		t.Errorf("api config does not show the widgets section from its variable and the file, or still shows notes:\n%s", cfg)
	}
	run(ctx, t, dir, "migrate up", "env", "APP_ENVIRONMENT=development", db, "bin/api", "migrate", "up")
	if st := run(ctx, t, dir, "migrate status", "env", "APP_ENVIRONMENT=development", db, "bin/api", "migrate", "status"); !regexp.MustCompile(`(?m)20270101000001_create_widgets.*applied`).MatchString(st) {
		t.Errorf("migrate status does not list the widgets migration as applied:\n%s", st)
	}

	// The new service serves its resource: an empty list of widgets.
	port := servicetest.FreePort(t)
	srv := exec.CommandContext(ctx, "bin/api", "serve")
	srv.Dir = dir
	srv.Env = append(os.Environ(), "APP_ENVIRONMENT=development", db, "APP_HTTP_HOST=127.0.0.1", fmt.Sprintf("APP_HTTP_PORT=%d", port), "APP_NEWRELIC_ENABLED=false", "APP_LOG_STDOUT_ENABLED=false")
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Process.Kill(); _ = srv.Wait() })
	url := fmt.Sprintf("http://127.0.0.1:%d/v1/widgets", port)
	var status int
	var body []byte
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if resp, err := http.Get(url); err == nil {
			status = resp.StatusCode
			body, _ = io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			break
		}
	}
	if status != http.StatusOK || strings.TrimSpace(string(body)) != `{"items":[]}` {
		t.Errorf("GET /v1/widgets of the new service: %d %q, want 200 {\"items\":[]}", status, body)
	}
}

// copyDir is an empty directory for the copy, at the same path on every
// run from this checkout: the compiler's output for a package depends on its
// directory, so an unchanged package is found in the build cache next time.
func copyDir(t *testing.T) string {
	t.Helper()
	abs, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(abs))
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("newservice-%x", sum[:6]))
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// shellBlocks returns the bodies of the ```sh blocks of a Markdown page.
func shellBlocks(doc string) []string {
	var out []string
	for _, m := range regexp.MustCompile("(?ms)^```sh\n(.*?)^```$").FindAllStringSubmatch(doc, -1) {
		out = append(out, m[1])
	}
	return out
}

// copyRepository copies the files git lists in repo, tracked and
// untracked-but-not-ignored, as they are in the working tree.
func copyRepository(t *testing.T, repo, dst string) {
	t.Helper()
	cmd := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	cmd.Dir = repo
	out, err := cmd.Output()
	if err != nil {
		servicetest.Missing(t, "git checkout", "the guide is followed in a copy of the repository's files: "+err.Error())
	}
	for name := range strings.SplitSeq(strings.TrimSuffix(string(out), "\x00"), "\x00") {
		src := filepath.Join(repo, name)
		info, err := os.Lstat(src)
		if err != nil || !info.Mode().IsRegular() { // deleted in the working tree, or a link
			continue
		}
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		to := filepath.Join(dst, name)
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, data, info.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
}

// run runs a command in dir, offline, and returns its output; it fails the
// test with the output when it fails.
func run(ctx context.Context, t *testing.T, dir, what string, argv ...string) string {
	t.Helper()
	start := time.Now()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	// Built as this test binary was (servicetest.GoFlags), as the N-1 test
	// builds the previous release: the dependencies come from the build
	// cache, and only this module's packages are compiled again.
	cmd.Env = append(os.Environ(), "GOFLAGS="+servicetest.GoFlags(), "GOPROXY=off", "GOWORK=off", "GOTOOLCHAIN=local")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %s: %v\n%s", what, strings.Join(argv, " "), err, out)
	}
	t.Logf("%s: %s (%s)", what, strings.Join(argv, " "), time.Since(start).Round(100*time.Millisecond))
	return string(out)
}
