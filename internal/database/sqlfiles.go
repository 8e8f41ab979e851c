package database

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/migrate"
)

// addSQLFiles adds the SQL migrations in fsys to ms as bun's
// Migrations.Discover would: the same file names
// (<version>_<name>.[tx.]up.sql and .down.sql, anywhere in fsys), the same
// ".tx" infix for a transaction, the same --bun:split directive. What it
// leaves out is Discover's text/template pass over every file (for
// Migrator's WithTemplateData, which the service does not use). Linking
// text/template's evaluator, which looks methods up by names it reads at run
// time, stops the Go linker from dropping any exported method of any type
// the program puts in an interface: the binary was a third larger, and
// package initialisation that only those methods reach (gin's validator
// tables, 285 kB live) stayed on the heap for every garbage collection to mark
// (docs/PERFORMANCE.md). TestBinary_LinkerDropsUnusedMethods guards it.
//
// seen maps each version already added, from any set, to its file: a
// version must be unique across sets, as they share one record of applied
// migrations.
func addSQLFiles(ms *migrate.Migrations, fsys fs.FS, seen map[string]string) error {
	found := make(map[string]*migrate.Migration)
	var order []string
	err := fs.WalkDir(fsys, ".", func(file string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		base := path.Base(file)
		up := strings.HasSuffix(base, ".up.sql")
		if !up && !strings.HasSuffix(base, ".down.sql") {
			return nil
		}
		version, name, ok := migrationName(base)
		if !ok {
			return fmt.Errorf("migration file %s: the name is not <version>_<name>.[tx.]up.sql or .down.sql (a version of 1 to 14 digits, a name of a-z, 0-9, _ and -)", file)
		}
		m := found[version]
		if m == nil {
			if other, dup := seen[version]; dup {
				return fmt.Errorf("migration file %s: version %s is also %s", file, version, other)
			}
			seen[version] = file
			m = &migrate.Migration{Name: version, Comment: name}
			found[version] = m
			order = append(order, version)
		} else if m.Comment != name {
			return fmt.Errorf("migration file %s: version %s is also %s", file, version, seen[version])
		}
		// One up and one down file a version (a .tx.up.sql and an .up.sql
		// would be two ways to run it).
		fn, direction := &m.Down, "down"
		if up {
			fn, direction = &m.Up, "up"
		}
		if *fn != nil {
			return fmt.Errorf("migration file %s: version %s has another %s file", file, version, direction)
		}
		*fn = sqlMigration(fsys, file)
		return nil
	})
	if err != nil {
		return err
	}
	for _, v := range order {
		ms.Add(*found[v])
	}
	return nil
}

// migrationName splits "20261125000001_create_notes.tx.up.sql" into its
// version and name, as bun's ^(\d{1,14})_([0-9a-z_\-]+)\. does.
func migrationName(base string) (version, name string, ok bool) {
	version, rest, ok := strings.Cut(base, "_")
	if !ok || len(version) < 1 || len(version) > 14 || strings.Trim(version, "0123456789") != "" {
		return "", "", false
	}
	name, _, ok = strings.Cut(rest, ".")
	if !ok || name == "" || strings.Trim(name, "abcdefghijklmnopqrstuvwxyz0123456789_-") != "" {
		return "", "", false
	}
	return version, name, true
}

// sqlMigration runs one file's statements: in a transaction when its name
// has ".tx" (rolled back if one fails), otherwise one by one on a single
// connection, as bun does.
func sqlMigration(fsys fs.FS, file string) func(ctx context.Context, m *migrate.Migrator, _ *migrate.Migration) error {
	inTx := strings.HasSuffix(file, ".tx.up.sql") || strings.HasSuffix(file, ".tx.down.sql")
	return func(ctx context.Context, m *migrate.Migrator, _ *migrate.Migration) error {
		b, err := fs.ReadFile(fsys, file)
		if err != nil {
			return err
		}
		queries, err := splitSQL(string(b))
		if err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		if inTx {
			tx, err := m.DB().BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			if err := execAll(ctx, tx, queries); err != nil {
				return errors.Join(err, tx.Rollback())
			}
			return tx.Commit()
		}
		conn, err := m.DB().Conn(ctx)
		if err != nil {
			return err
		}
		return errors.Join(execAll(ctx, conn, queries), conn.Close())
	}
}

// splitSQL returns a file's statements: the whole file, or the parts
// between --bun:split lines. Blank lines are dropped; any other --bun:
// directive is an error.
func splitSQL(sql string) ([]string, error) {
	var queries []string
	var query strings.Builder
	for line := range strings.Lines(sql) {
		line = strings.TrimRight(line, "\r\n")
		if directive, ok := strings.CutPrefix(line, "--bun:"); ok {
			if directive != "split" {
				return nil, fmt.Errorf("unknown directive --bun:%s", directive)
			}
			if query.Len() > 0 {
				queries = append(queries, query.String())
				query.Reset()
			}
			continue
		}
		if strings.TrimSpace(line) != "" {
			query.WriteString(line)
			query.WriteByte('\n')
		}
	}
	if query.Len() > 0 {
		queries = append(queries, query.String())
	}
	return queries, nil
}

func execAll(ctx context.Context, db bun.IConn, queries []string) error {
	for _, q := range queries {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	return nil
}
