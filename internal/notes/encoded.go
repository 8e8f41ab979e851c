package notes

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"

	"github.com/prodready/service/internal/jsonstr"
)

// EncodedNote is a note as the API sends it: its JSON, ready to write, and
// its version for the ETag. Stores that can answer this way (CachedStore)
// implement encodedGetter, and HandleGet writes the bytes as they are.
type EncodedNote struct {
	JSON    []byte
	Version int64
	note    *Note // the decoded note, when this was made from one
}

// encodedGetter is what HandleGet looks for besides Store.Get.
type encodedGetter interface {
	GetEncoded(ctx context.Context, id string) (EncodedNote, error)
}

// encodeNote encodes n exactly as writeNote's c.JSON would.
func encodeNote(n Note) (EncodedNote, error) {
	b, err := json.Marshal(n)
	if err != nil {
		return EncodedNote{}, err
	}
	return EncodedNote{JSON: b, Version: n.Version, note: &n}, nil
}

// entry is the cached form: "<version>\n<json>".
func (e EncodedNote) entry() []byte {
	b := strconv.AppendInt(make([]byte, 0, 24+len(e.JSON)), e.Version, 10)
	b = append(b, '\n')
	return append(b, e.JSON...)
}

// decodeEntry reads an entry made by entry, and reports whether it is a
// well-formed entry for the note id: a positive version, then a JSON object
// whose first member is that id (json.Marshal writes Note's fields in order).
// Anything else (a bug, an old format, tampering) is unreadable.
func decodeEntry(b []byte, id string) (EncodedNote, bool) {
	i := bytes.IndexByte(b, '\n')
	if i < 1 {
		return EncodedNote{}, false
	}
	v, err := strconv.ParseInt(string(b[:i]), 10, 64)
	if err != nil || v < 1 {
		return EncodedNote{}, false
	}
	body := b[i+1:]
	const open = `{"id":`
	rest, ok := bytes.CutPrefix(body, []byte(open))
	if !ok || len(body) == 0 || body[len(body)-1] != '}' {
		return EncodedNote{}, false
	}
	if rest, ok = cutJSONString(rest, id); !ok || len(rest) == 0 || rest[0] != ',' {
		return EncodedNote{}, false
	}
	return EncodedNote{JSON: body, Version: v}, true
}

// cutJSONString cuts s, JSON-encoded as encoding/json writes it, from the
// front of b. jsonstr.AppendHTML writes those bytes (an id the store makes,
// a UUID, in a few words of its fast path), into a buffer on the stack.
func cutJSONString(b []byte, s string) ([]byte, bool) {
	var buf [64]byte
	return bytes.CutPrefix(b, jsonstr.AppendHTML(buf[:0], s))
}
