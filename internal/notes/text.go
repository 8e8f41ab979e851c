package notes

import (
	"encoding/json"
	"fmt"
	"strconv"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// Text rules. A NUL makes SQLite's statement text and PostgreSQL's text
// type fail, which would turn a client's input into a 500; other control
// characters have no place in a title and make log lines and terminals
// misbehave. A body keeps tab, newline and carriage return: it is
// multi-line text.

// controlIn returns a message naming the first control character in s that
// allow does not let through, or "" when there is none.
func controlIn(s string, allow func(rune) bool) string {
	i := 0
	for _, r := range s {
		i++
		if unicode.IsControl(r) && (allow == nil || !allow(r)) {
			return fmt.Sprintf("must not contain control characters; found %U at character %d", r, i)
		}
	}
	return ""
}

// bodyWhitespace is the control characters a body may contain.
func bodyWhitespace(r rune) bool { return r == '\t' || r == '\n' || r == '\r' }

// maxKeyLen bounds an id or cursor from a client. The store's ids are 36
// characters; anything much longer cannot name a note.
const maxKeyLen = 128

// wellFormedKey reports whether s can be an id or cursor this API handed
// out: short, valid UTF-8, no control characters. A key that is not is
// answered without asking the store, since no note can have it.
func wellFormedKey(s string) bool {
	if len(s) > maxKeyLen {
		return false
	}
	// Every key this API hands out is printable ASCII (a UUID, a cursor):
	// that is settled byte by byte, without decoding runes.
	printable := true
	for i := range len(s) {
		if c := s[i]; c < 0x20 || c >= 0x7f {
			printable = false
			break
		}
	}
	return printable || utf8.ValidString(s) && controlIn(s, nil) == ""
}

// badEncoding returns the names of the top-level string fields of the JSON
// object in body whose text is not valid Unicode: invalid UTF-8 bytes, or a
// \u escape of an unpaired UTF-16 surrogate. encoding/json silently turns
// both into U+FFFD, so without this check the client's text would be
// changed and stored without a word. body has already decoded as an Input.
func badEncoding(body []byte) []string {
	var fields map[string]json.RawMessage
	if json.Unmarshal(body, &fields) != nil {
		return nil
	}
	var bad []string
	for _, name := range []string{"title", "body"} { // Input's fields, in a stable order
		if raw, ok := fields[name]; ok && !validJSONString(raw) {
			bad = append(bad, name)
		}
	}
	return bad
}

// validJSONString reports whether raw, a JSON value, is a string whose
// bytes are valid UTF-8 and whose \u escapes pair their surrogates. Values
// that are not strings are left to the decoder's type errors.
func validJSONString(raw json.RawMessage) bool {
	if len(raw) < 2 || raw[0] != '"' {
		return true
	}
	s := raw[1 : len(raw)-1]
	for i := 0; i < len(s); {
		if s[i] != '\\' {
			r, size := utf8.DecodeRune(s[i:])
			if r == utf8.RuneError && size == 1 {
				return false
			}
			i += size
			continue
		}
		if i+1 < len(s) && s[i+1] != 'u' {
			i += 2 // \n, \", \\ and friends
			continue
		}
		r, ok := hex4(s, i+2)
		if !ok {
			return true // malformed escapes are the decoder's to report
		}
		i += 6
		if !utf16.IsSurrogate(r) {
			continue
		}
		// A high surrogate must be followed at once by an escaped low one.
		low, ok := hex4(s, i+2)
		if r >= 0xDC00 || !ok || s[i] != '\\' || s[i+1] != 'u' || utf16.DecodeRune(r, low) == unicode.ReplacementChar {
			return false
		}
		i += 6
	}
	return true
}

// hex4 reads the four hex digits of a \u escape starting at s[at].
func hex4(s []byte, at int) (rune, bool) {
	if at < 0 || at+4 > len(s) {
		return 0, false
	}
	v, err := strconv.ParseUint(string(s[at:at+4]), 16, 16) // four hex digits fit in 16 bits
	if err != nil {
		return 0, false
	}
	return rune(uint16(v)), true
}
