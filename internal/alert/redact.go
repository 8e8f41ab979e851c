package alert

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/prodready/service/internal/logging"
)

// redacted replaces every secret in a mail; the same marker as in the logs.
const redacted = logging.Redacted

// mailSecretWords add to logging.LooksSecret's words (token, password, key,
// auth, secret, ...) those that mark credentials in request headers, which
// the logs never show but a mail does: Cookie, Set-Cookie, X-Session-Id,
// X-Pwd. Redacting a harmless header by mistake costs nothing; mailing a
// credential costs a rotation.
var mailSecretWords = []string{"cookie", "session", "pwd"}

// minSecretLen is the shortest value scrubbed from free text: shorter
// values ("1", "on") would blank out unrelated words, and are not secrets.
const minSecretLen = 4

// minRequestSecretLen is the shortest value from a request's credential
// headers or parameters scrubbed from the rest of the mail. The client
// chooses those values: at four characters, an outsider could send
// Cookie: a=panic; b=github.com and blank out the words of the very mail
// that reports their request. Real credentials are longer.
const minRequestSecretLen = 12

// requestSecrets keeps the request's values long enough to scrub.
func requestSecrets(values []string) []string {
	var out []string
	for _, v := range values {
		if len(v) >= minRequestSecretLen {
			out = append(out, v)
		}
	}
	return out
}

// secretName reports whether a header or parameter name looks like it holds
// a credential (case-insensitive, anywhere in the name): Authorization,
// Proxy-Authorization, Cookie, X-Api-Key, ?access_token=, ?X-Amz-Signature=.
func secretName(name string) bool {
	if logging.LooksSecret(name) {
		return true
	}
	n := strings.ToLower(name)
	for _, w := range mailSecretWords {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// redactHeaders returns the headers as sorted "Name: value" lines with the
// values of secret-looking headers replaced, and those values, so they can
// be scrubbed from the rest of the mail too (a token echoed in a panic).
func redactHeaders(h http.Header) (lines, secrets []string) {
	names := make([]string, 0, len(h))
	for name := range h {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		for _, v := range h[name] {
			if !secretName(name) {
				lines = append(lines, name+": "+v)
				continue
			}
			lines = append(lines, name+": "+redacted)
			secrets = append(secrets, v)
			// The parts too: "Bearer <token>", "a=<v1>; b=<v2>".
			for part := range strings.FieldsFuncSeq(v, func(r rune) bool { return r == ' ' || r == ';' || r == ',' }) {
				_, val, ok := strings.Cut(part, "=")
				if !ok {
					val = part
				}
				secrets = append(secrets, strings.Trim(val, `"`))
			}
		}
	}
	return lines, secrets
}

// redactQuery replaces the values of secret-looking parameters in a raw
// query, keeping the order, the separators and the other parameters as
// sent, and returns the replaced values. Parameters are split on ; as well
// as &, as older frameworks and some proxies split them (logging.RedactURI
// does the same).
func redactQuery(raw string) (string, []string) {
	if raw == "" {
		return "", nil
	}
	var secrets []string
	var b strings.Builder
	logging.WritePairs(&b, raw, "&;", func(b *strings.Builder, pair string) {
		k, name, v, _ := logging.SplitPair(pair)
		if secretName(name) {
			pair = k + "=" + redacted
			if val, err := url.QueryUnescape(v); err == nil {
				secrets = append(secrets, val)
			}
			secrets = append(secrets, v)
		}
		b.WriteString(pair)
	})
	return b.String(), secrets
}

// secretList keeps the values long enough to scrub, adds their URL-escaped
// forms (a token may appear escaped in a logged URL), and orders them
// longest first so a secret containing another is replaced whole.
func secretList(values []string) []string {
	var out []string
	for _, v := range values {
		if len(v) < minSecretLen {
			continue
		}
		out = append(out, v, url.QueryEscape(v), url.PathEscape(v))
	}
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return slices.Compact(out)
}

// newScrubber returns a replacer of every secret by [redacted].
func newScrubber(secrets []string) *strings.Replacer {
	pairs := make([]string, 0, 2*len(secrets))
	for _, s := range secrets {
		pairs = append(pairs, s, redacted)
	}
	return strings.NewReplacer(pairs...)
}

// maxSubject is the longest subject, in characters: mail clients cut
// subjects around there anyway, and a short one survives relays that fold
// long headers badly.
const maxSubject = 120

// subjectLine builds "<prefix> [<environment>] <kind>: <first line of text> (xN)"
// on one line: CR and LF are shown as \r and \n and other control characters
// as spaces, so error text cannot add headers (header injection); it is cut
// to maxSubject characters with "...", keeping the count.
func subjectLine(prefix, env, kind, text string, count int) string {
	first, _, _ := strings.Cut(strings.TrimLeft(text, "\r\n"), "\n")
	head := oneLine(prefix + " [" + env + "] " + kind + ": " + first)
	tail := ""
	if count > 1 {
		tail = " (x" + strconv.Itoa(count) + ")"
	}
	return truncate(head, maxSubject-len(tail)) + tail
}

// oneLine escapes CR, LF and tabs and replaces other control characters
// (and the Unicode line separators) with spaces; invalid UTF-8 becomes "?".
func oneLine(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i, r := range s {
		switch {
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == utf8.RuneError && isInvalidAt(s, i):
			b.WriteByte('?')
		case unicode.IsControl(r) || r == '\u2028' || r == '\u2029':
			b.WriteByte(' ')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func isInvalidAt(s string, i int) bool {
	_, size := utf8.DecodeRuneInString(s[i:])
	return size <= 1
}

// truncate cuts s to at most n characters, marking the cut. It works on
// bytes, without converting a long stack to runes first.
func truncate(s string, n int) string {
	count := 0
	for i := range s {
		if count == n-3 {
			if utf8.RuneCountInString(s[i:]) > 3 {
				return s[:i] + "..."
			}
			return s
		}
		count++
	}
	return s
}
