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
// every name=value pair whose name LooksSecret replaced by [redacted] and the
// rest kept as sent (order, encoding). A pair is what any parser of the URI
// might read as one, not only net/url: a query parameter between & or ;
// (older frameworks and some proxies split on both, so ?x=1;token=... is a
// token to them), and a path parameter after a ; in a path segment
// (/status;token=...). Bytes outside printable ASCII in the query are
// percent-encoded (writeASCII). It is cut to 2 KiB, ending in "...".
func RedactURI(u *url.URL) string {
	p := u.EscapedPath()
	if u.RawQuery == "" && len(p) <= maxURILen && strings.IndexByte(p, ';') < 0 {
		return p // most requests: the path alone, nothing to build
	}
	var b strings.Builder
	// The path: only what follows a ; in a segment is a parameter.
	for i, seg := range strings.Split(p, "/") {
		if i > 0 {
			b.WriteByte('/')
		}
		first, params, ok := strings.Cut(seg, ";")
		b.WriteString(first)
		if ok {
			b.WriteByte(';')
			redactPairs(&b, params, ";")
		}
	}
	if u.RawQuery != "" {
		b.WriteByte('?')
		redactPairs(&b, u.RawQuery, "&;")
	}
	s := b.String()
	if len(s) > maxURILen {
		s = s[:maxURILen-3] + "..."
	}
	return s
}

// writeASCII writes s with every byte outside printable ASCII
// percent-encoded. net/http passes such bytes in a query as they were sent
// (a conforming client encodes them), and raw they would reach the log as
// C1 controls (U+009B is an 8-bit CSI, which some terminals obey), bidi
// overrides (U+202E) and the like, which JSON leaves as they are; encoded,
// the line shows what was sent, unambiguously, to any viewer.
func writeASCII(b *strings.Builder, s string) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f {
			b.WriteString(s[:i])
			for ; i < len(s); i++ {
				if c := s[i]; c <= ' ' || c >= 0x7f {
					b.WriteByte('%')
					b.WriteByte(upperHex[c>>4])
					b.WriteByte(upperHex[c&0xF])
				} else {
					b.WriteByte(c)
				}
			}
			return
		}
	}
	b.WriteString(s)
}

const upperHex = "0123456789ABCDEF"

// redactPairs writes s, name=value pairs separated by any byte of seps,
// with the value of each pair whose name LooksSecret replaced; the
// separators are kept as sent.
func redactPairs(b *strings.Builder, s, seps string) {
	WritePairs(b, s, seps, func(b *strings.Builder, pair string) {
		rawName, name, _, hasValue := SplitPair(pair)
		if hasValue && LooksSecret(name) {
			pair = rawName + "=" + Redacted
		}
		writeASCII(b, pair)
	})
}

// WritePairs writes s, name=value pairs separated by any byte of seps, with
// write writing each pair (as it is, or redacted) and the separators kept
// as sent: the one splitter of the logs' and the alert mails' redaction.
func WritePairs(b *strings.Builder, s, seps string, write func(b *strings.Builder, pair string)) {
	for {
		pair, rest := s, ""
		if i := strings.IndexAny(s, seps); i >= 0 {
			pair, rest = s[:i], s[i:]
		}
		write(b, pair)
		if rest == "" {
			return
		}
		b.WriteByte(rest[0])
		s = rest[1:]
	}
}

// SplitPair splits name=value: the name as sent and unescaped (as sent
// when it does not unescape), the value as sent, and whether there is one.
func SplitPair(pair string) (rawName, name, rawValue string, hasValue bool) {
	rawName, rawValue, hasValue = strings.Cut(pair, "=")
	name, err := url.QueryUnescape(rawName)
	if err != nil {
		name = rawName
	}
	return rawName, name, rawValue, hasValue
}
