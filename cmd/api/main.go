// Command api is the notes service: one binary with subcommands for serving,
// migrating the database and inspecting configuration.
//
// main only wires the process to run(): arguments, environment, output and a
// context cancelled by SIGINT/SIGTERM. Everything else happens in run, so tests
// start the real program in-process, on a random port, exactly as main does.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // a second signal now kills the process at once
	}()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "api: "+err.Error())
		os.Exit(exitCode(err))
	}
}

// Exit codes: 1 for a failure at run time, 2 for bad usage or configuration
// (fix the input, retrying will not help).
const (
	exitFailure = 1
	exitUsage   = 2
)

// usageError marks errors caused by the command line or the configuration.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

func exitCode(err error) int {
	var u usageError
	if errors.As(err, &u) {
		return exitUsage
	}
	return exitFailure
}

const usageText = `usage: api [command] [--config PATH]

commands:
  serve [--workers N]
                     run the HTTP service (the default); --workers N runs a master
                     and N worker processes sharing the socket (overrides http.workers)
  migrate up|down|status
                     apply, roll back (the last group) or list database migrations
  config             print the effective configuration, secrets redacted, with each value's source
  email-test         send a test e-mail with the current settings; print where it went or the SMTP error
  healthcheck [--url URL]
                     call the status route (or URL) with the configured token; exit 0 if it answers 200, else 1
  version            print the version
  help               print this help

The configuration file comes from --config or APP_CONFIG; environment variables
override it (see docs/CONFIGURATION.md).
`

// errHelp is what a command returns for -h, -help or --help: run prints the
// usage on stdout and succeeds, as Go's flag package and GNU tools do.
var errHelp = errors.New("help requested")

// isHelp reports whether arg asks for the usage.
func isHelp(arg string) bool { return arg == "-h" || arg == "-help" || arg == "--help" }

// run is the whole program. getenv is the environment; stdout receives logs
// and command output; stderr receives only what must not mix with them.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	err := runCommand(ctx, args, getenv, stdout, stderr)
	if errors.Is(err, errHelp) {
		_, err = io.WriteString(stdout, usageText)
	}
	return err
}

func runCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		var workersFlag optionalInt // unset: http.workers decides
		l, err := loadConfig("serve", args, getenv, stderr, func(fs *flag.FlagSet) {
			fs.Var(&workersFlag, "workers", "worker processes (overrides http.workers)")
		})
		if err != nil {
			return err
		}
		if err := applyWorkersFlag(l, workersFlag); err != nil {
			return err
		}
		return serve(ctx, l, getenv, stdout, stderr, append([]string{"serve"}, args...))
	case "migrate":
		return migrateCmd(ctx, args, getenv, stdout, stderr)
	case "email-test":
		return emailTestCmd(ctx, args, getenv, stdout, stderr)
	case "config":
		return configCmd(args, getenv, stdout, stderr)
	case "healthcheck":
		return healthcheckCmd(ctx, args, getenv, stdout)
	case "version":
		if len(args) == 1 && isHelp(args[0]) {
			return errHelp
		}
		if len(args) > 0 {
			return usagef("version takes no arguments")
		}
		_, err := fmt.Fprintln(stdout, versionString())
		return err
	case "help":
		_, err := io.WriteString(stdout, usageText)
		return err
	}
	return usagef("unknown command %q (commands: serve, migrate, config, email-test, healthcheck, version, help)", cmd)
}
