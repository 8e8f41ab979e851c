package notes

import (
	"bytes"
	"testing"
	"time"
)

// The cached form must come back exactly as it went in for the note it
// belongs to, and be refused for anything else: another note's entry, an
// old format, a truncated write.
func TestCacheEntry(t *testing.T) {
	n := Note{ID: "0190c6f2-aaaa-7bbb-8ccc-000000000001", Title: "t", Body: "b", Version: 7, CreatedAt: time.Unix(0, 0).UTC()}
	odd := n
	odd.ID = `id with "quotes" <and> & é`
	for _, note := range []Note{n, odd} {
		e, err := encodeNote(note)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := decodeEntry(e.entry(), note.ID)
		if !ok || got.Version != note.Version || !bytes.Equal(got.JSON, e.JSON) {
			t.Errorf("round trip of %q: ok=%v version=%d json=%s, want %d %s", note.ID, ok, got.Version, got.JSON, note.Version, e.JSON)
		}
	}
	good, _ := encodeNote(n)
	entry := good.entry()
	for _, tc := range []struct {
		name  string
		entry []byte
		id    string
	}{
		{"another note's entry", entry, "0190c6f2-aaaa-7bbb-8ccc-000000000002"},
		{"an id that is a prefix of the stored one", entry, "0190c6f2"},
		{"the v1 format (bare JSON)", good.JSON, n.ID},
		{"no version", append([]byte("\n"), good.JSON...), n.ID},
		{"version zero", append([]byte("0\n"), good.JSON...), n.ID},
		{"not a number", append([]byte("x\n"), good.JSON...), n.ID},
		{"truncated", entry[:len(entry)-1], n.ID},
		{"empty", nil, n.ID},
	} {
		if _, ok := decodeEntry(tc.entry, tc.id); ok {
			t.Errorf("%s: accepted", tc.name)
		}
	}
}
