package config

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Field describes one configuration key, derived from the struct tags of
// Config or of a resource's Section. Load, Validate, Redacted output and the
// documentation tests all walk Fields, so a new key added to a struct is
// checked everywhere at once.
type Field struct {
	Key     string   // dotted path, e.g. "log.level"
	Env     string   // the APP_ variable, e.g. "APP_LOG_LEVEL"
	Aliases []string // platform variables also accepted, e.g. "PORT"
	Secret  bool
	Enum    []string
	Min     string
	Max     string
	index   []int
	typ     reflect.Type
	section *section // the resource section holding the key; nil for Config's own
}

// EnvPrefix starts every environment variable of the service.
const EnvPrefix = "APP_"

// EnvName applies the one rule: APP_ + upper-case key, dots to underscores.
func EnvName(key string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

var durationType = reflect.TypeFor[time.Duration]()

// Fields lists every key of Config in declaration order, then the keys of
// each section, in the order given.
func Fields(sections ...Declared) []Field {
	var out []Field
	walk(reflect.TypeFor[Config](), "", nil, nil, &out)
	for _, d := range sections {
		s := d.declared()
		walk(s.typ, s.name+".", nil, &s, &out)
	}
	return out
}

func walk(t reflect.Type, prefix string, index []int, sec *section, out *[]Field) {
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() { // Config's sections: walked after it
			continue
		}
		name, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		key := prefix + name
		idx := append(append([]int(nil), index...), i)
		if sf.Type.Kind() == reflect.Struct {
			walk(sf.Type, key+".", idx, sec, out)
			continue
		}
		f := Field{
			Key: key, Env: EnvName(key), Secret: sf.Tag.Get("secret") == "true",
			Min: sf.Tag.Get("min"), Max: sf.Tag.Get("max"), index: idx, typ: sf.Type, section: sec,
		}
		if a := sf.Tag.Get("env"); a != "" {
			f.Aliases = strings.Split(a, ",")
		}
		if e, ok := sf.Tag.Lookup("enum"); ok {
			f.Enum = strings.Split(e, ",") // a leading empty entry means "" (inherit) is allowed
		}
		*out = append(*out, f)
	}
}

// value returns the addressable field of c that f describes. A section c
// was not loaded with reads as its defaults.
func (f Field) value(c *Config) reflect.Value {
	root := reflect.ValueOf(c).Elem()
	if f.section != nil {
		v, ok := c.sections[f.section.name]
		if !ok {
			v = f.section.defaults()
		}
		root = v.Elem()
	}
	return root.FieldByIndex(f.index)
}

// Get returns the current value of f in c, formatted as it would be written
// in YAML or an environment variable (durations as "5s", lists comma-separated).
func (f Field) Get(c *Config) string {
	v := f.value(c)
	switch {
	case f.typ == durationType:
		return time.Duration(v.Int()).String()
	case f.typ.Kind() == reflect.Slice:
		return strings.Join(v.Interface().([]string), ",")
	default:
		return fmt.Sprint(v.Interface())
	}
}

// set parses s as the type of f and stores it in c. Lists accept a
// comma-separated string (for environment variables).
func (f Field) set(c *Config, s string) error {
	v := f.value(c)
	switch {
	case f.typ == durationType:
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("%q is not a duration (use a number with a unit: 300ms, 5s, 2m, 1h)", s)
		}
		v.SetInt(int64(d))
	case f.typ.Kind() == reflect.String:
		v.SetString(s)
	case f.typ.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("%q is not a boolean (use true or false)", s)
		}
		v.SetBool(b)
	case f.typ.Kind() == reflect.Int || f.typ.Kind() == reflect.Int64:
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not a whole number", s)
		}
		v.SetInt(n)
	case f.typ.Kind() == reflect.Slice:
		var items []string // comma- or newline-separated, so a mounted secret file may hold one per line
		for p := range strings.FieldsFuncSeq(s, func(r rune) bool { return r == ',' || r == '\n' }) {
			if p = strings.TrimSpace(p); p != "" {
				items = append(items, p)
			}
		}
		v.Set(reflect.ValueOf(items))
	default:
		return fmt.Errorf("unsupported type %s", f.typ) // a programming error, caught by tests
	}
	return nil
}

// isList reports whether f takes a YAML sequence.
func (f Field) isList() bool { return f.typ.Kind() == reflect.Slice }

// checkRange validates min/max and enum tags against the current value.
func (f Field) checkRange(c *Config) string {
	v := f.value(c)
	if len(f.Enum) > 0 {
		s := v.String()
		for _, e := range f.Enum {
			if s == e {
				return ""
			}
		}
		return fmt.Sprintf("%q is not allowed: want one of %s", s, strings.Join(slices.DeleteFunc(slices.Clone(f.Enum), func(e string) bool { return e == "" }), ", "))
	}
	if f.Min == "" && f.Max == "" {
		return ""
	}
	parse := func(s string) int64 {
		if f.typ == durationType {
			d, _ := time.ParseDuration(s)
			return int64(d)
		}
		n, _ := strconv.ParseInt(s, 10, 64)
		return n
	}
	n := v.Int()
	if (f.Min != "" && n < parse(f.Min)) || (f.Max != "" && n > parse(f.Max)) {
		return fmt.Sprintf("%s is out of range: want %s to %s", f.Get(c), f.Min, f.Max)
	}
	return ""
}
