package notes_test

import (
	"strings"
	"testing"

	"github.com/prodready/service/internal/config"
	"github.com/prodready/service/internal/notes"
)

// TestConfigSection: the notes section's defaults bound the page size, and
// its rule is reported by the loader like every other problem, with the key
// and where its value came from.
func TestConfigSection(t *testing.T) {
	d := notes.ConfigSection.From(config.Default())
	if d.MaxPageSize <= 0 || d.DefaultPageSize > d.MaxPageSize {
		t.Errorf("default not production-like: a bounded page size (%+v)", d)
	}
	files := func(string) ([]byte, error) {
		return []byte("environment: development\nnotes:\n  default_page_size: 500\n  max_page_size: 100\n"), nil
	}
	_, err := config.Load("c.yaml", func(string) string { return "" }, files, notes.ConfigSection)
	if want := "notes.default_page_size (c.yaml:3): 500 is larger than notes.max_page_size (100)"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error = %v, want it to contain %q", err, want)
	}
	l, err := config.Load("", func(k string) string {
		return map[string]string{"APP_ENVIRONMENT": "development", "APP_NOTES_MAX_PAGE_SIZE": "300"}[k]
	}, files, notes.ConfigSection)
	if err != nil {
		t.Fatal(err)
	}
	if got := notes.ConfigSection.From(l.Config); got.MaxPageSize != 300 || got.DefaultPageSize != 20 {
		t.Errorf("APP_NOTES_MAX_PAGE_SIZE=300 gave %+v", got)
	}
}
