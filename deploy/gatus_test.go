package deploy_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// gatusVersion is the Gatus version make gatus builds: the module's version
// in tools/gatus/go.mod.
func gatusVersion(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "tools", "gatus", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*github\.com/TwiN/gatus/v5 (v\S+)`).FindSubmatch(data)
	if m == nil {
		t.Fatal("tools/gatus/go.mod does not require github.com/TwiN/gatus/v5")
	}
	return string(m[1])
}

// TestGatusComponentRunsTheTestedConfiguration renders staging and
// production and checks the Gatus the cluster runs is the one the
// availability test proves: the same version as make gatus, the ConfigMap
// byte for byte deploy/monitoring/gatus/config.yaml, the token and SMTP
// settings from a Secret, the API reached through its Service, pods no
// selector of the API's picks up, and NetworkPolicies that let Gatus in.
func TestGatusComponentRunsTheTestedConfiguration(t *testing.T) {
	want, err := os.ReadFile(filepath.Join(root, "deploy", "monitoring", "gatus", "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	image := "twinproduction/gatus:" + gatusVersion(t)
	for _, env := range []string{"staging", "production"} {
		t.Run(env, func(t *testing.T) {
			objs := build(t, overlay(env))
			dep, ok := objs["Deployment/notes-api-gatus"]
			if !ok {
				t.Fatal("no Deployment/notes-api-gatus: the overlay does not include components/gatus")
			}
			ps := podSpec(dep)
			cs := allContainers(ps)
			var imgs []any
			for _, c := range cs {
				imgs = append(imgs, c["image"])
			}
			if len(cs) != 1 || cs[0]["image"] != image {
				t.Fatalf("Gatus containers run %v, want one running %s (tools/gatus/go.mod's version)", imgs, image)
			}
			c := cs[0]

			// The ConfigMap the pod mounts is the tested file.
			var cmName string
			for _, v := range ps["volumes"].([]any) {
				if cm, ok := v.(map[string]any)["configMap"].(map[string]any); ok {
					cmName, _ = cm["name"].(string)
				}
			}
			cm, ok := objs["ConfigMap/"+cmName]
			if !strings.HasPrefix(cmName, "notes-api-gatus-config-") || !ok {
				t.Fatalf("the Gatus pod mounts ConfigMap %q, want the generated notes-api-gatus-config-<hash>", cmName)
			}
			if got := cm["data"].(map[string]any)["config.yaml"]; got != string(want) {
				t.Error("the Gatus ConfigMap is not deploy/monitoring/gatus/config.yaml")
			}

			vars := map[string]map[string]any{}
			for _, e := range c["env"].([]any) {
				e := e.(map[string]any)
				vars[e["name"].(string)] = e
			}
			for _, name := range []string{"STATUS_TOKEN", "GATUS_SMTP_HOST", "GATUS_SMTP_PASSWORD", "GATUS_ALERT_TO"} {
				e := vars[name]
				if e == nil || e["value"] != nil || e["valueFrom"].(map[string]any)["secretKeyRef"] == nil {
					t.Errorf("%s: %v, want it from a Secret", name, e)
				}
			}
			if u := vars["NOTES_API_URL"]["value"]; u != "http://notes-api" {
				t.Errorf("NOTES_API_URL %v, want the API's Service http://notes-api", u)
			} else if _, ok := objs["Service/notes-api"]; !ok {
				t.Error("no Service/notes-api for Gatus to poll")
			}

			// Gatus's pod is not one of the API's (same namespace, shared labels).
			podLabels := dep["spec"].(map[string]any)["template"].(map[string]any)["metadata"].(map[string]any)["labels"].(map[string]any)
			api := objs["Deployment/notes-api"]["spec"].(map[string]any)["selector"].(map[string]any)["matchLabels"].(map[string]any)
			svc := objs["Service/notes-api"]["spec"].(map[string]any)["selector"].(map[string]any)
			for what, sel := range map[string]map[string]any{"Deployment/notes-api": api, "Service/notes-api": svc} {
				if selects(sel, podLabels) {
					t.Errorf("%s selects the Gatus pod (%v)", what, podLabels)
				}
			}

			// The namespace denies by default: Gatus may reach the API, and the API lets it in.
			out := objs["NetworkPolicy/notes-api-gatus"]
			in := objs["NetworkPolicy/notes-api-from-gatus"]
			if out == nil || in == nil {
				t.Fatal("the NetworkPolicies notes-api-gatus and notes-api-from-gatus are missing")
			}
			if !selects(out["spec"].(map[string]any)["podSelector"].(map[string]any)["matchLabels"].(map[string]any), podLabels) {
				t.Error("NetworkPolicy/notes-api-gatus does not select the Gatus pod")
			}
			from := in["spec"].(map[string]any)["ingress"].([]any)[0].(map[string]any)["from"].([]any)[0].(map[string]any)
			if !selects(from["podSelector"].(map[string]any)["matchLabels"].(map[string]any), podLabels) {
				t.Error("NetworkPolicy/notes-api-from-gatus does not let the Gatus pod in")
			}
		})
	}
}

// selects reports whether a matchLabels selector picks a pod with labels.
func selects(sel, labels map[string]any) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}
