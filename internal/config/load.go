package config

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"reflect"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Problem is one thing wrong with the configuration.
type Problem struct {
	Key     string // dotted key, or "" for the file as a whole
	Source  string // "default", "config.yaml:12" or "env APP_LOG_LEVEL"
	Message string
}

func (p Problem) String() string {
	if p.Key == "" {
		return fmt.Sprintf("%s: %s", p.Source, p.Message)
	}
	return fmt.Sprintf("%s (%s): %s", p.Key, p.Source, p.Message)
}

// Errors is every problem found; Load returns it so an operator fixes all of
// them in one go instead of one per restart.
type Errors []Problem

func (e Errors) Error() string {
	var b strings.Builder
	if len(e) == 1 {
		b.WriteString("invalid configuration: 1 problem")
	} else {
		fmt.Fprintf(&b, "invalid configuration: %d problems", len(e))
	}
	for _, p := range e {
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	return b.String()
}

// Loaded is a validated configuration and where each value came from.
type Loaded struct {
	Config
	File     string            // the YAML file read, or ""
	Sources  map[string]string // key -> "default", "file:line" or "env NAME"
	sections []Declared        // the resources' sections it was loaded with
}

// Load builds the configuration: defaults, then the YAML file at path (if
// path is not empty), then the environment read through getenv. readFile reads
// <VAR>_FILE secrets and the YAML file (os.ReadFile in production; tests pass
// their own). sections are the resources' own (resource.List.Sections), loaded,
// checked and shown like the service's keys. It returns Errors listing every
// problem, or the valid Loaded. Use Inspect to see the values even when they
// are invalid.
func Load(path string, getenv func(string) string, readFile func(string) ([]byte, error), sections ...Declared) (*Loaded, error) {
	l, err := load(path, getenv, readFile, sections)
	if err != nil {
		return nil, err
	}
	return l, nil
}

func load(path string, getenv func(string) string, readFile func(string) ([]byte, error), sections []Declared) (*Loaded, error) {
	l := &Loaded{Config: Default(), File: path, Sources: map[string]string{}, sections: sections}
	l.withSections(sections)
	fields := Fields(sections...)
	byKey := make(map[string]Field, len(fields))
	for _, f := range fields {
		byKey[f.Key] = f
		l.Sources[f.Key] = "default"
	}
	var errs Errors

	if path != "" {
		data, err := readFile(path)
		if err != nil {
			errs = append(errs, Problem{Source: path, Message: "cannot read the config file: " + plainIOError(err)})
		} else {
			errs = append(errs, l.applyYAML(path, data, byKey)...)
		}
	}
	errs = append(errs, l.applyEnv(fields, getenv, readFile)...)
	errs = append(errs, l.validate(fields, errs)...)
	if len(errs) > 0 {
		return l, errs
	}
	return l, nil
}

// Inspect is Load for diagnosis (`api config`): it returns the values as far
// as they could be applied, with their sources, together with any Errors.
// Nothing must run on a configuration that has errors.
func Inspect(path string, getenv func(string) string, readFile func(string) ([]byte, error), sections ...Declared) (*Loaded, error) {
	return load(path, getenv, readFile, sections)
}

// applyYAML walks the document node by node, rather than unmarshalling into
// the struct, so that every value keeps its line number and an unknown key or
// a wrong type is reported with it instead of stopping at the first one.
func (l *Loaded) applyYAML(path string, data []byte, byKey map[string]Field) Errors {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return Errors{{Source: path, Message: "not valid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}}
	}
	if len(doc.Content) == 0 { // an empty file is allowed: defaults apply
		return nil
	}
	var errs Errors
	var visit func(n *yaml.Node, prefix string)
	visit = func(n *yaml.Node, prefix string) {
		where := fmt.Sprintf("%s:%d", path, n.Line)
		if n.Kind != yaml.MappingNode {
			name := strings.TrimSuffix(prefix, ".")
			if name == "" {
				errs = append(errs, Problem{Source: where, Message: "the file must be a mapping of keys to values"})
			} else {
				errs = append(errs, Problem{Key: name, Source: where, Message: "expected a section of keys, got a value"})
			}
			return
		}
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			key := prefix + k.Value
			at := fmt.Sprintf("%s:%d", path, k.Line)
			if seen[key] {
				errs = append(errs, Problem{Key: key, Source: at, Message: "duplicate key"})
				continue
			}
			seen[key] = true
			f, ok := byKey[key]
			if !ok {
				if isSection(key, byKey) {
					visit(v, key+".")
					continue
				}
				errs = append(errs, Problem{Key: key, Source: at, Message: "unknown key" + suggest(key, byKey)})
				continue
			}
			if msg := l.setFromNode(f, v); msg != "" {
				errs = append(errs, Problem{Key: key, Source: at, Message: msg})
				continue
			}
			l.Sources[key] = at
		}
	}
	visit(doc.Content[0], "")
	return errs
}

func (l *Loaded) setFromNode(f Field, v *yaml.Node) string {
	switch {
	case v.Kind == yaml.AliasNode:
		return "YAML aliases are not supported in the config file"
	case f.isList() && v.Kind == yaml.SequenceNode:
		items := make([]string, 0, len(v.Content))
		for _, it := range v.Content {
			if it.Kind != yaml.ScalarNode {
				return "expected a list of values"
			}
			items = append(items, it.Value)
		}
		if err := f.set(&l.Config, strings.Join(items, ",")); err != nil {
			return err.Error()
		}
	case v.Kind != yaml.ScalarNode:
		if f.isList() {
			return "expected a list of values"
		}
		return "expected a single value, got a " + nodeKind(v)
	case v.Tag == "!!null":
		if f.typ.Kind() == reflect.String || f.isList() {
			_ = f.set(&l.Config, "") // "key:" with nothing after it: empty, which cannot fail
			return ""
		}
		return "a value is required"
	default:
		if err := f.set(&l.Config, v.Value); err != nil {
			return err.Error()
		}
	}
	return ""
}

// applyEnv overrides keys from the environment: platform aliases first, then
// the APP_ variable (so APP_ wins), and <VAR>_FILE for secrets.
func (l *Loaded) applyEnv(fields []Field, getenv func(string) string, readFile func(string) ([]byte, error)) Errors {
	var errs Errors
	for _, f := range fields {
		names := append(append([]string(nil), f.Aliases...), f.Env)
		for _, name := range names {
			val, set := getenv(name), getenv(name) != ""
			if f.Secret {
				if file := getenv(name + "_FILE"); file != "" {
					if set {
						errs = append(errs, Problem{Key: f.Key, Source: "env " + name, Message: "set either " + name + " or " + name + "_FILE, not both"})
						continue
					}
					data, err := readFile(file)
					if err != nil {
						errs = append(errs, Problem{Key: f.Key, Source: "env " + name + "_FILE", Message: "cannot read the secret file: " + plainIOError(err)})
						continue
					}
					val, set, name = strings.TrimRight(string(data), "\r\n"), true, name+"_FILE"
				}
			}
			if !set {
				continue
			}
			if err := f.set(&l.Config, val); err != nil {
				errs = append(errs, Problem{Key: f.Key, Source: "env " + name, Message: err.Error()})
				continue
			}
			l.Sources[f.Key] = "env " + name
		}
	}
	return errs
}

func isPostgres(u string) bool {
	return strings.HasPrefix(u, "postgres://") || strings.HasPrefix(u, "postgresql://")
}

// checkURL validates a URL that may hold credentials, so its messages never
// repeat the value itself.
func checkURL(raw string, schemes ...string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		return "is not a valid URL (value not shown: it may contain a password)"
	}
	for _, s := range schemes {
		if u.Scheme == s {
			return ""
		}
	}
	return fmt.Sprintf("unsupported scheme %q: want one of %s", u.Scheme, strings.Join(schemes, ", "))
}

func isSection(key string, byKey map[string]Field) bool {
	for k := range byKey {
		if strings.HasPrefix(k, key+".") {
			return true
		}
	}
	return false
}

// suggest names the closest known key for a likely typo.
func suggest(key string, byKey map[string]Field) string {
	best, bestD := "", 3
	keys := make([]string, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if d := distance(key, k); d < bestD {
			best, bestD = k, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %s?)", best)
}

// distance is the Levenshtein edit distance.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

func nodeKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "section of keys"
	case yaml.SequenceNode:
		return "list"
	}
	return "value"
}

// plainIOError drops Go's "open x: " prefix noise but keeps the reason.
func plainIOError(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}
