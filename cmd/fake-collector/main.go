// Command fake-collector runs the fake New Relic collector of the test
// helpers (internal/servicetest) on loopback and prints a line for every
// call the agent makes, so a newcomer can watch what the service reports
// without a New Relic account: `make run-collector` in one terminal, then
// `make run` with the variables it prints in another (docs/MONITORING.md).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/prodready/service/internal/servicetest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "fake-collector: "+err.Error())
		os.Exit(2)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("fake-collector", flag.ContinueOnError)
	fs.SetOutput(stdout)
	addr := fs.String("addr", "127.0.0.1:8443", "loopback host:port to listen on")
	dir := fs.String("dir", ".", "directory for collector-ca.pem, the certificate the agent must trust")
	if err := fs.Parse(args); err != nil {
		return err
	}
	host, _, err := net.SplitHostPort(*addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return errors.New("--addr must be a loopback address such as 127.0.0.1:8443")
	}
	if err := os.MkdirAll(*dir, 0o750); err != nil {
		return err
	}
	c, err := servicetest.NewCollector(*addr, *dir)
	if err != nil {
		return err
	}
	defer c.Close()
	fmt.Fprintf(stdout, "fake New Relic collector on https://%s (protocol 17); point the service at it:\n\n"+
		"  NEW_RELIC_LICENSE_KEY=%s APP_NEWRELIC_COLLECTOR_HOST=%s \\\n  APP_NEWRELIC_COLLECTOR_CA_FILE=%s make run\n\n"+
		"Events arrive every second, metrics every minute and at shutdown. Ctrl-C stops.\n",
		c.Host(), servicetest.LicenseKey, c.Host(), c.CAFile())
	c.Print(stdout)
	<-ctx.Done()
	return nil
}
