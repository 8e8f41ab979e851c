package config

import (
	"fmt"
	"net"
	"reflect"
	"strings"
	"unicode"
)

// checkText refuses control characters (NUL, newline, escape ...) in every
// string key. They are never meant: a name with a newline forges log lines
// and mail headers, and a NUL is cut short by C libraries and databases.
// The message names the character, never the value, which may be a secret.
func (l *Loaded) checkText(fields []Field) Errors {
	var errs Errors
	for _, f := range fields {
		var values []string
		switch v := f.value(&l.Config); {
		case f.typ.Kind() == reflect.String:
			values = []string{v.String()}
		case f.typ.Kind() == reflect.Slice && f.typ.Elem().Kind() == reflect.String:
			values = v.Interface().([]string)
		}
		for _, s := range values {
			if r, at, ok := firstControl(s); ok {
				errs = append(errs, Problem{Key: f.Key, Source: l.Sources[f.Key],
					Message: fmt.Sprintf("contains the control character %U at character %d (value not shown); remove it", r, at)})
				break
			}
		}
	}
	return errs
}

func firstControl(s string) (rune, int, bool) {
	i := 0
	for _, r := range s {
		i++
		if unicode.IsControl(r) {
			return r, i, true
		}
	}
	return 0, 0, false
}

// checkHost says what is wrong with http.host, or "" when it is empty (every
// interface), an IP address or a DNS name. It is checked here, with the
// other keys, so a bad value fails `api config` and start-up with exit 2
// instead of failing at listen, after the database was opened.
func checkHost(h string) string {
	if h == "" || net.ParseIP(h) != nil {
		return ""
	}
	if host, port, err := net.SplitHostPort(h); err == nil {
		return fmt.Sprintf("%q holds a port; set http.host to %q and the port in http.port (%s)", h, host, port)
	}
	if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") && net.ParseIP(h[1:len(h)-1]) != nil {
		return fmt.Sprintf("%q: write the IPv6 address without brackets, %q", h, h[1:len(h)-1])
	}
	if !isDNSName(h) {
		return fmt.Sprintf("%q is not an IP address or a host name", h)
	}
	return ""
}

// isDNSName reports whether s is a syntactically valid host name: dot-separated
// labels of letters, digits and inner hyphens, each 1 to 63 long, at most 253 in all.
func isDNSName(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			letter := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
			if !letter && (r < '0' || r > '9') && r != '-' {
				return false
			}
		}
	}
	return true
}
