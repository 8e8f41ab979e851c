package config

import (
	"reflect"
	"strings"
)

// Section is a configuration section that a resource package declares for
// itself (internal/notes declares notes.*), so this package knows no
// resource. T is a struct tagged as Config is (yaml, env, secret, enum, min,
// max); its keys are Name.<key> and its variables APP_<NAME>_<KEY>. Load,
// `api config`, redaction and the documentation tests treat them as every
// other key. A T with a Validate method (Validator) also checks the rules
// that span its keys.
type Section[T any] struct {
	Name    string // the top-level key: "notes"
	Default T      // the built-in values; config.yaml spells out the same
}

// Validator is a section's own check of the rules that span its keys. Each
// Problem names a key of the section ("default_page_size", Source left
// empty) and what is wrong; Load names the key in full
// (notes.default_page_size), adds where its value came from, and reports it
// with every other problem. It runs only when no key of the section has a
// problem of its own (type, range, enum), so it never repeats one.
type Validator interface {
	Validate() []Problem
}

// Declared is a Section of any type, as Load, Inspect and Fields take it.
type Declared interface {
	declared() section
}

// section is what the loader needs of a Section, whatever its type.
type section struct {
	name     string
	typ      reflect.Type
	defaults func() reflect.Value // a new *T holding the defaults
}

func (s Section[T]) declared() section {
	return section{name: s.Name, typ: reflect.TypeFor[T](), defaults: func() reflect.Value {
		v := s.Default
		return reflect.ValueOf(&v)
	}}
}

// From returns the section as c holds it: as loaded, or the defaults when c
// was not loaded with the section (Default() in a test).
func (s Section[T]) From(c Config) T {
	if v, ok := c.sections[s.Name]; ok {
		if t, ok := v.Interface().(*T); ok {
			return *t
		}
	}
	return s.Default
}

// withSections gives c a value of each section, holding its defaults.
func (c *Config) withSections(sections []Declared) {
	c.sections = make(map[string]reflect.Value, len(sections))
	for _, d := range sections {
		s := d.declared()
		c.sections[s.name] = s.defaults()
	}
}

// validateSections runs each section's Validator, unless a key of the
// section was already reported.
func (p *problems) validateSections(c *Config, sections []Declared) {
	for _, d := range sections {
		name := d.declared().name
		if p.reportedUnder(name + ".") {
			continue
		}
		// The pointer's method set has Validate on T and on *T alike.
		v, ok := c.sections[name].Interface().(Validator)
		if !ok {
			continue
		}
		for _, pr := range v.Validate() {
			p.add(name+"."+pr.Key, pr.Message)
		}
	}
}

// reportedUnder reports whether a key starting with prefix has a problem.
func (p *problems) reportedUnder(prefix string) bool {
	for k := range p.reported {
		if strings.HasPrefix(k, prefix) {
			return true
		}
	}
	return false
}
