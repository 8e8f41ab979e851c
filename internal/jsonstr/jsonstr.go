// Package jsonstr quotes strings for JSON the way the standard library
// does, for the hand-written encoders of what the service writes on every
// request (the access-log record, problem bodies): the same bytes as
// encoding/json or log/slog, without their reflection.
//
// The Append*Field functions write one member of the object that b is
// writing (the encoder has written its '{'): a comma unless the object is
// still empty, the key as it is (these encoders' keys are constants that
// need no escaping), a colon and the value.
package jsonstr

import (
	"strconv"
	"unicode/utf8"
)

// AppendKey appends the start of a member, up to its colon: `,"key":`, or
// `"key":` for the object's first member.
func AppendKey(b []byte, key string) []byte {
	if len(b) > 0 && b[len(b)-1] != '{' {
		b = append(b, ',')
	}
	b = append(b, '"')
	b = append(b, key...)
	return append(b, '"', ':')
}

// AppendHTMLField appends the member key: s, s quoted as AppendHTML does.
func AppendHTMLField(b []byte, key, s string) []byte { return AppendHTML(AppendKey(b, key), s) }

// AppendSlogField appends the member key: s, s quoted as AppendSlog does.
func AppendSlogField(b []byte, key, s string) []byte { return AppendSlog(AppendKey(b, key), s) }

// AppendIntField appends the member key: n.
func AppendIntField(b []byte, key string, n int64) []byte {
	return strconv.AppendInt(AppendKey(b, key), n, 10)
}

// AppendHTML appends s quoted as encoding/json.Marshal does by default: ",
// \ and control characters escaped (\b \f \n \r \t short), <, > and & as
// \u003c, \u003e, \u0026, invalid UTF-8 as \ufffd, U+2028 and U+2029
// escaped.
func AppendHTML(b []byte, s string) []byte { return appendQuoted(b, s, true) }

// AppendSlog appends s quoted as log/slog's JSON handler does: like
// AppendHTML but <, > and & as they are, and \b and \f as \u0008, \u000c.
func AppendSlog(b []byte, s string) []byte { return appendQuoted(b, s, false) }

// appendQuoted is AppendHTML (html) or AppendSlog.
func appendQuoted(b []byte, s string, html bool) []byte {
	safe, shortBF := &slogSafe, false
	if html {
		safe, shortBF = &htmlSafe, true
	}
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		// Eight bytes at a time while none of them needs escaping: what
		// these encoders quote (paths, addresses, IDs) is mostly that. The
		// usual SWAR tests, written out here so that nothing is a call:
		// below and has are exact about whether any byte matches, which is
		// all this needs.
		for i+8 <= len(s) {
			x := load8(s[i : i+8])
			bad := x&highs | below(x, 0x20) | has(x, '"') | has(x, '\\')
			if html {
				bad |= has(x, '<') | has(x, '>') | has(x, '&')
			}
			if bad != 0 {
				break
			}
			i += 8
		}
		if i >= len(s) {
			break
		}
		if c := s[i]; c < utf8.RuneSelf {
			if safe[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch {
			case c == '\\' || c == '"':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c == '\b' && shortBF:
				b = append(b, '\\', 'b')
			case c == '\f' && shortBF:
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

const hexDigits = "0123456789abcdef"

// load8 is the eight bytes of w as a little-endian word (constant indexes
// into an 8-byte string: the compiler makes it one load).
func load8(w string) uint64 {
	return uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
		uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56
}

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// below marks the bytes of x that are under n (n at most 0x80).
func below(x uint64, n byte) uint64 { return (x - ones*uint64(n)) & ^x & highs }

// has marks the bytes of x equal to c.
func has(x uint64, c byte) uint64 { return below(x^(ones*uint64(c)), 1) }

// slogSafe marks the ASCII bytes written as they are; htmlSafe, without <, >, &.
var slogSafe, htmlSafe = func() (s, h [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		s[c] = c != '"' && c != '\\'
		h[c] = s[c] && c != '<' && c != '>' && c != '&'
	}
	return s, h
}()
