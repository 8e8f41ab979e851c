package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"runtime/debug"
	"strings"
	"text/tabwriter"

	"github.com/prodready/service/internal/config"
	"github.com/prodready/service/internal/database"
	"github.com/uptrace/bun"
)

// Set at build time by the Makefile and the image build (.ko.yaml):
// -ldflags "-X main.version=v1.2.3 -X main.commit=abc123 -X main.commitTime=2026-11-25T10:00:00Z"
// The time is the commit's, never the clock's: two builds of one commit are
// byte for byte the same binary (and the same image digest).
var (
	version    = "dev"
	commit     = ""
	commitTime = ""
)

// revision is the commit this binary was built from: the stamped one, else
// the VCS revision go build records, else "unknown". `api version` and the
// status route's releaseId both report it.
func revision() string {
	return stamped(commit, "vcs.revision")
}

// stamped is value, else the build setting key that go build records from
// the VCS, else "unknown".
func stamped(value, key string) string {
	if value == "" {
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, s := range bi.Settings {
				if s.Key == key {
					value = s.Value
				}
			}
		}
	}
	if value == "" {
		value = "unknown"
	}
	return value
}

func versionString() string {
	return fmt.Sprintf("api %s (commit %s, committed %s, %s)", version, revision(), stamped(commitTime, "vcs.time"), runtime.Version())
}

// configCmd prints the effective configuration, and after it, when the
// configuration is invalid, every problem (exit code 2): the table shows
// what each key ended up as and where that came from, which is what an
// operator needs to fix them.
func configCmd(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	path, err := configFlags("config", args, getenv, stderr)
	if err != nil {
		return err
	}
	l, err := inspectConfig(path, getenv)
	if l != nil {
		if perr := l.Print(stdout); perr != nil {
			return perr
		}
	}
	if err != nil {
		return usageError{err}
	}
	return nil
}

// loadConfig parses the command's flags and loads the configuration. Flag
// mistakes produce one plain line; configuration problems list them all.
func loadConfig(cmd string, args []string, getenv func(string) string, stderr io.Writer, extra ...func(*flag.FlagSet)) (*config.Loaded, error) {
	path, err := configFlags(cmd, args, getenv, stderr, extra...)
	if err != nil {
		return nil, err
	}
	l, err := readConfig(path, getenv)
	if err != nil {
		return nil, usageError{err}
	}
	return l, nil
}

// migrateCmd runs `api migrate up|down|status`.
func migrateCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 && isHelp(args[0]) {
		return errHelp
	}
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return usagef("migrate: want a subcommand: up, down or status")
	}
	sub := args[0]
	if sub != "up" && sub != "down" && sub != "status" {
		return usagef("migrate: unknown subcommand %q (want up, down or status)", sub)
	}
	l, err := loadConfig("migrate "+sub, args[1:], getenv, stderr)
	if err != nil {
		return err
	}
	o := dbOptions(l.Config)
	if sub != "status" {
		o.StatementTimeout = 0 // a migration may rightly run longer than any request
	} // status only reads: database.statement_timeout bounds it, a lock held on bun_migrations included
	db, err := database.Open(ctx, o)
	if err != nil {
		return err
	}
	defer db.Close()
	return migrate(ctx, db, sub, stdout)
}

func migrate(ctx context.Context, db *bun.DB, sub string, stdout io.Writer) error {
	switch sub {
	case "up":
		applied, err := database.Migrate(ctx, db, slog.New(slog.DiscardHandler), resourceMigrations()...)
		if err != nil {
			return err
		}
		if len(applied) == 0 {
			_, err = fmt.Fprintln(stdout, "migrate up: nothing to apply; the schema is current")
			return err
		}
		_, err = fmt.Fprintf(stdout, "migrate up: applied %s\n", strings.Join(applied, ", "))
		return err
	case "down":
		rolled, err := database.Rollback(ctx, db, resourceMigrations()...)
		if err != nil {
			return err
		}
		if len(rolled) == 0 {
			_, err = fmt.Fprintln(stdout, "migrate down: nothing to roll back")
			return err
		}
		_, err = fmt.Fprintf(stdout, "migrate down: rolled back %s\n", strings.Join(rolled, ", "))
		return err
	default:
		st, err := database.Status(ctx, db, resourceMigrations()...)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "MIGRATION\tSTATE\tGROUP\tAPPLIED AT")
		for _, m := range st {
			state, group, at := "pending", "-", "-"
			if m.Applied {
				state, group, at = "applied", fmt.Sprint(m.GroupID), m.MigratedAt.UTC().Format("2006-01-02 15:04:05Z")
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", m.Name, state, group, at)
		}
		return tw.Flush()
	}
}

func dbOptions(c config.Config) database.Options {
	return database.Options{
		URL:              c.Database.URL,
		SQLitePath:       c.Database.SQLitePath,
		BusyTimeout:      c.Database.BusyTimeout,
		ConnectTimeout:   c.Database.ConnectTimeout,
		StatementTimeout: c.Database.StatementTimeout,
		MaxOpenConns:     c.Database.MaxOpenConns,
		MaxIdleConns:     c.Database.MaxIdleConns,
		ConnMaxLifetime:  c.Database.ConnMaxLifetime,
		ConnMaxIdleTime:  c.Database.ConnMaxIdleTime,
	}
}

// configFlags parses --config (default: APP_CONFIG), and the flags extra
// defines, and rejects anything else.
func configFlags(cmd string, args []string, getenv func(string) string, stderr io.Writer, extra ...func(*flag.FlagSet)) (string, error) {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // we print one line ourselves instead of flag's usage dump
	path := fs.String("config", getenv("APP_CONFIG"), "YAML configuration file")
	for _, define := range extra {
		define(fs)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return "", errHelp
		}
		return "", usagef("%s: %v", cmd, err)
	}
	if fs.NArg() > 0 {
		return "", usagef("%s: unexpected argument %q", cmd, fs.Arg(0))
	}
	return *path, nil
}
