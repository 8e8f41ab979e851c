// Package deploy_test checks the delivery files as an operator relies on them:
// every Kubernetes overlay renders; staging is production's twin (same image
// digest, same configuration, probes and security; only namespace, size, host
// names, secret names and the environment's name differ); what each platform
// (Kubernetes, compose, systemd) hands the binary is a configuration it
// accepts; each platform waits longer than the service's drain; the image and
// the workflows follow the rules docs/RELEASE.md states; migrations run once
// per release in a Job that deploy.sh waits for before the rollout; the
// admission policy admits only images cd.yml signed on main in staging and
// production; the pgBackRest and Litestream Components keep their promises.
//
// The Kubernetes tests need kustomize (scripts/ci/install-tools.sh puts it in
// .tools/); without it they skip loudly, or fail under REQUIRE_SERVICES=1.
package deploy_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/prodready/service/internal/config"
	"github.com/prodready/service/internal/resources"
	"github.com/prodready/service/internal/servicetest"
)

// root is the repository, seen from this package's directory.
const root = ".."

// ---------------------------------------------------------------------------
// Rendering

// kustomize returns the kustomize binary: .tools/kustomize, else one on PATH.
func kustomize(t *testing.T) string {
	t.Helper()
	if p, err := filepath.Abs(filepath.Join(root, ".tools", "kustomize")); err == nil {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("kustomize"); err == nil {
		return p
	}
	servicetest.Missing(t, "kustomize", "not in .tools/ or on PATH: run scripts/ci/install-tools.sh kustomize")
	return ""
}

// object is one rendered Kubernetes object.
type object map[string]any

func (o object) id() string {
	md, _ := o["metadata"].(map[string]any)
	return fmt.Sprintf("%v/%v", o["kind"], md["name"])
}

// build renders the kustomization in dir and returns its objects by kind/name.
func build(t *testing.T, dir string) map[string]object {
	t.Helper()
	// The backup Component generates its ConfigMap from scripts/backup/,
	// outside its folder: kustomize's load restrictor is off, as in deploy.sh.
	cmd := exec.Command(kustomize(t), "build", "--load-restrictor", "LoadRestrictionsNone", dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kustomize build %s: %v\n%s", dir, err, stderr.String())
	}
	return parseObjects(t, out)
}

func parseObjects(t *testing.T, data []byte) map[string]object {
	t.Helper()
	objs := map[string]object{}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		// Into a plain map: yaml.v3 would give nested mappings the named type too.
		var m map[string]any
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("parse rendered manifests: %v", err)
		}
		if m != nil {
			objs[object(m).id()] = m
		}
	}
	return objs
}

func overlay(name string) string {
	return filepath.Join(root, "deploy", "kubernetes", "overlays", name)
}

// ---------------------------------------------------------------------------
// Staging is production's twin

// allowedDifferences are the only fields in which the staging and production
// renders may differ. Everything else, the image digest, the configuration,
// probes, security, the migration step, must be identical, so what staging
// signed off is what production runs.
var allowedDifferences = []struct {
	what string
	path *regexp.Regexp
}{
	{"namespace", regexp.MustCompile(`^[^:]+:metadata\.namespace$`)},
	{"autoscaler bounds (replicas)", regexp.MustCompile(`^HorizontalPodAutoscaler/notes-api:spec\.(minReplicas|maxReplicas)$`)},
	{"resources", regexp.MustCompile(`^Deployment/notes-api:spec\.template\.spec\.containers\[[^]]+\]\.resources\.`)},
	{"host names", regexp.MustCompile(`^Ingress/notes-api:spec\.(rules\[\d+\]\.host|tls\[\d+\]\.hosts\[\d+\])$`)},
	{"secret names", regexp.MustCompile(`(^Ingress/notes-api:spec\.tls\[\d+\]\.secretName|\.secretKeyRef\.name)$`)},
	{"environment name", regexp.MustCompile(`^(Deployment/notes-api:spec\.template\.spec\.containers\[api\]|Job/notes-api-migrate:spec\.template\.spec\.containers\[migrate\])\.env\[APP_ENVIRONMENT\]\.value$`)},
}

// flatten turns an object into path -> scalar. Lists of named items
// (containers, env, volumes, ports) are keyed by name, so order does not count.
func flatten(prefix string, v any, out map[string]string) {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			p := prefix + k // right after "Kind/name:"
			if !strings.HasSuffix(prefix, ":") {
				p = prefix + "." + k
			}
			flatten(p, e, out)
		}
	case []any:
		for i, e := range v {
			key := strconv.Itoa(i)
			if m, ok := e.(map[string]any); ok {
				if name, ok := m["name"].(string); ok {
					key = name
				}
			}
			flatten(fmt.Sprintf("%s[%s]", prefix, key), e, out)
		}
	default:
		out[prefix] = fmt.Sprint(v)
	}
}

// differences lists every field in which two renders differ and that no entry
// of allowedDifferences covers.
func differences(a, b map[string]object) []string {
	fa, fb := map[string]string{}, map[string]string{}
	// Each environment's Namespace object is named after it (an allowed
	// difference); compare the rest of it, its Pod Security labels included.
	const ns = "Namespace/(the environment's)"
	key := func(id string) string {
		if strings.HasPrefix(id, "Namespace/") {
			return ns
		}
		return id
	}
	for id, o := range a {
		flatten(key(id)+":", map[string]any(o), fa)
	}
	for id, o := range b {
		flatten(key(id)+":", map[string]any(o), fb)
	}
	delete(fa, ns+":metadata.name")
	delete(fb, ns+":metadata.name")
	var diffs []string
	check := func(p string) {
		va, ina := fa[p]
		vb, inb := fb[p]
		if ina && inb && va == vb {
			return
		}
		for _, allowed := range allowedDifferences {
			if allowed.path.MatchString(p) {
				return
			}
		}
		switch {
		case !inb:
			diffs = append(diffs, fmt.Sprintf("%s: %q only in staging", p, va))
		case !ina:
			diffs = append(diffs, fmt.Sprintf("%s: %q only in production", p, vb))
		default:
			diffs = append(diffs, fmt.Sprintf("%s: staging %q, production %q", p, va, vb))
		}
	}
	for p := range fa {
		check(p)
	}
	for p := range fb {
		if _, seen := fa[p]; !seen {
			check(p)
		}
	}
	sort.Strings(diffs)
	return diffs
}

var digestRef = regexp.MustCompile(`^[a-z0-9][a-z0-9./_-]*@sha256:[0-9a-f]{64}$`)

// serviceImage is the repository the service's image is pushed to.
const serviceImage = "ghcr.io/prodready/service"

// images returns the image of every container (init containers included) of
// every workload that runs the service: the logical name "notes-api" the base
// uses, or whatever an overlay replaced it with. Other images, such as a
// backup job's, are compared like any other field.
func images(objs map[string]object) []string {
	var out []string
	for _, o := range objs {
		for _, c := range allContainers(podSpec(o)) {
			img := fmt.Sprint(c["image"])
			if img == "notes-api" || strings.HasPrefix(img, serviceImage) {
				out = append(out, img)
			}
		}
	}
	sort.Strings(out)
	return out
}

// theImage returns the one image every container of a render runs, pinned by digest.
func theImage(t *testing.T, env string, objs map[string]object) string {
	t.Helper()
	imgs := images(objs)
	if len(imgs) == 0 {
		t.Fatalf("%s: no container images in the render", env)
	}
	for _, img := range imgs {
		if img != imgs[0] {
			t.Errorf("%s: containers run different images: %v", env, imgs)
		}
		if !digestRef.MatchString(img) {
			t.Errorf("%s: image %q is not pinned by digest (want name@sha256:<64 hex>)", env, img)
		}
	}
	return imgs[0]
}

func TestStagingAndProductionDifferOnlyInAllowedFields(t *testing.T) {
	staging, production := build(t, overlay("staging")), build(t, overlay("production"))
	if si, pi := theImage(t, "staging", staging), theImage(t, "production", production); si != pi {
		t.Errorf("staging runs %s but production %s: promote one digest", si, pi)
	}
	for _, d := range differences(staging, production) {
		t.Errorf("staging and production differ beyond the allowed fields: %s", d)
	}
}

// The check must bite: each of these changes to production alone is reported.
func TestStagingProductionComparisonCatchesDrift(t *testing.T) {
	staging := build(t, overlay("staging"))
	tests := []struct {
		name   string
		mutate func(api map[string]any, objs map[string]object)
		want   string
	}{
		{"another image", func(api map[string]any, _ map[string]object) {
			api["image"] = serviceImage + "@sha256:" + strings.Repeat("1", 64)
		}, ".image"},
		{"another readiness path", func(api map[string]any, _ map[string]object) {
			api["readinessProbe"].(map[string]any)["httpGet"].(map[string]any)["path"] = "/livez"
		}, "readinessProbe.httpGet.path"},
		{"an extra variable", func(api map[string]any, _ map[string]object) {
			api["env"] = append(api["env"].([]any), map[string]any{"name": "APP_LOG_LEVEL", "value": "debug"})
		}, "env[APP_LOG_LEVEL]"},
		{"a writable root file system", func(api map[string]any, _ map[string]object) {
			api["securityContext"].(map[string]any)["readOnlyRootFilesystem"] = false
		}, "readOnlyRootFilesystem"},
		{"no disruption budget", func(_ map[string]any, objs map[string]object) {
			delete(objs, "PodDisruptionBudget/notes-api")
		}, "PodDisruptionBudget/notes-api"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			production := build(t, overlay("production"))
			tt.mutate(container(t, production, "api"), production)
			diffs := strings.Join(differences(staging, production), "\n")
			if !strings.Contains(diffs, tt.want) {
				t.Errorf("a change of %s went unreported; differences:\n%s", tt.want, diffs)
			}
		})
	}
}

// Promotion as cd.yml and release.yml do it (scripts/ci/deploy.sh): set one
// digest in copies of both overlays; both then run exactly that image, and
// nothing else changes between them.
func TestPromotionSetsTheSameDigestInStagingAndProduction(t *testing.T) {
	k := kustomize(t)
	work := t.TempDir()
	// deploy/ and the backup scripts, as deploy.sh copies them: overlays may
	// use components beside kubernetes/, and the backup Component reads scripts/backup/.
	for _, d := range []string{"deploy", filepath.Join("scripts", "backup")} {
		if err := os.CopyFS(filepath.Join(work, d), os.DirFS(filepath.Join(root, d))); err != nil {
			t.Fatal(err)
		}
	}
	ref := serviceImage + "@sha256:" + strings.Repeat("ab", 32)
	renders := map[string]map[string]object{}
	for _, env := range []string{"staging", "production"} {
		dir := filepath.Join(work, "deploy", "kubernetes", "overlays", env)
		cmd := exec.Command(k, "edit", "set", "image", "notes-api="+ref)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("kustomize edit set image in %s: %v\n%s", env, err, out)
		}
		renders[env] = build(t, dir)
		if got := theImage(t, env, renders[env]); got != ref {
			t.Errorf("%s runs %s after promotion, want %s", env, got, ref)
		}
	}
	for _, d := range differences(renders["staging"], renders["production"]) {
		t.Errorf("after promotion: %s", d)
	}
}

func TestEveryOverlayRendersAWorkingService(t *testing.T) {
	for _, env := range []string{"dev", "staging", "production"} {
		t.Run(env, func(t *testing.T) {
			objs := build(t, overlay(env))
			for _, want := range []string{"Deployment/notes-api", "Service/notes-api", "Ingress/notes-api",
				"HorizontalPodAutoscaler/notes-api", "PodDisruptionBudget/notes-api", "ServiceAccount/notes-api"} {
				if _, ok := objs[want]; !ok {
					t.Errorf("no %s in the render", want)
				}
			}
			imgs := images(objs)
			if len(imgs) == 0 {
				t.Error("no container runs the service's image")
			}
			for _, img := range imgs {
				if !strings.HasPrefix(img, serviceImage) {
					t.Errorf("image %q: the overlay does not set the registry image", img)
				}
			}
			checkPod(t, objs)
			checkPodConfiguration(t, env, objs)
		})
	}
}

// checkPod asserts what keeps a pod safe and its rollouts lossless.
func checkPod(t *testing.T, objs map[string]object) {
	t.Helper()
	dep := objs["Deployment/notes-api"]
	if _, ok := dep["spec"].(map[string]any)["replicas"]; ok {
		t.Error("the Deployment sets replicas; the autoscaler owns them (an apply would reset its choice)")
	}
	spec := podSpec(dep)
	for _, id := range []string{"Deployment/notes-api", "Job/notes-api-migrate"} {
		checkHardened(t, id, podSpec(objs[id]), 65532)
	}

	api := container(t, objs, "api")
	for probe, path := range map[string]string{"startupProbe": "/livez", "livenessProbe": "/livez", "readinessProbe": "/readyz"} {
		p, _ := api[probe].(map[string]any)
		get, _ := p["httpGet"].(map[string]any)
		if get["path"] != path {
			t.Errorf("%s checks %v, want %s", probe, get["path"], path)
		}
	}
	checkMigrationJob(t, objs)

	// The drain fits in the grace period: the kubelet's preStop sleep, then
	// the app's drain delay and graceful shutdown, then SIGKILL.
	preStop := api["lifecycle"].(map[string]any)["preStop"].(map[string]any)["sleep"].(map[string]any)["seconds"].(int)
	grace := spec["terminationGracePeriodSeconds"].(int)
	drain := drainTime(t)
	if need := time.Duration(preStop)*time.Second + drain; time.Duration(grace)*time.Second <= need {
		t.Errorf("terminationGracePeriodSeconds %d does not exceed preStop %ds + drain and shutdown %s", grace, preStop, drain)
	}

	// The secrets come from Secret keys; the New Relic key may be absent.
	secrets := map[string]bool{}
	for _, e := range api["env"].([]any) {
		e := e.(map[string]any)
		if vf, ok := e["valueFrom"].(map[string]any); ok {
			if ref, ok := vf["secretKeyRef"].(map[string]any); ok {
				secrets[e["name"].(string)] = ref["optional"] == true
			}
		}
	}
	for name, optional := range map[string]bool{"STATUS_TOKENS": false, "DATABASE_URL": false, "APP_EMAIL_PASSWORD": false, "NEW_RELIC_LICENSE_KEY": true} {
		if got, ok := secrets[name]; !ok || got != optional {
			t.Errorf("%s: from a Secret %v, optional %v; want from a Secret, optional %v", name, ok, got, optional)
		}
	}
}

// checkHardened asserts the pod and container security every workload of
// the service has, and resource requests and limits on each container.
func checkHardened(t *testing.T, id string, spec map[string]any, uid int) {
	t.Helper()
	sc, _ := spec["securityContext"].(map[string]any)
	if sc["runAsNonRoot"] != true || sc["runAsUser"] != uid {
		t.Errorf("%s: pod securityContext %v: want runAsNonRoot true and runAsUser %d", id, sc, uid)
	}
	if seccomp, _ := sc["seccompProfile"].(map[string]any); seccomp["type"] != "RuntimeDefault" {
		t.Errorf("%s: pod seccompProfile %v, want RuntimeDefault", id, seccomp)
	}
	if spec["automountServiceAccountToken"] != false {
		t.Errorf("%s: the pod mounts a Kubernetes API token; the service never talks to the API server", id)
	}
	for _, c := range allContainers(spec) {
		name := c["name"]
		csc, _ := c["securityContext"].(map[string]any)
		caps, _ := csc["capabilities"].(map[string]any)
		if csc["readOnlyRootFilesystem"] != true || csc["allowPrivilegeEscalation"] != false ||
			fmt.Sprint(caps["drop"]) != "[ALL]" {
			t.Errorf("%s: container %v securityContext %v: want a read-only root, no privilege escalation, capabilities dropped", id, name, csc)
		}
		res, _ := c["resources"].(map[string]any)
		if res["requests"] == nil || res["limits"] == nil {
			t.Errorf("%s: container %v has no resource requests and limits", id, name)
		}
	}
}

// checkMigrationJob asserts migrations run once per release, in a Job with
// the API's image, and never in the API's pods (no init container, no
// migrate_on_start: checkPodConfiguration checks the latter).
func checkMigrationJob(t *testing.T, objs map[string]object) {
	t.Helper()
	if ics, ok := podSpec(objs["Deployment/notes-api"])["initContainers"]; ok {
		t.Errorf("the Deployment has init containers %v: every pod would migrate on every start; the migration Job does it once per release", ics)
	}
	job, ok := objs["Job/notes-api-migrate"]
	if !ok {
		t.Fatal("no Job/notes-api-migrate in the render: nothing migrates the schema before the rollout")
	}
	migrate := workloadContainer(t, objs, "Job/notes-api-migrate", "migrate")
	if args := fmt.Sprint(migrate["args"]); args != "[migrate up]" {
		t.Errorf("the migration Job runs %s, want [migrate up]", args)
	}
	if img, api := migrate["image"], container(t, objs, "api")["image"]; img != api {
		t.Errorf("the migration Job runs %v but the API %v: a release migrates with its own binary", img, api)
	}
	spec := job["spec"].(map[string]any)
	if podSpec(job)["restartPolicy"] != "Never" || spec["activeDeadlineSeconds"] == nil {
		t.Errorf("migration Job: restartPolicy %v, activeDeadlineSeconds %v; want Never (failed pods keep their logs) and a deadline",
			podSpec(job)["restartPolicy"], spec["activeDeadlineSeconds"])
	}
	md, _ := job["metadata"].(map[string]any)
	if labels, _ := md["labels"].(map[string]any); labels["app.kubernetes.io/component"] != "migrate" {
		t.Errorf("migration Job labels %v: deploy.sh selects it by app.kubernetes.io/component=migrate", md["labels"])
	}
}

// checkPodConfiguration loads, with the binary's own loader, what the api
// container and the migration Job get: the ConfigMap's config.yaml at
// APP_CONFIG plus their literal variables, with stand-ins for the Secret
// values. A typo in a variable or an invalid value fails here instead of in
// a crash-looping pod or a failed release.
func checkPodConfiguration(t *testing.T, env string, objs map[string]object) {
	t.Helper()
	wantEnv := env
	if env == "dev" {
		wantEnv = config.Development
	}
	for _, w := range []struct{ id, container string }{{"Deployment/notes-api", "api"}, {"Job/notes-api-migrate", "migrate"}} {
		l := loadContainerConfig(t, objs, w.id, w.container)
		if l.Environment != wantEnv {
			t.Errorf("%s: %s runs with environment %q, want %q", env, w.id, l.Environment, wantEnv)
		}
		if l.Database.MigrateOnStart && w.container == "api" {
			t.Error("the api container migrates at start; the migration Job does it once per release, before the rollout")
		}
	}
}

func loadContainerConfig(t *testing.T, objs map[string]object, id, name string) *config.Loaded {
	t.Helper()
	api := workloadContainer(t, objs, id, name)
	// Stand-ins for the Secret values, for the variables the container takes from a Secret.
	standIns := map[string]string{
		"DATABASE_URL":  "postgres://notes:secret@db.internal:5432/notes",
		"STATUS_TOKENS": "a-status-token-of-32-characters!",
		// The Secret key is optional for the kubelet; staging and production need it.
		"NEW_RELIC_LICENSE_KEY": strings.Repeat("0", config.LicenseKeyLen),
	}
	vars := map[string]string{}
	for _, e := range api["env"].([]any) {
		e := e.(map[string]any)
		if v, ok := e["value"]; ok {
			vars[e["name"].(string)] = fmt.Sprint(v)
		} else if v, ok := standIns[e["name"].(string)]; ok {
			vars[e["name"].(string)] = v
		}
	}
	var configYAML string
	for id, o := range objs {
		if strings.HasPrefix(id, "ConfigMap/notes-api-config") {
			configYAML = o["data"].(map[string]any)["config.yaml"].(string)
		}
	}
	mountedAt := ""
	for _, m := range api["volumeMounts"].([]any) {
		if m := m.(map[string]any); m["name"] == "config" {
			mountedAt = m["mountPath"].(string) + "/config.yaml"
		}
	}
	if vars["APP_CONFIG"] != mountedAt {
		t.Errorf("%s: APP_CONFIG is %q but the ConfigMap is mounted at %q", id, vars["APP_CONFIG"], mountedAt)
	}
	readFile := func(p string) ([]byte, error) {
		if p == mountedAt {
			return []byte(configYAML), nil
		}
		return nil, os.ErrNotExist
	}
	l, err := config.Load(vars["APP_CONFIG"], func(k string) string { return vars[k] }, readFile, resources.All().Sections()...)
	if err != nil {
		t.Fatalf("%s container %s: its configuration is rejected by the binary: %v", id, name, err)
	}
	return l
}

func TestBaseConfigMapIsTheRepositoryConfig(t *testing.T) {
	want, err := os.ReadFile(filepath.Join(root, "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(root, "deploy", "kubernetes", "base", "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("deploy/kubernetes/base/config.yaml differs from config.yaml; kustomize reads no file outside its folder, " +
			"so the ConfigMap's source is a copy: cp config.yaml deploy/kubernetes/base/config.yaml")
	}
}

func podSpec(o object) map[string]any {
	spec, _ := o["spec"].(map[string]any)
	tmpl, _ := spec["template"].(map[string]any)
	ps, _ := tmpl["spec"].(map[string]any)
	return ps
}

func allContainers(spec map[string]any) []map[string]any {
	var out []map[string]any
	for _, list := range []string{"initContainers", "containers"} {
		cs, _ := spec[list].([]any)
		for _, c := range cs {
			out = append(out, c.(map[string]any))
		}
	}
	return out
}

// container returns the named container of the API's Deployment.
func container(t *testing.T, objs map[string]object, name string) map[string]any {
	t.Helper()
	return workloadContainer(t, objs, "Deployment/notes-api", name)
}

func workloadContainer(t *testing.T, objs map[string]object, id, name string) map[string]any {
	t.Helper()
	for _, c := range allContainers(podSpec(objs[id])) {
		if c["name"] == name {
			return c
		}
	}
	t.Fatalf("no container %q in %s", name, id)
	return nil
}

// logFlushTimeout is how long the service waits at its stop for the log
// sinks (the syslog queue) to flush: closeLogs in cmd/api/serve.go.
const logFlushTimeout = 5 * time.Second

// drainTime is how long the service takes to stop after SIGTERM at most:
// http.drain_delay plus http.shutdown_timeout, then email.flush_timeout and
// the log flush, from config.yaml.
func drainTime(t *testing.T) time.Duration {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		HTTP  map[string]any `yaml:"http"`
		Email map[string]any `yaml:"email"`
	}
	if err := yaml.Unmarshal(data, &c); err != nil {
		t.Fatal(err)
	}
	total := logFlushTimeout
	for _, k := range []struct {
		section map[string]any
		key     string
	}{{c.HTTP, "drain_delay"}, {c.HTTP, "shutdown_timeout"}, {c.Email, "flush_timeout"}} {
		v, ok := k.section[k.key].(string)
		if !ok {
			t.Fatalf("config.yaml has no duration %s", k.key)
		}
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("config.yaml %s: %v", k.key, err)
		}
		total += d
	}
	return total
}

// ---------------------------------------------------------------------------
// Compose and systemd

func TestComposeStackIsWiredAndAccepted(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(root, "deploy", "compose", "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Services map[string]struct {
			Image       string            `yaml:"image"`
			Environment map[string]string `yaml:"environment"`
			DependsOn   map[string]struct {
				Condition string `yaml:"condition"`
			} `yaml:"depends_on"`
			Healthcheck     map[string]any `yaml:"healthcheck"`
			StopGracePeriod string         `yaml:"stop_grace_period"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	api := f.Services["api"]
	for dep, cond := range map[string]string{"migrate": "service_completed_successfully",
		"postgres": "service_healthy", "redis": "service_healthy", "mailpit": "service_healthy"} {
		if got := api.DependsOn[dep].Condition; got != cond {
			t.Errorf("api depends on %s with condition %q, want %q", dep, got, cond)
		}
		if dep != "migrate" && f.Services[dep].Healthcheck == nil {
			t.Errorf("%s has no healthcheck for depends_on to wait on", dep)
		}
	}
	if d, err := time.ParseDuration(api.StopGracePeriod); err != nil || d <= drainTime(t) {
		t.Errorf("api stop_grace_period %q must exceed the drain and shutdown %s", api.StopGracePeriod, drainTime(t))
	}
	l, err := config.Load("", func(k string) string { return api.Environment[k] }, os.ReadFile, resources.All().Sections()...)
	if err != nil {
		t.Fatalf("the compose api environment is rejected by the binary: %v", err)
	}
	if l.Email.SMTPHost != "mailpit" || l.Email.SMTPPort != 1025 || l.Email.TLSPolicy != "none" || !l.Email.Enabled {
		t.Errorf("e-mail goes to %s:%d (tls %s, enabled %v), want Mailpit on 1025 without TLS",
			l.Email.SMTPHost, l.Email.SMTPPort, l.Email.TLSPolicy, l.Email.Enabled)
	}
}

func TestSystemdUnitAndEnvironmentFile(t *testing.T) {
	unit, err := os.ReadFile(filepath.Join(root, "deploy", "systemd", "notes-api.service"))
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{}
	for _, line := range strings.Split(string(unit), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			settings[k] = v
		}
	}
	for k, want := range map[string]string{"DynamicUser": "yes", "NoNewPrivileges": "yes", "ProtectSystem": "strict",
		"ProtectHome": "yes", "PrivateTmp": "yes", "CapabilityBoundingSet": "", "StateDirectory": "notes-api",
		"EnvironmentFile": "/etc/notes-api/env", "KillSignal": "SIGTERM", "Restart": "on-failure",
		"StandardOutput": "journal", "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX"} {
		if got, ok := settings[k]; !ok || got != want {
			t.Errorf("%s=%q, want %q", k, got, want)
		}
	}
	if d, err := time.ParseDuration(settings["TimeoutStopSec"]); err != nil || d <= drainTime(t) {
		t.Errorf("TimeoutStopSec=%s must exceed the drain and shutdown %s", settings["TimeoutStopSec"], drainTime(t))
	}

	// The example environment file with the repository's config.yaml is a
	// configuration the binary accepts.
	env, err := os.ReadFile(filepath.Join(root, "deploy", "systemd", "notes-api.env.example"))
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{}
	for _, line := range strings.Split(string(env), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(strings.TrimSpace(line), "#") {
			vars[k] = v
		}
	}
	if _, err := config.Load(filepath.Join(root, "config.yaml"), func(k string) string { return vars[k] }, os.ReadFile, resources.All().Sections()...); err != nil {
		t.Errorf("notes-api.env.example is rejected by the binary: %v", err)
	}
}

// ---------------------------------------------------------------------------
// Image and workflows

// The image is ko's (.ko.yaml): distroless static pinned by digest, the
// Makefile's stamps with the commit's time (no clock), and no Dockerfile
// beside it that could build something else. scripts/ci/image.sh builds it
// twice and inspects the result.
func TestImageIsBuiltByKoReproducibly(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(root, ".ko.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var ko struct {
		DefaultBaseImage string `yaml:"defaultBaseImage"`
		Builds           []struct {
			Main    string   `yaml:"main"`
			Env     []string `yaml:"env"`
			Flags   []string `yaml:"flags"`
			Ldflags []string `yaml:"ldflags"`
		} `yaml:"builds"`
	}
	if err := yaml.Unmarshal(data, &ko); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^gcr\.io/distroless/static-debian12:nonroot@sha256:[0-9a-f]{64}$`).MatchString(ko.DefaultBaseImage) {
		t.Errorf("defaultBaseImage %s: want distroless static nonroot pinned by digest", ko.DefaultBaseImage)
	}
	if len(ko.Builds) != 1 || ko.Builds[0].Main != "./cmd/api" || !slices.Contains(ko.Builds[0].Env, "CGO_ENABLED=0") {
		t.Fatalf("builds %+v: want one static build of ./cmd/api", ko.Builds)
	}
	flags := strings.Join(ko.Builds[0].Ldflags, " ")
	for _, want := range []string{"-s -w", "-X main.version={{.Env.VERSION}}", "-X main.commit={{.Env.COMMIT}}", "-X main.commitTime={{.Env.COMMIT_TIME}}"} {
		if !strings.Contains(flags, want) {
			t.Errorf(".ko.yaml ldflags lack %s", want)
		}
	}
	makefile, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	// Nothing stamps the clock: not the Makefile, not the image build.
	for _, f := range []string{"Makefile", ".ko.yaml", "scripts/ci/image.sh", ".github/workflows/cd.yml"} {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		if regexp.MustCompile(`BUILD_TIME|buildTime|build_time`).Match(b) {
			t.Errorf("%s stamps the wall clock; use the commit's time (SOURCE_DATE_EPOCH, COMMIT_TIME)", f)
		}
	}
	// The image is built with the tags make build and make test use, so the
	// image runs the code the tests ran.
	if want := "-tags=" + servicetest.MakefileGoTags(t, makefile); !slices.Contains(ko.Builds[0].Flags, want) {
		t.Errorf(".ko.yaml flags %q lack %s, the Makefile's GO_TAGS", ko.Builds[0].Flags, want)
	}
	if !strings.Contains(string(makefile), "main.commitTime=$(COMMIT_TIME)") {
		t.Error("the Makefile does not stamp the commit time as .ko.yaml does")
	}
	if _, err := os.Stat(filepath.Join(root, "Dockerfile")); err == nil {
		t.Error("a Dockerfile is back: it builds a different image from ko's; docs/RELEASE.md says why there is none")
	}
}

func TestWorkflowsAreLeastPrivilegeAndPinned(t *testing.T) {
	pinned := regexp.MustCompile(`^[\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$`)
	builds := regexp.MustCompile(`\bdocker (buildx )?build\s|\bgo build\b`)
	files, _ := filepath.Glob(filepath.Join(root, ".github", "workflows", "*.yml"))
	if len(files) < 3 {
		t.Fatalf("want ci.yml, cd.yml and release.yml, found %v", files)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var wf struct {
			Permissions map[string]string `yaml:"permissions"`
			Concurrency any               `yaml:"concurrency"`
			Jobs        map[string]struct {
				Permissions map[string]string `yaml:"permissions"`
				Environment any               `yaml:"environment"`
				Steps       []struct {
					Uses string `yaml:"uses"`
					Run  string `yaml:"run"`
				} `yaml:"steps"`
			} `yaml:"jobs"`
		}
		if err := yaml.Unmarshal(data, &wf); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		name := filepath.Base(file)
		if fmt.Sprint(wf.Permissions) != "map[contents:read]" {
			t.Errorf("%s: top-level permissions %v, want only contents: read", name, wf.Permissions)
		}
		if wf.Concurrency == nil {
			t.Errorf("%s: no concurrency group", name)
		}
		// Each uses: line, comment included, is a full commit SHA and its version.
		for _, m := range regexp.MustCompile(`(?m)uses: (.+)$`).FindAllStringSubmatch(string(data), -1) {
			if !strings.HasPrefix(m[1], "./") && !pinned.MatchString(m[1]) {
				t.Errorf("%s: %q is not pinned by commit SHA with a # vX.Y.Z comment", name, m[1])
			}
		}
		for jobName, job := range wf.Jobs {
			for scope, level := range job.Permissions {
				if level == "write" && !map[string]bool{"packages": true, "contents": true, "id-token": true, "attestations": true}[scope] {
					t.Errorf("%s job %s: %s: write is not needed", name, jobName, scope)
				}
			}
			if name == "release.yml" {
				for _, s := range job.Steps {
					if strings.Contains(s.Uses, "build-push-action") || builds.MatchString(s.Run) {
						t.Errorf("release.yml job %s builds; a release promotes the digest that passed dev", jobName)
					}
				}
			}
		}
		if name == "release.yml" {
			if env := fmt.Sprint(wf.Jobs["production"].Environment); !strings.Contains(env, "name:production") {
				t.Errorf("release.yml: the production job runs in environment %s, want production (its reviewers are the sign-off)", env)
			}
		}
	}
}

// The Service and the PodDisruptionBudget select the API's pods and no
// other. The backup CronJob's pods share the name label; a maxUnavailable
// budget that selects a Job's pod cannot count its expected pods and allows
// no disruption, so node drains hang; a Service would route to it.
func TestSelectorsPickOnlyTheAPIPods(t *testing.T) {
	for _, env := range []string{"dev", "staging", "production"} {
		t.Run(env, func(t *testing.T) {
			objs := build(t, overlay(env))
			podLabels := map[string]map[string]any{} // workload -> its pods' labels
			for id, o := range objs {
				spec, _ := o["spec"].(map[string]any)
				if jt, ok := spec["jobTemplate"].(map[string]any); ok { // a CronJob
					spec, _ = jt["spec"].(map[string]any)
				}
				tmpl, _ := spec["template"].(map[string]any)
				md, _ := tmpl["metadata"].(map[string]any)
				if labels, ok := md["labels"].(map[string]any); ok {
					podLabels[id] = labels
				}
			}
			if _, ok := podLabels["CronJob/notes-api-backup"]; !ok && env != "dev" {
				t.Fatalf("no backup CronJob in %s: the test no longer checks what it is for", env)
			}
			selectors := map[string]map[string]any{}
			if s, ok := objs["Service/notes-api"]["spec"].(map[string]any); ok {
				selectors["Service/notes-api"], _ = s["selector"].(map[string]any)
			}
			if s, ok := objs["PodDisruptionBudget/notes-api"]["spec"].(map[string]any); ok {
				sel, _ := s["selector"].(map[string]any)
				selectors["PodDisruptionBudget/notes-api"], _ = sel["matchLabels"].(map[string]any)
			}
			for sid, sel := range selectors {
				if len(sel) == 0 {
					t.Errorf("%s has no selector", sid)
					continue
				}
				for wid, labels := range podLabels {
					matches := true
					for k, v := range sel {
						if labels[k] != v {
							matches = false
						}
					}
					if want := wid == "Deployment/notes-api"; matches != want {
						t.Errorf("%s selects the pods of %s: %v, want %v (selector %v, labels %v)", sid, wid, matches, want, sel, labels)
					}
				}
			}
		})
	}
}

// Only an attested digest moves, and only after a sign-off that fails
// closed: in release.yml every deploy step comes after a step that verifies
// the digest's attestations (gh attestation verify, signer cd.yml on main),
// production's after the approval check too, and every job waits for the
// check of production's protection rules. RELEASE_WORKFLOW names another
// file: check-delivery.sh runs this on broken copies to show it bites.
func TestReleaseVerifiesBeforeEveryDeploy(t *testing.T) {
	file := os.Getenv("RELEASE_WORKFLOW")
	if file == "" {
		file = filepath.Join(root, ".github", "workflows", "release.yml")
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var wf struct {
		Jobs map[string]struct {
			Needs any `yaml:"needs"`
			Steps []struct {
				Name string `yaml:"name"`
				Run  string `yaml:"run"`
			} `yaml:"steps"`
		} `yaml:"jobs"`
	}
	if err := yaml.Unmarshal(data, &wf); err != nil {
		t.Fatal(err)
	}
	verifies := regexp.MustCompile(`gh attestation verify "oci://\$IMAGE" --repo "\$GITHUB_REPOSITORY"\s*\\?\s*--signer-workflow "\$GITHUB_REPOSITORY/\.github/workflows/cd\.yml"\s*\\?\s*--source-ref refs/heads/main`)
	approves := regexp.MustCompile(`signoff\.sh approval approvals\.json "\$GITHUB_TRIGGERING_ACTOR"`)
	deploys := 0
	for name, job := range wf.Jobs {
		verified, approved := false, false
		for _, s := range job.Steps {
			verified = verified || verifies.MatchString(s.Run)
			approved = approved || approves.MatchString(s.Run)
			if !strings.Contains(s.Run, "scripts/ci/deploy.sh") {
				continue
			}
			deploys++
			if !verified {
				t.Errorf("release.yml job %s: step %q deploys before the digest's attestations are verified", name, s.Name)
			}
			if strings.Contains(s.Run, "deploy.sh production") && !approved {
				t.Errorf("release.yml job %s: step %q deploys to production before the sign-off is checked", name, s.Name)
			}
		}
	}
	if deploys < 2 {
		t.Errorf("release.yml has %d deploy steps, want staging and production", deploys)
	}
	// Every job runs after the protection-rule check: follow needs to it.
	var reaches func(job string, seen map[string]bool) bool
	reaches = func(job string, seen map[string]bool) bool {
		if job == "sign-off-rules" {
			return true
		}
		if seen[job] {
			return false
		}
		seen[job] = true
		var needs []string
		switch n := wf.Jobs[job].Needs.(type) {
		case string:
			needs = []string{n}
		case []any:
			for _, v := range n {
				needs = append(needs, fmt.Sprint(v))
			}
		}
		for _, n := range needs {
			if reaches(n, seen) {
				return true
			}
		}
		return false
	}
	rules := false
	for _, s := range wf.Jobs["sign-off-rules"].Steps {
		rules = rules || strings.Contains(s.Run, "signoff.sh rules")
	}
	if !rules {
		t.Error("release.yml: no sign-off-rules job checking production's protection (signoff.sh rules)")
	}
	for name := range wf.Jobs {
		if !reaches(name, map[string]bool{}) {
			t.Errorf("release.yml job %s does not wait for sign-off-rules", name)
		}
	}
}

// Cluster hygiene, in every environment: the namespace enforces the
// restricted Pod Security Standard; the network is default-deny with only
// DNS, the API's dependencies and the ingress controller let through; the Go
// runtime's memory limit follows the container's (downward API).
func TestNamespaceNetworkAndMemoryLimits(t *testing.T) {
	for _, env := range []string{"dev", "staging", "production"} {
		t.Run(env, func(t *testing.T) {
			objs := build(t, overlay(env))
			var ns object
			for id, o := range objs {
				if strings.HasPrefix(id, "Namespace/") {
					ns = o
				}
			}
			md, _ := ns["metadata"].(map[string]any)
			labels, _ := md["labels"].(map[string]any)
			if labels["pod-security.kubernetes.io/enforce"] != "restricted" || md["name"] != "notes-api-"+env {
				t.Errorf("namespace %v labels %v: want notes-api-%s enforcing restricted", md["name"], labels, env)
			}
			rendered, err := yaml.Marshal(objs)
			if err != nil {
				t.Fatal(err)
			}
			var policies map[string]struct {
				Spec struct {
					PodSelector map[string]any `yaml:"podSelector"`
					PolicyTypes []string       `yaml:"policyTypes"`
					Ingress     []struct {
						From  []map[string]any `yaml:"from"`
						Ports []struct {
							Protocol string
							Port     int
						}
					}
					Egress []struct {
						Ports []struct {
							Protocol string
							Port     int
						}
					}
				}
			}
			if err := yaml.Unmarshal(rendered, &policies); err != nil {
				t.Fatal(err)
			}
			deny := policies["NetworkPolicy/default-deny"].Spec
			if len(deny.PodSelector) != 0 || fmt.Sprint(deny.PolicyTypes) != "[Ingress Egress]" || len(deny.Ingress)+len(deny.Egress) != 0 {
				t.Errorf("default-deny %+v: want every pod, both directions, no rule", deny)
			}
			egress := func(name string) map[string]bool {
				ports := map[string]bool{}
				for _, e := range policies["NetworkPolicy/"+name].Spec.Egress {
					for _, p := range e.Ports {
						ports[fmt.Sprintf("%s/%d", p.Protocol, p.Port)] = true
					}
				}
				return ports
			}
			if !egress("allow-dns")["UDP/53"] || !egress("allow-dns")["TCP/53"] {
				t.Errorf("allow-dns lets through %v, want DNS on UDP and TCP 53", egress("allow-dns"))
			}
			api := policies["NetworkPolicy/notes-api"].Spec
			for _, p := range []string{"TCP/5432", "TCP/6379", "TCP/587", "TCP/443"} {
				if !egress("notes-api")[p] {
					t.Errorf("the API's egress lacks %s (PostgreSQL, Redis, SMTP, New Relic)", p)
				}
			}
			if len(api.Ingress) != 1 || len(api.Ingress[0].Ports) != 1 || api.Ingress[0].Ports[0].Port != 8080 ||
				!strings.Contains(fmt.Sprint(api.Ingress[0].From), "ingress-nginx") {
				t.Errorf("the API's ingress %+v: want port 8080 from the ingress controller only", api.Ingress)
			}
			if !strings.Contains(string(rendered), "name: GOMEMLIMIT\n") || !strings.Contains(string(rendered), "resource: limits.memory") {
				t.Error("the API container has no GOMEMLIMIT from its memory limit (resourceFieldRef limits.memory)")
			}
		})
	}
}

// ---------------------------------------------------------------------------
// Migrations once per release, before the rollout

// The order of scripts/ci/deploy.sh against a cluster, recorded: kubectl is
// a stand-in on PATH that logs each call and answers the Job's status with
// KUBECTL_JOB_STATE. No cluster runs here, so this checks what deploy.sh
// asks of one (the real kubectl's label filtering is what apply -l does);
// the manifests themselves are checked by kubectl-validate in check-delivery.
func TestDeployMigratesOnceBeforeTheRollout(t *testing.T) {
	k := kustomize(t)
	bin := t.TempDir()
	calls := filepath.Join(bin, "calls.log")
	stub := `#!/usr/bin/env bash
printf '%s\n' "$*" >>"$KUBECTL_CALLS"
case "$*" in
*" get job "*) printf '%s ' $KUBECTL_JOB_STATE ;;
esac
`
	if err := os.WriteFile(filepath.Join(bin, "kubectl"), []byte(stub), 0o755); err != nil { //nolint:gosec // an executable stand-in
		t.Fatal(err)
	}
	ref := serviceImage + "@sha256:" + strings.Repeat("cd", 32)
	deploy := func(state string) (string, []string, error) {
		_ = os.Remove(calls)
		cmd := exec.Command("bash", filepath.Join(root, "scripts", "ci", "deploy.sh"), "production", ref)
		cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"), "KUSTOMIZE="+k,
			"KUBECTL_CALLS="+calls, "KUBECTL_JOB_STATE="+state, "MIGRATE_TIMEOUT=0")
		out, err := cmd.CombinedOutput()
		data, _ := os.ReadFile(calls)
		return string(out), strings.Split(strings.TrimSpace(string(data)), "\n"), err
	}
	// index returns the position of the first call containing want, or -1.
	index := func(log []string, want string) int {
		return slices.IndexFunc(log, func(c string) bool { return strings.Contains(c, want) })
	}
	const (
		applyRest    = "-l app.kubernetes.io/component notin (api,migrate)"
		deleteJob    = "-n notes-api-production delete job notes-api-migrate"
		applyJob     = "-l app.kubernetes.io/component=migrate"
		waitJob      = "get job notes-api-migrate"
		applyAPI     = "-l app.kubernetes.io/component=api"
		rolloutAfter = "rollout status deployment/notes-api"
	)

	t.Run("complete: migrate, then roll out", func(t *testing.T) {
		out, log, err := deploy("Complete")
		if err != nil {
			t.Fatalf("deploy.sh: %v\n%s", err, out)
		}
		order := []string{applyRest, deleteJob, applyJob, waitJob, applyAPI, rolloutAfter}
		last := -1
		for _, step := range order {
			i := index(log, step)
			if i < 0 || i < last {
				t.Fatalf("kubectl calls %q: want %q after the previous step of %q", log, step, order)
			}
			last = i
		}
		if n := len(slices.DeleteFunc(slices.Clone(log), func(c string) bool { return !strings.Contains(c, applyJob) })); n != 1 {
			t.Errorf("the migration Job was applied %d times, want once", n)
		}
	})
	t.Run("failed: nothing of the new version is rolled out", func(t *testing.T) {
		out, log, err := deploy("Failed")
		if err == nil {
			t.Fatalf("deploy.sh succeeded although the migration failed:\n%s", out)
		}
		if index(log, applyAPI) >= 0 || index(log, rolloutAfter) >= 0 {
			t.Errorf("the Deployment was applied after a failed migration: %q", log)
		}
		if !strings.Contains(out, "the migration job did not complete (Failed)") {
			t.Errorf("deploy.sh does not say the migration failed:\n%s", out)
		}
	})
	t.Run("stuck: the wait gives up", func(t *testing.T) {
		out, log, err := deploy("")
		if err == nil || index(log, applyAPI) >= 0 || !strings.Contains(out, "(Timeout)") {
			t.Errorf("a migration Job that never finishes: err %v, calls %q, output:\n%s", err, log, out)
		}
	})
}

// ---------------------------------------------------------------------------
// Admission: only signed images in staging and production

// The Kyverno policy is a custom resource, which kubectl-validate cannot
// check without Kyverno's CRDs; this test reads it as the cluster would and
// asserts what it must enforce: the staging and production namespaces (the
// overlays' own), a keyless signature by cd.yml on main from GitHub's OIDC
// issuer, required and by digest, Enforce on every rule and a closed
// webhook, and an image allow-list that admits what the renders run and
// refuses anything else. ADMISSION_POLICY names another file:
// check-delivery.sh runs this on a broken copy to show it bites.
func TestAdmissionPolicyRefusesUnsignedImages(t *testing.T) {
	file := os.Getenv("ADMISSION_POLICY")
	if file == "" {
		file = filepath.Join(root, "deploy", "kubernetes", "cluster", "signed-images.yaml")
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	type matchT struct {
		Any []struct {
			Resources struct {
				Kinds      []string `yaml:"kinds"`
				Namespaces []string `yaml:"namespaces"`
			} `yaml:"resources"`
		} `yaml:"any"`
	}
	var policy struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Spec       struct {
			ValidationFailureAction string `yaml:"validationFailureAction"`
			WebhookConfiguration    struct {
				FailurePolicy string `yaml:"failurePolicy"`
			} `yaml:"webhookConfiguration"`
			Rules []struct {
				Name         string `yaml:"name"`
				Match        matchT `yaml:"match"`
				VerifyImages []struct {
					ImageReferences []string `yaml:"imageReferences"`
					FailureAction   string   `yaml:"failureAction"`
					VerifyDigest    bool     `yaml:"verifyDigest"`
					Required        bool     `yaml:"required"`
					Attestors       []struct {
						Entries []struct {
							Keyless struct {
								Subject string `yaml:"subject"`
								Issuer  string `yaml:"issuer"`
							} `yaml:"keyless"`
						} `yaml:"entries"`
					} `yaml:"attestors"`
				} `yaml:"verifyImages"`
				Validate *struct {
					FailureAction string `yaml:"failureAction"`
					Pattern       struct {
						Spec map[string][]struct {
							Image string `yaml:"image"`
						} `yaml:"spec"`
					} `yaml:"pattern"`
				} `yaml:"validate"`
			} `yaml:"rules"`
		} `yaml:"spec"`
	}
	if err := yaml.Unmarshal(data, &policy); err != nil {
		t.Fatalf("signed-images.yaml: %v", err)
	}
	if policy.APIVersion != "kyverno.io/v1" || policy.Kind != "ClusterPolicy" {
		t.Fatalf("signed-images.yaml is %s %s, want a kyverno.io/v1 ClusterPolicy", policy.APIVersion, policy.Kind)
	}
	if a := policy.Spec.ValidationFailureAction; a != "" && a != "Enforce" {
		t.Errorf("validationFailureAction %s, want Enforce (or unset, with Enforce per rule)", a)
	}
	if fp := policy.Spec.WebhookConfiguration.FailurePolicy; fp != "Fail" {
		t.Errorf("webhookConfiguration.failurePolicy %q: want Fail, so pods are refused while Kyverno is unreachable", fp)
	}

	staging, production := build(t, overlay("staging")), build(t, overlay("production"))
	var namespaces []string
	for _, objs := range []map[string]object{staging, production} {
		for id := range objs {
			if name, ok := strings.CutPrefix(id, "Namespace/"); ok {
				namespaces = append(namespaces, name)
			}
		}
	}
	sort.Strings(namespaces)

	const (
		wantSubject = "https://github.com/" + "prodready/service" + "/.github/workflows/cd.yml@refs/heads/main"
		wantIssuer  = "https://token.actions.githubusercontent.com"
	)
	if !strings.HasSuffix(serviceImage, "/prodready/service") {
		t.Fatalf("the service image %s is not this repository's: update the subject", serviceImage)
	}
	var verified, allowList bool
	var allowed []string
	for _, r := range policy.Spec.Rules {
		for _, m := range r.Match.Any {
			ns := slices.Sorted(slices.Values(m.Resources.Namespaces))
			if !slices.Equal(ns, namespaces) || !slices.Equal(m.Resources.Kinds, []string{"Pod"}) {
				t.Errorf("rule %s matches %v in %v; want Pods in %v (the staging and production overlays' namespaces)",
					r.Name, m.Resources.Kinds, ns, namespaces)
			}
		}
		for _, v := range r.VerifyImages {
			if v.FailureAction != "Enforce" || !v.Required || !v.VerifyDigest {
				t.Errorf("rule %s: failureAction %q, required %v, verifyDigest %v; want Enforce, true, true", r.Name, v.FailureAction, v.Required, v.VerifyDigest)
			}
			if !slices.ContainsFunc(v.ImageReferences, func(p string) bool { return kyvernoMatch(p, serviceImage+"@sha256:"+strings.Repeat("0", 64)) }) {
				t.Errorf("rule %s checks %v, not the service's image %s", r.Name, v.ImageReferences, serviceImage)
			}
			for _, a := range v.Attestors {
				for _, e := range a.Entries {
					if e.Keyless.Subject != wantSubject || e.Keyless.Issuer != wantIssuer {
						t.Errorf("rule %s accepts signatures by %q from %q; want %q from %q (cd.yml on main)",
							r.Name, e.Keyless.Subject, e.Keyless.Issuer, wantSubject, wantIssuer)
					}
					verified = true
				}
			}
		}
		if v := r.Validate; v != nil {
			if v.FailureAction != "Enforce" {
				t.Errorf("rule %s: failureAction %q, want Enforce", r.Name, v.FailureAction)
			}
			if cs := v.Pattern.Spec["containers"]; len(cs) == 1 {
				allowed = strings.Split(cs[0].Image, " | ")
				allowList = true
			}
		}
	}
	if !verified {
		t.Error("no rule verifies a keyless signature of the service's image")
	}
	if !allowList {
		t.Fatal("no rule limits the images a container may run")
	}
	admitted := func(img string) bool {
		return slices.ContainsFunc(allowed, func(p string) bool { return kyvernoMatch(strings.TrimSpace(p), img) })
	}
	// What staging and production run must be admitted, once promoted (by digest).
	for env, objs := range map[string]map[string]object{"staging": staging, "production": production} {
		for _, o := range objs {
			for _, c := range allContainers(podSpec(o)) {
				if img := fmt.Sprint(c["image"]); !admitted(img) {
					t.Errorf("%s runs %s, which the admission policy refuses (allowed: %v)", env, img, allowed)
				}
			}
		}
	}
	for _, img := range []string{serviceImage + ":main", "nginx:latest", "ghcr.io/someone/else@sha256:" + strings.Repeat("1", 64)} {
		if admitted(img) {
			t.Errorf("the allow-list admits %s; want only the service by digest and the named backup images", img)
		}
	}

	// The signature it checks is one cd.yml makes, with the OIDC token.
	cd, err := os.ReadFile(filepath.Join(root, ".github", "workflows", "cd.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)run: cosign sign --yes "\$IMAGE_REF"$`).Match(cd) || !strings.Contains(string(cd), "id-token: write") {
		t.Error("cd.yml does not sign the digest keylessly (cosign sign with id-token: write): the policy would refuse every release")
	}
}

// kyvernoMatch reports whether value matches a Kyverno wildcard pattern:
// * is any run of characters, ? one character.
func kyvernoMatch(pattern, value string) bool {
	re := "^" + strings.NewReplacer(`\*`, ".*", `\?`, ".").Replace(regexp.QuoteMeta(pattern)) + "$"
	return regexp.MustCompile(re).MatchString(value)
}

// ---------------------------------------------------------------------------
// Continuous backups on Kubernetes: pgBackRest jobs, the Litestream sidecar

// The pgBackRest Component: the four jobs on the systemd timers' schedule,
// each running the one pgbackrest-backup.sh with the one configuration
// template from scripts/backup/, recording into the service's database, and
// hardened like every other pod.
func TestPgBackRestJobsFollowTheScriptsSchedule(t *testing.T) {
	objs := build(t, filepath.Join(root, "deploy", "backup", "pgbackrest"))
	jobs := []struct{ name, schedule, timer, calendar string }{
		{"full", "30 1 * * 0", "full", "Sun *-*-* 01:30:00 UTC"},
		{"diff", "30 1 * * 1-6", "diff", "Mon..Sat *-*-* 01:30:00 UTC"},
		{"incr", "15 * * * *", "incr", "*-*-* *:15:00 UTC"},
		{"check", "*/5 * * * *", "check", "*:0/5"},
	}
	for _, j := range jobs {
		t.Run(j.name, func(t *testing.T) {
			id := "CronJob/notes-api-pgbackrest-" + j.name
			cj, ok := objs[id]
			if !ok {
				t.Fatalf("no %s in the render", id)
			}
			spec := cj["spec"].(map[string]any)
			if spec["schedule"] != j.schedule || spec["timeZone"] != "Etc/UTC" || spec["concurrencyPolicy"] != "Forbid" {
				t.Errorf("%s: schedule %v %v, concurrency %v; want %q in Etc/UTC, Forbid", id, spec["schedule"], spec["timeZone"], spec["concurrencyPolicy"], j.schedule)
			}
			timer, err := os.ReadFile(filepath.Join(root, "deploy", "systemd", "notes-api-pgbackrest-"+j.timer+".timer"))
			if err != nil || !strings.Contains(string(timer), "OnCalendar="+j.calendar+"\n") {
				t.Errorf("%s runs at %q but notes-api-pgbackrest-%s.timer not at %q: keep the two schedules the same", id, j.schedule, j.timer, j.calendar)
			}
			jt := spec["jobTemplate"].(map[string]any)["spec"].(map[string]any)
			if jt["activeDeadlineSeconds"] == nil {
				t.Errorf("%s: no activeDeadlineSeconds: a hung backup would run forever", id)
			}
			pod := jt["template"].(map[string]any)["spec"].(map[string]any)
			checkHardened(t, id, pod, 999) // the postgres image's user
			c := allContainers(pod)[0]
			if fmt.Sprint(c["command"]) != "[bash /opt/notes-api-backup/pgbackrest-backup.sh]" || fmt.Sprint(c["args"]) != "["+j.name+"]" {
				t.Errorf("%s runs %v %v; want pgbackrest-backup.sh %s", id, c["command"], c["args"], j.name)
			}
			env := map[string]string{}
			for _, e := range c["env"].([]any) {
				e := e.(map[string]any)
				env[e["name"].(string)] = fmt.Sprint(e["value"], e["valueFrom"])
			}
			for name, want := range map[string]string{
				"PGBACKREST_CONFIG":            "/opt/notes-api-backup/pgbackrest.conf",
				"DATABASE_URL":                 "key:database-url name:notes-api",
				"PGBACKREST_REPO1_CIPHER_PASS": "key:cipher-pass name:notes-api-pgbackrest",
			} {
				if !strings.Contains(env[name], want) {
					t.Errorf("%s: %s is %q, want it to contain %q", id, name, env[name], want)
				}
			}
		})
	}
	// The scripts and the template are the repository's, byte for byte.
	var scripts map[string]any
	for id, o := range objs {
		if strings.HasPrefix(id, "ConfigMap/notes-api-pgbackrest-scripts") {
			scripts = o["data"].(map[string]any)
		}
	}
	for key, file := range map[string]string{"pgbackrest-backup.sh": "pgbackrest-backup.sh", "lib.sh": "lib.sh", "pgbackrest.conf": "pgbackrest/pgbackrest.conf"} {
		want, err := os.ReadFile(filepath.Join(root, "scripts", "backup", file))
		if err != nil {
			t.Fatal(err)
		}
		if scripts[key] != string(want) {
			t.Errorf("the jobs' %s is not scripts/backup/%s", key, file)
		}
	}
	var policy struct {
		Spec struct {
			PodSelector struct {
				MatchLabels map[string]string `yaml:"matchLabels"`
			} `yaml:"podSelector"`
			Egress []struct {
				Ports []struct{ Port int } `yaml:"ports"`
			} `yaml:"egress"`
		} `yaml:"spec"`
	}
	raw, _ := yaml.Marshal(objs["NetworkPolicy/notes-api-pgbackrest"])
	if err := yaml.Unmarshal(raw, &policy); err != nil {
		t.Fatal(err)
	}
	var ports []int
	for _, e := range policy.Spec.Egress {
		for _, p := range e.Ports {
			ports = append(ports, p.Port)
		}
	}
	if policy.Spec.PodSelector.MatchLabels["app.kubernetes.io/component"] != "pgbackrest" || fmt.Sprint(ports) != "[8432 5432 443]" {
		t.Errorf("the jobs' NetworkPolicy selects %v and lets out %v; want the pgbackrest pods to pgBackRest TLS (8432), PostgreSQL, HTTPS", policy.Spec.PodSelector.MatchLabels, ports)
	}
}

// The Litestream Component, in the example that uses it: one writer on a
// volume, the replica restored into an empty volume before the API starts,
// Litestream as a native sidecar sharing the file and the control socket
// with the API, whose configuration (loaded by the binary) is continuous
// mode asking that socket; no autoscaler, no migration Job.
func TestLitestreamSidecarReplicatesTheSQLiteFile(t *testing.T) {
	objs := build(t, filepath.Join(root, "deploy", "kubernetes", "examples", "sqlite-litestream"))
	for _, gone := range []string{"HorizontalPodAutoscaler/notes-api", "Job/notes-api-migrate"} {
		if _, ok := objs[gone]; ok {
			t.Errorf("%s is in the SQLite render: one pod owns the file", gone)
		}
	}
	dep := objs["Deployment/notes-api"]
	spec := dep["spec"].(map[string]any)
	if spec["replicas"] != 1 || fmt.Sprint(spec["strategy"]) != "map[type:Recreate]" {
		t.Errorf("replicas %v, strategy %v; want one pod, Recreate (two pods never share the file)", spec["replicas"], spec["strategy"])
	}
	pod := podSpec(dep)
	checkHardened(t, "Deployment/notes-api", pod, 65532)
	inits, _ := pod["initContainers"].([]any)
	if len(inits) != 2 {
		t.Fatalf("init containers %v: want the restore, then the Litestream sidecar", inits)
	}
	restore, sidecar := inits[0].(map[string]any), inits[1].(map[string]any)
	if args := fmt.Sprint(restore["args"]); !strings.HasPrefix(args, "[restore ") || !strings.Contains(args, "-if-db-not-exists -if-replica-exists /data/notes.db") {
		t.Errorf("the first init container runs %s; want a restore of /data/notes.db only into an empty volume", args)
	}
	if sidecar["restartPolicy"] != "Always" || fmt.Sprint(sidecar["args"]) != "[replicate -config /etc/litestream/litestream.yml]" {
		t.Errorf("sidecar %v %v: want litestream replicate as a native sidecar (restartPolicy Always)", sidecar["restartPolicy"], sidecar["args"])
	}
	sidecarEnv := map[string]string{}
	for _, e := range sidecar["env"].([]any) {
		e := e.(map[string]any)
		sidecarEnv[e["name"].(string)] = fmt.Sprint(e["value"])
	}
	l := loadContainerConfig(t, objs, "Deployment/notes-api", "api")
	if l.Backup.Mode != "continuous" || !l.Backup.CheckOn(l.Environment) || l.Backup.LitestreamSocket != sidecarEnv["LITESTREAM_SOCKET"] {
		t.Errorf("the API's backup check: mode %s, on %v, socket %q; want continuous, on, Litestream's socket %q",
			l.Backup.Mode, l.Backup.CheckOn(l.Environment), l.Backup.LitestreamSocket, sidecarEnv["LITESTREAM_SOCKET"])
	}
	if l.Database.URL != "" || l.Database.SQLitePath != sidecarEnv["APP_DATABASE_SQLITE_PATH"] || !l.Database.MigrateOnStart {
		t.Errorf("the API's database: url %q, file %q, migrate at start %v; want the file Litestream replicates (%s), migrated at start",
			l.Database.URL, l.Database.SQLitePath, l.Database.MigrateOnStart, sidecarEnv["APP_DATABASE_SQLITE_PATH"])
	}
	mounts := func(c map[string]any) map[string]string {
		out := map[string]string{}
		for _, m := range c["volumeMounts"].([]any) {
			m := m.(map[string]any)
			out[m["name"].(string)] = m["mountPath"].(string)
		}
		return out
	}
	api, side := mounts(container(t, objs, "api")), mounts(sidecar)
	if api["data"] != side["data"] || api["litestream-run"] != side["litestream-run"] {
		t.Errorf("the API mounts %v, the sidecar %v: they must share the data volume and the socket's", api, side)
	}
	for _, v := range pod["volumes"].([]any) {
		if v := v.(map[string]any); v["name"] == "data" {
			if _, ok := v["persistentVolumeClaim"]; !ok || v["emptyDir"] != nil {
				t.Errorf("the data volume is %v; want the PersistentVolumeClaim only", v)
			}
		}
	}
	want, err := os.ReadFile(filepath.Join(root, "scripts", "backup", "litestream", "litestream.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for id, o := range objs {
		if strings.HasPrefix(id, "ConfigMap/notes-api-litestream") && o["data"].(map[string]any)["litestream.yml"] != string(want) {
			t.Error("the sidecar's litestream.yml is not scripts/backup/litestream/litestream.yml")
		}
	}
}
