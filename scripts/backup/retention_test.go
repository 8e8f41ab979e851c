package backup_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

var datedName = regexp.MustCompile(`^notes-api-(postgres|sqlite)-\d{8}T\d{6}Z\.`)

// dated creates a synthetic backup (data file and manifest) named for t.
func dated(t *testing.T, dir, kind string, at time.Time) string {
	t.Helper()
	name := "notes-api-" + kind + "-" + at.UTC().Format("20060102T150405Z")
	ext := map[string]string{"postgres": ".pgdump.age", "sqlite": ".sqlite"}[kind]
	for _, f := range []string{name + ext, name + ".manifest.json"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("synthetic"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return name
}

func remaining(t *testing.T, dir string) (backups []string, others []string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".manifest.json")
		switch {
		case ok:
			backups = append(backups, name)
		case datedName.MatchString(e.Name()):
			if _, err := os.Stat(filepath.Join(dir, strings.SplitN(e.Name(), ".", 2)[0]+".manifest.json")); err != nil {
				t.Errorf("%s survived without its manifest", e.Name())
			}
		default:
			others = append(others, e.Name())
		}
	}
	slices.Sort(backups)
	return backups, others
}

// A backup every day at 02:00 since May, a second one on the last day,
// and two old SQLite backups, pruned with 7 daily, 4 weekly and 6 monthly.
func TestPrune_KeepsDailyWeeklyMonthly(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	last := time.Date(2026, 11, 25, 2, 0, 0, 0, time.UTC) // a Wednesday, ISO week 48
	for d := time.Date(2026, 5, 1, 2, 0, 0, 0, time.UTC); !d.After(last); d = d.AddDate(0, 0, 1) {
		dated(t, dir, "postgres", d)
	}
	dated(t, dir, "postgres", last.Add(12*time.Hour)) // a manual run in the afternoon
	dated(t, dir, "sqlite", time.Date(2025, 3, 10, 2, 0, 0, 0, time.UTC))
	dated(t, dir, "sqlite", time.Date(2025, 5, 10, 2, 0, 0, 0, time.UTC))
	for _, other := range []string{"README.txt", "notes-api-postgres-garbage.pgdump"} {
		if err := os.WriteFile(filepath.Join(dir, other), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	env := map[string]string{"BACKUP_DIR": dir, "BACKUP_KEEP_DAILY": "7", "BACKUP_KEEP_WEEKLY": "4", "BACKUP_KEEP_MONTHLY": "6"}
	all, _ := remaining(t, dir)

	r := run(t, env, "prune.sh", "--dry-run").mustSucceed(t)
	if got, _ := remaining(t, dir); !slices.Equal(got, all) {
		t.Fatalf("--dry-run removed %d backups", len(all)-len(got))
	}
	if !strings.Contains(r.stdout, "would remove notes-api-postgres-20261125T020000Z") {
		t.Errorf("dry run does not say what it would remove:\n%s", r.stdout)
	}

	r = run(t, env, "prune.sh").mustSucceed(t)
	want := []string{
		// monthly: the newest of each of the last 6 months with backups
		"notes-api-postgres-20260630T020000Z",
		"notes-api-postgres-20260731T020000Z",
		"notes-api-postgres-20260831T020000Z",
		"notes-api-postgres-20260930T020000Z",
		"notes-api-postgres-20261031T020000Z",
		// weekly: the newest of ISO weeks 45, 46 and 47 (the Sundays); week 48's is daily too
		"notes-api-postgres-20261108T020000Z",
		"notes-api-postgres-20261115T020000Z",
		// daily: the newest of each of the last 7 days (25 Nov: the afternoon run)
		"notes-api-postgres-20261119T020000Z",
		"notes-api-postgres-20261120T020000Z",
		"notes-api-postgres-20261121T020000Z",
		"notes-api-postgres-20261122T020000Z",
		"notes-api-postgres-20261123T020000Z",
		"notes-api-postgres-20261124T020000Z",
		"notes-api-postgres-20261125T140000Z",
		// each kind has its own retention: both SQLite months are within 6
		"notes-api-sqlite-20250310T020000Z",
		"notes-api-sqlite-20250510T020000Z",
	}
	got, others := remaining(t, dir)
	if !slices.Equal(got, want) {
		t.Errorf("kept %d backups:\n%s\nwant %d:\n%s", len(got), strings.Join(got, "\n"), len(want), strings.Join(want, "\n"))
	}
	if !slices.Contains(others, "README.txt") || !slices.Contains(others, "notes-api-postgres-garbage.pgdump") {
		t.Errorf("prune removed files that are not dated backups; left %v", others)
	}
	if !strings.Contains(r.stdout, "prune: kept 16 backups, removed 196") {
		t.Errorf("summary line missing:\n%s", r.stdout)
	}
}

// Whatever the numbers, the newest backup is never removed.
func TestPrune_AlwaysKeepsTheNewest(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	old := dated(t, dir, "postgres", time.Date(2026, 1, 1, 2, 0, 0, 0, time.UTC))
	newest := dated(t, dir, "postgres", time.Date(2026, 1, 2, 2, 0, 0, 0, time.UTC))
	env := map[string]string{"BACKUP_DIR": dir, "BACKUP_KEEP_DAILY": "0", "BACKUP_KEEP_WEEKLY": "0", "BACKUP_KEEP_MONTHLY": "0"}
	run(t, env, "prune.sh").mustSucceed(t)
	if got, _ := remaining(t, dir); !slices.Equal(got, []string{newest}) {
		t.Errorf("kept %v; want only %s (not %s)", got, newest, old)
	}
}

func TestPrune_Refusals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"not a number", map[string]string{"BACKUP_DIR": t.TempDir(), "BACKUP_KEEP_DAILY": "seven"}, nil, "must be whole numbers"},
		{"no such directory", map[string]string{"BACKUP_DIR": filepath.Join(t.TempDir(), "missing")}, nil, "is not a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			line := run(t, tt.env, "prune.sh", tt.args...).failureLine(t)
			if !strings.Contains(line, tt.want) {
				t.Errorf("failure line %q; want %q", line, tt.want)
			}
		})
	}
	if r := run(t, map[string]string{"BACKUP_DIR": t.TempDir()}, "prune.sh", "--sideways"); r.code != 2 || !strings.HasPrefix(r.stderr, "notes-api-backup: usage: prune.sh") {
		t.Errorf("unknown flag: exit %d, stderr %q; want 2 and the usage line", r.code, r.stderr)
	}
}

// A dump without its manifest (a run killed between its two renames, a copy
// fetched without it) is not a backup: it must not count as the newest or
// take a day's slot, which would remove the newest complete backup. It is
// removed once a complete backup is newer, and left alone otherwise.
func TestPrune_IncompleteBackupsDoNotDisplaceGoodOnes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	yesterday := dated(t, dir, "postgres", time.Date(2026, 11, 24, 2, 0, 0, 0, time.UTC))
	newestGood := dated(t, dir, "postgres", time.Date(2026, 11, 25, 2, 0, 0, 0, time.UTC))
	orphans := map[string]bool{ // file name: whether it must survive
		"notes-api-postgres-20261125T030000Z.pgdump":        true,  // newer than every complete backup
		"notes-api-postgres-20261120T030000Z.pgdump":        false, // older: a leftover
		"notes-api-postgres-20261121T030000Z.manifest.json": false, // a manifest whose file is gone
	}
	for f := range orphans {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// Keeping only the newest makes the mistake total: the orphan alone would be left.
	env := map[string]string{"BACKUP_DIR": dir, "BACKUP_KEEP_DAILY": "0", "BACKUP_KEEP_WEEKLY": "0", "BACKUP_KEEP_MONTHLY": "0"}
	r := run(t, env, "prune.sh").mustSucceed(t)

	for f, survives := range orphans {
		_, err := os.Stat(filepath.Join(dir, f))
		if exists := err == nil; exists != survives {
			t.Errorf("%s: exists %v, want %v", f, exists, survives)
		}
	}
	for _, f := range []string{newestGood + ".pgdump.age", newestGood + ".manifest.json"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("the newest complete backup lost %s: %v\n%s", f, err, r.stdout)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, yesterday+".manifest.json")); err == nil {
		t.Errorf("%s kept; with every count at 0 only the newest complete backup stays", yesterday)
	}
	if !strings.Contains(r.stdout, "notes-api-postgres-20261125T030000Z is incomplete") {
		t.Errorf("no warning about the incomplete newest dump:\n%s", r.stdout)
	}
}
