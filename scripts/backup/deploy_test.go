package backup_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/prodready/service/internal/servicetest"
)

// repoRoot is where deploy/ and docs/ are, seen from this package.
const repoRoot = "../.."

func scripts(t *testing.T) []string {
	t.Helper()
	s, err := filepath.Glob("*.sh")
	if err != nil || len(s) < 5 {
		t.Fatalf("scripts: %v %v", s, err)
	}
	return s
}

func TestShellcheck(t *testing.T) {
	t.Parallel()
	needTools(t, "shellcheck")
	out, err := exec.Command("shellcheck", append([]string{"--external-sources", "--severity=style"}, scripts(t)...)...).CombinedOutput() //nolint:gosec // the package's own files
	if err != nil {
		t.Errorf("shellcheck: %v\n%s", err, out)
	}
}

// The CronJob's policies are what make it safe to leave alone: checked
// field by field, as an operator reviewing it would.
func TestCronJob(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join(repoRoot, "deploy", "backup", "cronjob.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cj struct {
		Kind string
		Spec struct {
			Schedule                string
			ConcurrencyPolicy       string `yaml:"concurrencyPolicy"`
			StartingDeadlineSeconds int    `yaml:"startingDeadlineSeconds"`
			JobTemplate             struct {
				Spec struct {
					BackoffLimit          *int `yaml:"backoffLimit"`
					ActiveDeadlineSeconds int  `yaml:"activeDeadlineSeconds"`
					Template              struct {
						Spec struct {
							RestartPolicy string `yaml:"restartPolicy"`
							Containers    []struct {
								Image   string
								Command []string
								Env     []struct {
									Name      string
									Value     string
									ValueFrom *struct {
										SecretKeyRef *struct{ Name, Key string } `yaml:"secretKeyRef"`
									} `yaml:"valueFrom"`
								}
							}
						}
					}
				}
			} `yaml:"jobTemplate"`
		}
	}
	if err := yaml.Unmarshal(b, &cj); err != nil {
		t.Fatal(err)
	}
	s := cj.Spec
	job := s.JobTemplate.Spec
	if cj.Kind != "CronJob" || s.Schedule == "" || s.ConcurrencyPolicy != "Forbid" || s.StartingDeadlineSeconds <= 0 {
		t.Errorf("CronJob %s schedule %q concurrencyPolicy %q startingDeadlineSeconds %d; want a schedule, Forbid and a deadline",
			cj.Kind, s.Schedule, s.ConcurrencyPolicy, s.StartingDeadlineSeconds)
	}
	if job.BackoffLimit == nil || *job.BackoffLimit > 2 || job.ActiveDeadlineSeconds <= 0 || job.Template.Spec.RestartPolicy != "Never" {
		t.Errorf("Job backoffLimit %v activeDeadlineSeconds %d restartPolicy %q; want at most 2, a deadline, Never",
			job.BackoffLimit, job.ActiveDeadlineSeconds, job.Template.Spec.RestartPolicy)
	}
	if len(job.Template.Spec.Containers) != 1 {
		t.Fatalf("want one container")
	}
	c := job.Template.Spec.Containers[0]
	if !strings.HasPrefix(c.Image, "postgres:15") || !strings.HasSuffix(strings.Join(c.Command, " "), "/backup.sh") {
		t.Errorf("container %s %v; want the postgres:15 image running backup.sh", c.Image, c.Command)
	}
	for _, e := range c.Env {
		if e.Name == "DATABASE_URL" && (e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil) {
			t.Error("DATABASE_URL must come from a secretKeyRef, never a literal")
		}
	}
}

func TestSystemdTimer(t *testing.T) {
	t.Parallel()
	timer, err := os.ReadFile(filepath.Join(repoRoot, "deploy", "systemd", "notes-api-backup.timer"))
	if err != nil {
		t.Fatal(err)
	}
	service, err := os.ReadFile(filepath.Join(repoRoot, "deploy", "systemd", "notes-api-backup.service"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"\nOnCalendar=", "\nPersistent=true\n", "\nRandomizedDelaySec="} {
		if !strings.Contains(string(timer), want) {
			t.Errorf("notes-api-backup.timer lacks %q", strings.TrimSpace(want))
		}
	}
	for _, want := range []string{"\nType=oneshot\n", "\nExecStart=/usr/local/lib/notes-api/backup/backup.sh\n"} {
		if !strings.Contains(string(service), want) {
			t.Errorf("notes-api-backup.service lacks %q", strings.TrimSpace(want))
		}
	}
}

// The Component builds into an overlay, the CronJob mounts the generated,
// hash-named ConfigMap, and that ConfigMap holds the scripts of this folder
// byte for byte: they live once, here, and are read at render time (kustomize
// with its load restrictor off, as scripts/ci/deploy.sh renders).
func TestKustomizeComponent(t *testing.T) {
	t.Parallel()
	// The pinned kustomize of scripts/ci/install-tools.sh, else one on PATH.
	var kustomize string
	if p, err := filepath.Abs(filepath.Join(repoRoot, ".tools", "kustomize")); err == nil && isFile(p) {
		kustomize = p
	} else if p, err := exec.LookPath("kustomize"); err == nil {
		kustomize = p
	} else {
		servicetest.Missing(t, "kustomize", "not in .tools/ or on PATH: run scripts/ci/install-tools.sh kustomize")
	}
	// An overlay of the test's own with only this Component, as an
	// environment's overlay adds it next to the base.
	overlay := t.TempDir()
	abs, err := filepath.Abs(filepath.Join(repoRoot, "deploy", "backup"))
	if err != nil {
		t.Fatal(err)
	}
	// kustomize takes components by relative path only.
	component, err := filepath.Rel(overlay, abs)
	if err != nil {
		t.Fatal(err)
	}
	k := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: notes-api-test\n" +
		"components:\n  - " + component + "\n"
	if err := os.WriteFile(filepath.Join(overlay, "kustomization.yaml"), []byte(k), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(kustomize, "build", "--load-restrictor", "LoadRestrictionsNone", overlay).CombinedOutput() //nolint:gosec // a pinned tool
	if err != nil {
		t.Fatalf("kustomize build: %v\n%s", err, out)
	}
	docs := string(out)
	for _, want := range []string{"kind: CronJob", "name: notes-api-backup-scripts-", "claimName: notes-api-backups", "namespace: notes-api-test"} {
		if !strings.Contains(docs, want) {
			t.Errorf("build output lacks %q", want)
		}
	}
	var scriptsMap map[string]string
	dec := yaml.NewDecoder(strings.NewReader(docs))
	for {
		var o struct {
			Kind     string
			Metadata struct{ Name string }
			Data     map[string]string
		}
		if err := dec.Decode(&o); err != nil {
			break
		}
		if o.Kind == "ConfigMap" && strings.HasPrefix(o.Metadata.Name, "notes-api-backup-scripts-") {
			scriptsMap = o.Data
		}
	}
	if len(scriptsMap) == 0 {
		t.Fatal("no notes-api-backup-scripts ConfigMap with data in the render")
	}
	for name, got := range scriptsMap {
		want, err := os.ReadFile(name) // this folder: the scripts' one home
		if err != nil || got != string(want) {
			t.Errorf("the ConfigMap's %s is not scripts/backup/%s byte for byte (%v)", name, name, err)
		}
	}
	if _, ok := scriptsMap["backup.sh"]; !ok {
		t.Errorf("the ConfigMap lacks backup.sh, which the CronJob runs; keys %v", keys(scriptsMap))
	}
}

func keys(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}
