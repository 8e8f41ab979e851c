package config

import (
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"
)

// Redacted replaces a secret value in all output. An unset secret shows as
// empty so an operator can still tell "not set" from "set".
const Redacted = "[redacted]"

// Entry is one key as `api config` shows it.
type Entry struct {
	Key, Value, Source, Env string
}

// Entries lists every key with its effective value (secrets redacted) and source.
func (l *Loaded) Entries() []Entry {
	fields := Fields(l.sections...)
	out := make([]Entry, 0, len(fields))
	for _, f := range fields {
		v := f.Get(&l.Config)
		if f.Secret && v != "" {
			v = Redacted
		}
		out = append(out, Entry{Key: f.Key, Value: v, Source: l.Sources[f.Key], Env: f.Env})
	}
	return out
}

// SecretValues returns the value of every secret key that is set, the
// resources' sections included, for the alert mails to scrub: an error
// that quotes one (a URL with its token in a failed request) must not carry
// it into a mail or a log record.
func (l *Loaded) SecretValues() []string {
	var out []string
	for _, f := range Fields(l.sections...) {
		if !f.Secret {
			continue
		}
		if v := f.Get(&l.Config); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// Print writes the effective configuration as an aligned table.
func (l *Loaded) Print(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tVALUE\tSOURCE\tVARIABLE")
	for _, e := range l.Entries() {
		v := e.Value
		if v == "" {
			v = `""`
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", e.Key, v, e.Source, e.Env)
	}
	return tw.Flush()
}

// LogValue lets the whole configuration be logged at start-up with secrets
// redacted: logger.Info("config", "config", loaded).
func (l *Loaded) LogValue() slog.Value {
	entries := l.Entries()
	attrs := make([]slog.Attr, 0, len(entries))
	for _, e := range entries {
		attrs = append(attrs, slog.String(e.Key, e.Value))
	}
	return slog.GroupValue(attrs...)
}
