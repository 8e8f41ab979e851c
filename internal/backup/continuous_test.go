package backup_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prodready/service/internal/backup"
	"github.com/prodready/service/internal/health"
)

// TestLitestreamCheck_Answers: what backup:age says for each answer of
// Litestream's control socket (GET /list), served here by a stand-in on a
// Unix socket: the real Litestream runs in cmd/api's PITR test.
func TestLitestreamCheck_Answers(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "notes.db")
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	synced := func(ago time.Duration) string { return now.Add(-ago).Format(time.RFC3339Nano) }
	for _, tt := range []struct {
		name   string
		status int
		body   string
		want   health.Status
		output string
	}{
		{"fresh", 200, `{"databases":[{"path":"` + file + `","status":"ok","last_sync_at":"` + synced(2*time.Second) + `"}]}`, health.Pass, ""},
		{"stale", 200, `{"databases":[{"path":"` + file + `","status":"ok","last_sync_at":"` + synced(2*time.Minute) + `"}]}`, health.Warn,
			"newest restorable point, Litestream's last sync, is 2m0s old (warn after 1m0s)"},
		{"far behind", 200, `{"databases":[{"path":"` + file + `","status":"ok","last_sync_at":"` + synced(time.Hour) + `"}]}`, health.Fail,
			"is 1h0m0s old (fail after 10m0s)"},
		{"never synced", 200, `{"databases":[{"path":"` + file + `","status":"initializing"}]}`, health.Fail,
			"Litestream has not synced the database to its replica yet (status initializing)"},
		{"another database only", 200, `{"databases":[{"path":"/var/lib/other.db","status":"ok","last_sync_at":"` + synced(0) + `"}]}`, health.Fail,
			"Litestream does not replicate this database"},
		{"an error answer", 500, `internal error`, health.Fail, "cannot ask Litestream for its last sync"},
		{"not JSON", 200, `<html>`, health.Fail, "cannot ask Litestream for its last sync"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			socket := filepath.Join(t.TempDir(), "ls.sock")
			ln, err := net.Listen("unix", socket)
			if err != nil {
				t.Fatal(err)
			}
			srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/list" {
					http.NotFound(w, r)
					return
				}
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, tt.body)
			})}
			go func() { _ = srv.Serve(ln) }()
			t.Cleanup(func() { _ = srv.Close() })
			c := backup.LitestreamCheck(socket, file, time.Minute, 10*time.Minute, func() time.Time { return now })
			r := c.Run(context.Background())
			if r.Status != tt.want || !strings.Contains(r.Output, tt.output) {
				t.Errorf("%s %q, want %s %q", r.Status, r.Output, tt.want, tt.output)
			}
		})
	}
	t.Run("no Litestream", func(t *testing.T) {
		c := backup.LitestreamCheck(filepath.Join(dir, "absent.sock"), file, time.Minute, 10*time.Minute, nil)
		if r := c.Run(context.Background()); r.Status != health.Fail || !strings.Contains(r.Output, "is it running with its control socket?") {
			t.Errorf("%s %q, want a failure naming the control socket", r.Status, r.Output)
		}
	})
}
