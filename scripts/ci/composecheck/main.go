// Command composecheck validates Compose files offline, the way
// `docker compose config` does before it talks to an engine: the Compose
// Specification's JSON schema (unknown keys, wrong types, bad enums),
// interpolation, and the project's consistency (every depends_on, network,
// volume and secret names something defined). It uses compose-go, the loader
// inside Docker Compose itself, so a file it accepts is one Compose accepts.
//
//	composecheck deploy/compose/compose.yaml
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/compose-spec/compose-go/v2/cli"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: composecheck COMPOSE_FILE...")
		os.Exit(2)
	}
	failed := false
	for _, file := range os.Args[1:] {
		if err := check(file); err != nil {
			fmt.Fprintf(os.Stderr, "%s: INVALID: %v\n", file, err)
			failed = true
		}
	}
	if failed {
		os.Exit(1)
	}
}

func check(file string) error {
	abs, err := filepath.Abs(file)
	if err != nil {
		return err
	}
	opts, err := cli.NewProjectOptions([]string{abs},
		cli.WithWorkingDirectory(filepath.Dir(abs)),
		// Only the file decides: no .env, no COMPOSE_* from this shell.
		cli.WithEnv(nil),
		cli.WithInterpolation(true),
		cli.WithResolvedPaths(true),
		cli.WithNormalization(true),
		cli.WithConsistency(true),
	)
	if err != nil {
		return err
	}
	project, err := opts.LoadProject(context.Background())
	if err != nil {
		return err
	}
	names := project.ServiceNames()
	sort.Strings(names)
	fmt.Printf("%s: ok, project %q, services %v\n", file, project.Name, names)
	return nil
}
