package logging

import (
	"net/url"
	"strings"
)

// Redacted replaces a secret value in logs.
const Redacted = "[redacted]"

// secretWords mark a name whose value must not be logged: a query parameter,
// a header or a field called access_token, X-Api-Key, password, auth, ... The
// match is a case-insensitive substring, so it errs towards redacting
// ("author" is redacted too): a lost value is cheaper than a leaked secret.
// signature and credential cover pre-signed URLs (X-Amz-Signature).
var secretWords = []string{"token", "password", "passwd", "secret", "key", "auth", "signature", "credential"}

// LooksSecret reports whether a value named name should be redacted.
func LooksSecret(name string) bool {
	name = strings.ToLower(name)
	for _, w := range secretWords {
		if strings.Contains(name, w) {
			return true
		}
	}
	return false
}

// maxURILen caps a logged URI: a client controls its length, and a 64 KiB
// query on every line is a cheap way to flood the logs.
const maxURILen = 2048

// RedactURI returns u's path and query for a log line, with the value of
// every query parameter whose name LooksSecret replaced by [redacted] and the
// rest kept as sent (order, encoding). It is cut to 2 KiB, ending in "...".
func RedactURI(u *url.URL) string {
	if u.RawQuery == "" { // most requests: the path alone, nothing to build
		if p := u.EscapedPath(); len(p) <= maxURILen {
			return p
		}
	}
	var b strings.Builder
	b.WriteString(u.EscapedPath())
	if u.RawQuery != "" {
		b.WriteByte('?')
		for i, part := range strings.Split(u.RawQuery, "&") {
			if i > 0 {
				b.WriteByte('&')
			}
			rawName, _, hasValue := strings.Cut(part, "=")
			name, err := url.QueryUnescape(rawName)
			if err != nil {
				name = rawName
			}
			if hasValue && LooksSecret(name) {
				part = rawName + "=" + Redacted
			}
			b.WriteString(part)
		}
	}
	s := b.String()
	if len(s) > maxURILen {
		s = s[:maxURILen-3] + "..."
	}
	return s
}
