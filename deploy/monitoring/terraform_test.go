// Package monitoring_test checks the Synthetics Terraform offline: it parses
// the HCL with the library Terraform itself uses and evaluates what it can
// (variables, locals, the script template), so a monitor calling the wrong
// URL, an inline token or a slower period fails here, not in production.
package monitoring_test

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/tryfunc"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// sampleVars stand in for a production.tfvars; the token is a sentinel that
// must never show up anywhere but the secure credential.
var sampleVars = map[string]cty.Value{
	"account_id":   cty.NumberIntVal(1234567),
	"base_url":     cty.StringVal("https://notes.example.com"),
	"status_token": cty.StringVal("SENTINEL-status-token-0123456789"),
	"alert_emails": cty.ListVal([]cty.Value{cty.StringVal("oncall@example.com"), cty.StringVal("lead@example.com")}),
}

// module is the parsed directory: its blocks by kind and the context to
// evaluate expressions in.
type module struct {
	dir       string
	variables map[string]*hclsyntax.Block
	resources map[string]*hclsyntax.Block // "type.name"
	ctx       *hcl.EvalContext
}

func load(t *testing.T, vars map[string]cty.Value) *module {
	t.Helper()
	m := &module{dir: ".", variables: map[string]*hclsyntax.Block{}, resources: map[string]*hclsyntax.Block{}}
	files, _ := filepath.Glob("*.tf")
	if len(files) == 0 {
		t.Fatal("no .tf files")
	}
	p := hclparse.NewParser()
	var locals []*hclsyntax.Attribute
	for _, f := range files {
		file, diags := p.ParseHCLFile(f)
		if diags.HasErrors() {
			t.Fatalf("%s does not parse: %s", f, diags.Error())
		}
		for _, b := range file.Body.(*hclsyntax.Body).Blocks {
			switch b.Type {
			case "variable":
				m.variables[b.Labels[0]] = b
			case "resource":
				m.resources[b.Labels[0]+"."+b.Labels[1]] = b
			case "locals":
				for _, a := range b.Body.Attributes {
					locals = append(locals, a)
				}
			}
		}
	}
	m.ctx = &hcl.EvalContext{Variables: map[string]cty.Value{}, Functions: map[string]function.Function{
		"join": stdlib.JoinFunc, "length": stdlib.LengthFunc, "regex": stdlib.RegexFunc, "can": tryfunc.CanFunc,
		"templatefile": templateFile(m),
	}}
	// Variables: the sample values, else the defaults.
	v := map[string]cty.Value{}
	for name, b := range m.variables {
		if val, ok := vars[name]; ok {
			v[name] = val
		} else if d, ok := b.Body.Attributes["default"]; ok {
			v[name] = m.eval(t, d.Expr)
		} else {
			t.Fatalf("variable %s has no default and no sample value", name)
		}
	}
	m.ctx.Variables["var"] = cty.ObjectVal(v)
	m.ctx.Variables["path"] = cty.ObjectVal(map[string]cty.Value{"module": cty.StringVal(m.dir)})
	// Locals and resource attributes, in passes, so references resolve.
	for range 3 {
		l := map[string]cty.Value{}
		for _, a := range locals {
			l[a.Name] = m.tryEval(a.Expr)
		}
		m.ctx.Variables["local"] = cty.ObjectVal(l)
		byType := map[string]map[string]cty.Value{}
		for id, b := range m.resources {
			typ, name, _ := strings.Cut(id, ".")
			attrs := map[string]cty.Value{"id": cty.UnknownVal(cty.String)}
			for an, a := range b.Body.Attributes {
				attrs[an] = m.tryEval(a.Expr)
			}
			if byType[typ] == nil {
				byType[typ] = map[string]cty.Value{}
			}
			byType[typ][name] = cty.ObjectVal(attrs)
		}
		for typ, objs := range byType {
			m.ctx.Variables[typ] = cty.ObjectVal(objs)
		}
	}
	return m
}

func (m *module) tryEval(e hcl.Expression) cty.Value {
	v, diags := e.Value(m.ctx)
	if diags.HasErrors() {
		return cty.DynamicVal
	}
	return v
}

func (m *module) eval(t *testing.T, e hcl.Expression) cty.Value {
	t.Helper()
	v, diags := e.Value(m.ctx)
	if diags.HasErrors() {
		t.Fatalf("cannot evaluate %s: %s", e.Range(), diags.Error())
	}
	return v
}

func (m *module) resource(t *testing.T, id string) *hclsyntax.Block {
	t.Helper()
	b, ok := m.resources[id]
	if !ok {
		t.Fatalf("no resource %s", id)
	}
	return b
}

func (m *module) attr(t *testing.T, id, name string) cty.Value {
	t.Helper()
	a, ok := m.resource(t, id).Body.Attributes[name]
	if !ok {
		t.Fatalf("%s has no %s", id, name)
	}
	return m.eval(t, a.Expr)
}

// traversal is the reference an attribute is, such as "var.status_token", or
// "" when it is anything else (a literal, a call, a template).
func traversal(b *hclsyntax.Block, name string) string {
	a, ok := b.Body.Attributes[name]
	if !ok {
		return ""
	}
	st, ok := a.Expr.(*hclsyntax.ScopeTraversalExpr)
	if !ok {
		return ""
	}
	var parts []string
	for _, s := range st.Traversal {
		switch s := s.(type) {
		case hcl.TraverseRoot:
			parts = append(parts, s.Name)
		case hcl.TraverseAttr:
			parts = append(parts, s.Name)
		}
	}
	return strings.Join(parts, ".")
}

// templateFile is Terraform's templatefile(path, vars).
func templateFile(m *module) function.Function {
	return function.New(&function.Spec{
		Params: []function.Parameter{{Name: "path", Type: cty.String}, {Name: "vars", Type: cty.DynamicPseudoType}},
		Type:   function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			src, err := os.ReadFile(args[0].AsString())
			if err != nil {
				return cty.NilVal, err
			}
			tmpl, diags := hclsyntax.ParseTemplate(src, args[0].AsString(), hcl.InitialPos)
			if diags.HasErrors() {
				return cty.NilVal, diags
			}
			v, diags := tmpl.Value(&hcl.EvalContext{Variables: args[1].AsValueMap()})
			if diags.HasErrors() {
				return cty.NilVal, diags
			}
			return v, nil
		},
	})
}

// TestStatusMonitor: the monitor calls <base_url>/status every minute from
// several locations, with the token from the secure credential.
func TestStatusMonitor(t *testing.T) {
	m := load(t, sampleVars)
	const mon = "newrelic_synthetics_script_monitor.status"
	for name, want := range map[string]string{"type": "SCRIPT_API", "period": "EVERY_MINUTE", "status": "ENABLED", "runtime_type": "NODE_API"} {
		if got := m.attr(t, mon, name); got.AsString() != want {
			t.Errorf("monitor %s = %q, want %q", name, got.AsString(), want)
		}
	}
	if n := m.attr(t, mon, "locations_public").LengthInt(); n < 2 {
		t.Errorf("the monitor runs from %d location(s), want several", n)
	}

	script := m.attr(t, mon, "script").AsString()
	if !strings.Contains(script, "url: 'https://notes.example.com/status'") {
		t.Errorf("the script does not call <base_url>/status:\n%s", script)
	}
	key := m.attr(t, "newrelic_synthetics_secure_credential.status_token", "key").AsString()
	if !strings.Contains(script, "'Authorization': 'Bearer ' + $secure."+key) {
		t.Errorf("the script does not send the secure credential %s as a bearer token:\n%s", key, script)
	}
	for _, want := range []string{"response.statusCode, 200", "status === 'pass' || status === 'warn'"} {
		if !strings.Contains(script, want) {
			t.Errorf("the script does not check %q:\n%s", want, script)
		}
	}
}

// TestStatusTokenIsOnlyASecureCredential: the token variable is sensitive
// with no default, the credential takes it as a reference, and its value
// appears nowhere else, script included.
func TestStatusTokenIsOnlyASecureCredential(t *testing.T) {
	m := load(t, sampleVars)
	v := m.variables["status_token"]
	if v == nil {
		t.Fatal("no variable status_token")
	}
	if s, ok := v.Body.Attributes["sensitive"]; !ok || m.eval(t, s.Expr) != cty.True {
		t.Error("variable status_token is not sensitive: terraform would print it in plans")
	}
	if _, ok := v.Body.Attributes["default"]; ok {
		t.Error("variable status_token has a default: a token in the repository")
	}
	cred := m.resource(t, "newrelic_synthetics_secure_credential.status_token")
	if got := traversal(cred, "value"); got != "var.status_token" {
		t.Errorf("the secure credential's value is %q, want the reference var.status_token", got)
	}
	token := sampleVars["status_token"].AsString()
	ids := make([]string, 0, len(m.resources))
	for id := range m.resources {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		for name, a := range m.resources[id].Body.Attributes {
			if id+"."+name == "newrelic_synthetics_secure_credential.status_token.value" {
				continue
			}
			if v := m.tryEval(a.Expr); v.IsKnown() && v.Type() == cty.String && strings.Contains(v.AsString(), token) {
				t.Errorf("%s.%s contains the status token", id, name)
			}
		}
	}
}

// TestAlertsReachTheEmailList: both conditions belong to the policy, watch
// the monitor and the APM application, and the workflow mails the list.
func TestAlertsReachTheEmailList(t *testing.T) {
	m := load(t, sampleVars)
	for _, c := range []string{"newrelic_nrql_alert_condition.status_failing", "newrelic_nrql_alert_condition.error_rate"} {
		if got := traversal(m.resource(t, c), "policy_id"); got != "newrelic_alert_policy.service.id" {
			t.Errorf("%s belongs to %q, want the policy", c, got)
		}
	}
	query := func(id string) string {
		for _, b := range m.resource(t, id).Body.Blocks {
			if b.Type == "nrql" {
				return m.eval(t, b.Body.Attributes["query"].Expr).AsString()
			}
		}
		t.Fatalf("%s has no nrql block", id)
		return ""
	}
	if q := query("newrelic_nrql_alert_condition.status_failing"); !strings.Contains(q, "FROM SyntheticCheck WHERE monitorName = 'notes-api /status' AND result = 'FAILED'") {
		t.Errorf("monitor failure query does not watch the monitor: %s", q)
	}
	if q := query("newrelic_nrql_alert_condition.error_rate"); !strings.Contains(q, "WHERE error IS true) FROM Transaction WHERE appName = 'notes-api'") {
		t.Errorf("error rate query does not watch the APM application: %s", q)
	}
	dest := m.resource(t, "newrelic_notification_destination.email")
	var emails string
	for _, b := range dest.Body.Blocks {
		if b.Type == "property" && m.eval(t, b.Body.Attributes["key"].Expr).AsString() == "email" {
			emails = m.eval(t, b.Body.Attributes["value"].Expr).AsString()
		}
	}
	if emails != "oncall@example.com,lead@example.com" {
		t.Errorf("the destination mails %q, want the alert_emails list", emails)
	}
	if got := traversal(m.resource(t, "newrelic_notification_channel.email"), "destination_id"); got != "newrelic_notification_destination.email.id" {
		t.Errorf("the channel sends to %q", got)
	}
	wf := m.resource(t, "newrelic_workflow.email")
	var channel, policy string
	for _, b := range wf.Body.Blocks {
		switch b.Type {
		case "destination":
			channel = traversal(b, "channel_id")
		case "issues_filter":
			for _, p := range b.Body.Blocks {
				if src := string(p.Body.Attributes["values"].Expr.Range().SliceBytes(mustRead(t, wf.Range().Filename))); strings.Contains(src, "newrelic_alert_policy.service.id") {
					policy = src
				}
			}
		}
	}
	if channel != "newrelic_notification_channel.email.id" || policy == "" {
		t.Errorf("the workflow routes the policy %q to %q, want the policy's issues to the e-mail channel", policy, channel)
	}
}

// TestVariablesRefuseWhatCannotWork: a base URL with a path (the monitor
// would call /x/status) or a single location is rejected at plan time.
func TestVariablesRefuseWhatCannotWork(t *testing.T) {
	m := load(t, sampleVars)
	check := func(variable string, value cty.Value) bool {
		for _, b := range m.variables[variable].Body.Blocks {
			if b.Type != "validation" {
				continue
			}
			ctx := m.ctx.NewChild()
			ctx.Variables = map[string]cty.Value{"var": cty.ObjectVal(map[string]cty.Value{variable: value})}
			ok, diags := b.Body.Attributes["condition"].Expr.Value(ctx)
			if diags.HasErrors() || ok.False() {
				return false
			}
		}
		return true
	}
	for _, tt := range []struct {
		variable string
		value    cty.Value
		ok       bool
	}{
		{"base_url", cty.StringVal("https://notes.example.com"), true},
		{"base_url", cty.StringVal("https://notes.example.com/api"), false},
		{"base_url", cty.StringVal("http://notes.example.com"), false},
		{"locations", cty.ListVal([]cty.Value{cty.StringVal("US_EAST_1")}), false},
		{"status_token", cty.StringVal("short"), false},
		{"alert_emails", cty.ListValEmpty(cty.String), false},
	} {
		if got := check(tt.variable, tt.value); got != tt.ok {
			t.Errorf("%s = %#v accepted %v, want %v", tt.variable, tt.value, got, tt.ok)
		}
	}
}

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
