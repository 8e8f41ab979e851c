package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/prodready/service/internal/servicetest"
)

// The delivery items run on GitHub and a cluster, which this machine has
// neither of: their rows show the offline evidence that exists, labelled
// "offline:", and run what can run here (linters, renders, the tests that
// compare overlays).

// workflow is the part of a GitHub Actions workflow the rows read.
type workflow struct {
	On   yaml.Node `yaml:"on"`
	Jobs map[string]struct {
		Needs       any `yaml:"needs"`
		Environment any `yaml:"environment"`
		Steps       []struct {
			Name string `yaml:"name"`
			Run  string `yaml:"run"`
			Uses string `yaml:"uses"`
		} `yaml:"steps"`
	} `yaml:"jobs"`
}

func readWorkflow(e *env, name string) (workflow, string, error) {
	path := filepath.Join(e.root, ".github", "workflows", name)
	b, err := os.ReadFile(path)
	if err != nil {
		return workflow{}, "", err
	}
	var w workflow
	if err := yaml.Unmarshal(b, &w); err != nil {
		return w, "", fmt.Errorf("%s: %w", name, err)
	}
	return w, string(b), nil
}

// actionlint lints the workflows with the pinned actionlint when installed.
func actionlint(ctx context.Context, e *env) (string, error) {
	bin := filepath.Join(e.root, ".tools", "actionlint")
	if _, err := os.Stat(bin); err != nil {
		return "", errors.New("actionlint is not installed: make tools")
	}
	files, _ := filepath.Glob(filepath.Join(e.root, ".github", "workflows", "*.yml"))
	out, err := runCmd(ctx, os.Environ(), bin, append([]string{"-shellcheck="}, files...)...)
	if err != nil {
		return "", fmt.Errorf("actionlint: %w: %s", err, lastLines(out, 3))
	}
	return fmt.Sprintf("actionlint clean on %d workflows", len(files)), nil
}

func rowCI(ctx context.Context, e *env) (string, error) {
	w, raw, err := readWorkflow(e, "ci.yml")
	if err != nil {
		return "", err
	}
	var testJob string
	for name, j := range w.Jobs {
		for _, st := range j.Steps {
			if strings.Contains(st.Run, "make test") {
				testJob = name
			}
		}
	}
	if testJob == "" {
		return "", errors.New("ci.yml has no step running make test")
	}
	if !strings.Contains(raw, "push") || !strings.Contains(raw, "pull_request") {
		return "", errors.New("ci.yml does not run on push and pull_request")
	}
	lint, err := actionlint(ctx, e)
	if err != nil {
		return "", err
	}
	ci, err := os.ReadFile(filepath.Join(e.root, ".ci", "run"))
	if err != nil || !strings.Contains(string(ci), "make test") {
		return "", errors.New(".ci/run does not run make test")
	}
	here := "run `bash .ci/run` for the same here"
	if os.Getenv("CI") == "true" {
		here = "this run is part of .ci/run, after its make test"
	}
	return fmt.Sprintf("offline: ci.yml job %q runs make test on push and pull_request; %s; %s", testJob, lint, here), nil
}

func kustomize(ctx context.Context, e *env, overlay string) (string, error) {
	bin := filepath.Join(e.root, ".tools", "kustomize")
	if _, err := os.Stat(bin); err != nil {
		return "", errors.New("kustomize is not installed: make tools")
	}
	out, err := runCmd(ctx, os.Environ(), bin, "build", filepath.Join(e.root, "deploy", "kubernetes", "overlays", overlay))
	if err != nil {
		return "", fmt.Errorf("kustomize build %s: %w: %s", overlay, err, lastLines(out, 3))
	}
	return out, nil
}

func rowCDDev(ctx context.Context, e *env) (string, error) {
	_, raw, err := readWorkflow(e, "cd.yml")
	if err != nil {
		return "", err
	}
	for _, want := range []string{"workflow_run", "main", "deploy.sh", "smoke.sh"} {
		if !strings.Contains(raw, want) {
			return "", fmt.Errorf("cd.yml does not mention %s", want)
		}
	}
	out, err := kustomize(ctx, e, "dev")
	if err != nil {
		return "", err
	}
	kinds := regexp.MustCompile(`(?m)^kind: (\w+)`).FindAllStringSubmatch(out, -1)
	var names []string
	for _, k := range kinds {
		names = append(names, k[1])
	}
	return fmt.Sprintf("offline: cd.yml deploys after green CI on main (workflow_run), then smoke-tests /status; the dev overlay renders %d objects (%s)",
		len(names), strings.Join(names, ", ")), nil
}

func rowReleaseDocs(_ context.Context, e *env) (string, error) {
	b, err := os.ReadFile(filepath.Join(e.root, "docs", "RELEASE.md"))
	if err != nil {
		return "", err
	}
	doc := strings.ToLower(string(b))
	var missing []string
	for _, want := range []string{"staging", "production", "sign-off", "rollback", "hotfix", "tag"} {
		if !strings.Contains(doc, want) {
			missing = append(missing, want)
		}
	}
	if len(missing) > 0 {
		return "", fmt.Errorf("docs/RELEASE.md does not cover %s", strings.Join(missing, ", "))
	}
	heads := regexp.MustCompile(`(?m)^## (.+)$`).FindAllStringSubmatch(string(b), -1)
	var hs []string
	for _, h := range heads {
		hs = append(hs, h[1])
	}
	return fmt.Sprintf("docs/RELEASE.md (%d lines) covers tags, staging, sign-off, production, rollback and hotfix: %s",
		strings.Count(string(b), "\n"), truncate(strings.Join(hs, "; "), 160)), nil
}

func rowStagingPromotion(ctx context.Context, e *env) (string, error) {
	// The deploy tests need kustomize; without it they skip, which must not
	// read as a pass.
	if _, err := os.Stat(filepath.Join(e.root, ".tools", "kustomize")); err != nil {
		return "", errors.New("kustomize is not installed: make tools")
	}
	out, err := runCmd(ctx, append(os.Environ(), "GOFLAGS="+servicetest.GoFlags()), "go", "test", "-count=1", "-v", "-run",
		"TestStagingAndProductionDifferOnlyInAllowedFields|TestStagingProductionComparisonCatchesDrift|TestPromotionSetsTheSameDigestInStagingAndProduction|TestAdmissionPolicyRefusesUnsignedImages|TestDeployMigratesOnceBeforeTheRollout",
		"./deploy/")
	if err != nil {
		return "", fmt.Errorf("go test ./deploy/: %w: %s", err, lastLines(out, 5))
	}
	if strings.Contains(out, "--- SKIP") {
		return "", fmt.Errorf("deploy tests skipped: %s", lastLines(out, 3))
	}
	passed := regexp.MustCompile(`(?m)^--- PASS: (\w+)`).FindAllStringSubmatch(out, -1)
	if len(passed) < 2 {
		return "", fmt.Errorf("expected the promotion tests to run: %s", lastLines(out, 5))
	}
	var names []string
	for _, p := range passed {
		names = append(names, p[1])
	}
	_, raw, err := readWorkflow(e, "release.yml")
	if err != nil {
		return "", err
	}
	if !strings.Contains(raw, "digest") {
		return "", errors.New("release.yml does not promote by digest")
	}
	return "offline: staging and production overlays rendered and compared, promotion by digest checked: " + strings.Join(names, ", ") + " PASS", nil
}

func rowSignOff(_ context.Context, e *env) (string, error) {
	w, _, err := readWorkflow(e, "release.yml")
	if err != nil {
		return "", err
	}
	prod, ok := w.Jobs["production"]
	if !ok {
		return "", errors.New("release.yml has no production job")
	}
	env := fmt.Sprint(prod.Environment)
	needs := fmt.Sprint(prod.Needs)
	if !strings.Contains(env, "production") || !strings.Contains(needs, "staging") {
		return "", fmt.Errorf("release.yml production job: environment %s, needs %s; want the production environment after staging", env, needs)
	}
	return fmt.Sprintf("offline: release.yml's production job runs in the GitHub environment %q (required reviewers are a repository setting) and needs %s",
		"production", needs), nil
}

func rowAPM(ctx context.Context, e *env) (string, error) {
	s, err := e.stack(ctx)
	if err != nil {
		return "", err
	}
	id := "checklist-apm-" + randomHex(4)
	if _, err := s.do(ctx, http.MethodGet, "/v1/notes/1", "", map[string]string{"X-Request-ID": id}, ""); err != nil {
		return "", err
	}
	// Transactions arrive with the next event harvest, about every second.
	const name = "WebTransaction/Go/GET /v1/notes/:id"
	deadline := time.Now().Add(20 * time.Second)
	for {
		for _, ev := range s.apm.Events("analytic_event_data") {
			if ev.Intrinsics["name"] == name && ev.User["request_id"] == id {
				_, h, err := s.status(ctx)
				if err != nil {
					return "", err
				}
				c, _ := h.check("newrelic:connected")
				if c.Status != "pass" {
					return "", fmt.Errorf("/status newrelic:connected %s: %s", c.Status, c.Output)
				}
				app := fmt.Sprint(s.apm.Connect()["app_name"])
				return fmt.Sprintf("the agent connected to the fake collector on %s as %s and reported the transaction %q of request %s (%d datastore spans so far); /status newrelic:connected pass",
					s.apm.Host(), app, name, id, countDatastoreSpans(s.apm)), nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			if len(s.apm.Calls()) == 0 {
				// The configuration (keys, staging's rule) is in; the agent
				// is not started by api serve yet.
				return "", errTodo{"issue 11 in progress: api serve is configured for New Relic (staging refuses to start without it) but no call reached the fake collector: the agent is not started by api serve yet"}
			}
			return "", fmt.Errorf("no transaction %s for request %s at the fake collector in 20s (calls: %d)", name, id, len(s.apm.Calls()))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// countDatastoreSpans counts the spans the agent reported for bun and Redis.
func countDatastoreSpans(c *servicetest.Collector) int {
	n := 0
	for _, ev := range c.Events("span_event_data") {
		if ev.Intrinsics["category"] == "datastore" {
			n++
		}
	}
	return n
}

func rowBackups(ctx context.Context, e *env) (string, error) {
	s, err := e.stack(ctx)
	if err != nil {
		return "", err
	}
	r, err := s.do(ctx, http.MethodPost, "/v1/notes", "", nil, `{"title":"kept by the backup","body":"restore me"}`)
	if err != nil || r.code != http.StatusCreated {
		return "", fmt.Errorf("POST /v1/notes: %d %w", r.code, err)
	}
	start := time.Now()
	file, err := s.runBackup(ctx)
	if err != nil {
		return "", err
	}
	took := time.Since(start)
	out, err := runCmd(ctx, append(os.Environ(), "DATABASE_URL="+s.dbDirect), "bash",
		filepath.Join(e.root, "scripts", "backup", "verify.sh"), file)
	if err != nil {
		return "", fmt.Errorf("verify.sh: %w: %s", err, lastLines(out, 3))
	}
	_, h, err := s.status(ctx)
	if err != nil {
		return "", err
	}
	c, _ := h.check("backup:age")
	if c.Status != "pass" {
		return "", fmt.Errorf("/status backup:age %s: %s", c.Status, c.Output)
	}
	return fmt.Sprintf("backup.sh dumped, restored into a scratch database and recorded %s in %.1f s; verify.sh restore drill: %s; /status backup:age pass",
		filepath.Base(file), took.Seconds(), truncate(lastLines(out, 1), 100)), nil
}

func rowTwelveFactor(ctx context.Context, e *env) (string, error) {
	s, err := e.stack(ctx)
	if err != nil {
		return "", err
	}
	// A second instance from the same environment, on a port of its own:
	// config and backing services come from the environment only.
	environ, port, err := s.anotherInstance()
	if err != nil {
		return "", err
	}
	out := &logBuf{}
	start := time.Now()
	p, err := startProcess(e.bin, []string{"serve"}, environ, out)
	if err != nil {
		return "", err
	}
	second := &stack{url: fmt.Sprintf("http://127.0.0.1:%d", port)}
	var ready time.Duration
	for {
		if r, err := second.get(ctx, "/readyz", ""); err == nil && r.code == http.StatusOK {
			ready = time.Since(start)
			break
		}
		if p.exited() || time.Since(start) > 20*time.Second {
			_, _ = p.terminate(time.Second)
			return "", fmt.Errorf("second instance not ready: %s", out.tail(5))
		}
		time.Sleep(20 * time.Millisecond)
	}
	took, err := p.terminate(30 * time.Second)
	if err != nil {
		return "", fmt.Errorf("SIGTERM: %w: %s", err, out.tail(3))
	}
	if len(out.lines("stopped cleanly")) == 0 {
		return "", fmt.Errorf("no \"stopped cleanly\" after SIGTERM: %s", out.tail(3))
	}
	var rec map[string]any
	first := strings.SplitN(out.String(), "\n", 2)[0]
	if json.Unmarshal([]byte(first), &rec) != nil {
		return "", fmt.Errorf("the log on stdout is not a JSON event stream: %s", truncate(first, 80))
	}
	return fmt.Sprintf("a second instance from the same environment (PORT=%d, DATABASE_URL, REDIS_URL) was ready in %.1f s, logged JSON events to stdout, and on SIGTERM drained and exited 0 (\"stopped cleanly\") in %.1f s",
		port, ready.Seconds(), took.Seconds()), nil
}

func rowNoSilentFailure(ctx context.Context, e *env) (string, error) {
	s, err := e.stack(ctx)
	if err != nil {
		return "", err
	}
	s.pg.cut()
	defer s.pg.restore()
	id := "checklist-silent-" + randomHex(4)
	r, err := s.do(ctx, http.MethodGet, "/v1/notes", "", map[string]string{"X-Request-ID": id}, "")
	if err != nil {
		return "", err
	}
	var prob struct {
		Status    int    `json:"status"`
		RequestID string `json:"request_id"`
		Title     string `json:"title"`
	}
	if r.code < 500 || !strings.HasPrefix(r.ctype, "application/problem+json") ||
		json.Unmarshal(r.body, &prob) != nil || prob.RequestID != id {
		return "", fmt.Errorf("GET /v1/notes with PostgreSQL cut: %d %s %q; want a 5xx problem+json naming the request", r.code, r.ctype, truncate(string(r.body), 100))
	}
	logLine, err := s.out.waitLine(ctx, 5*time.Second, `"level":"`, `"request_id":"`+id+`"`, "error")
	if err != nil {
		return "", fmt.Errorf("the failure was not logged: %w", err)
	}
	_, h, err := s.waitStatus(ctx, 10*time.Second, func(code int, h healthBody) bool {
		c, _ := h.check("database:responseTime")
		return code == http.StatusInternalServerError && c.Status == "fail"
	})
	if err != nil {
		return "", fmt.Errorf("/status did not show the outage: %w", err)
	}
	// The check's change is mailed once, however many polls saw it.
	failing, _, err := s.mailpit.waitMail(ctx, 15*time.Second, func(subject, _ string) bool {
		return strings.Contains(subject, "check: database:responseTime is failing")
	})
	if err != nil {
		return "", fmt.Errorf("no mail for database:responseTime failing: %w", err)
	}
	s.pg.restore()
	if _, _, err := s.waitStatus(ctx, 20*time.Second, func(code int, _ healthBody) bool { return code == http.StatusOK }); err != nil {
		return "", fmt.Errorf("after restoring PostgreSQL: %w", err)
	}
	recovered, _, err := s.mailpit.waitMail(ctx, 15*time.Second, func(subject, _ string) bool {
		return strings.Contains(subject, "check: database:responseTime recovered")
	})
	if err != nil {
		return "", fmt.Errorf("no mail for database:responseTime recovering: %w", err)
	}
	// And no secret anywhere it could have leaked to.
	for where, text := range map[string]string{"the log": s.out.String(), "syslog": s.syslog.received(), "the 500": string(r.body)} {
		if strings.Contains(text, s.secret) {
			return "", fmt.Errorf("the database password appears in %s", where)
		}
	}
	var msg map[string]any
	_ = json.Unmarshal([]byte(logLine), &msg)
	c, _ := h.check("database:responseTime")
	return fmt.Sprintf("PostgreSQL cut: the client got a %d problem+json naming request %s, the log %v %q for it, /status 500 with database:responseTime fail (%q), mailed %q; restored: 200, mailed %q; the database password in no log, syslog record or body",
		r.code, id, msg["level"], msg["msg"], truncate(c.Output, 50), truncate(failing.Subject, 70), truncate(recovered.Subject, 70)), nil
}
