package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prodready/service/internal/config"
)

// healthcheckCmd calls the status route (or --url, such as /readyz) with the
// configured token and exits 0 when it answers 200, 1 otherwise, printing one
// line: for a container HEALTHCHECK or cron on images without curl. Every
// failure is exit code 1, since Docker reserves 2.
func healthcheckCmd(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	path := fs.String("config", getenv("APP_CONFIG"), "YAML configuration file")
	url := fs.String("url", "", "URL to check (default: the status route on this host's configured port)")
	timeout := fs.Duration("timeout", 5*time.Second, "give up after this long")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
		return fmt.Errorf("healthcheck: %w", err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("healthcheck: unexpected argument %q", fs.Arg(0))
	}
	l, err := readConfig(*path, getenv)
	if err != nil {
		var errs config.Errors
		if errors.As(err, &errs) {
			return fmt.Errorf("healthcheck: invalid configuration (%d problems; run api config to list them)", len(errs))
		}
		return fmt.Errorf("healthcheck: %w", err)
	}
	host := l.HTTP.Host
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1" // listening everywhere: ask over loopback
	}
	if *url == "" {
		*url = "http://" + net.JoinHostPort(host, strconv.Itoa(l.HTTP.Port)) + "/status"
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
	if err != nil {
		return fmt.Errorf("healthcheck: bad --url: %w", err)
	}
	// The token goes only to this instance (loopback or its own address),
	// never to whatever host --url names.
	if len(l.Status.Tokens) > 0 && (isLoopback(req.URL.Hostname()) || req.URL.Hostname() == host) {
		req.Header.Set("Authorization", "Bearer "+l.Status.Tokens[0])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %s unreachable: %s", *url, plainNetError(err))
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Output string `json:"output"`
		Checks map[string][]struct {
			Status string `json:"status"`
		} `json:"checks"`
	}
	_ = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body)
	if resp.StatusCode != http.StatusOK {
		var failing []string
		for name, res := range body.Checks {
			if len(res) > 0 && res[0].Status != "pass" {
				failing = append(failing, name+"="+res[0].Status)
			}
		}
		sort.Strings(failing)
		detail := strings.Join(failing, ", ")
		if detail == "" {
			detail = body.Output
		}
		return fmt.Errorf("healthcheck: %s answered %d %s: %s", *url, resp.StatusCode, body.Status, detail)
	}
	status := body.Status
	if status == "" {
		status = "ok"
	}
	_, err = fmt.Fprintf(stdout, "healthcheck: %s answered 200 %s\n", *url, status)
	return err
}

// plainNetError keeps the last, meaningful part of a client error
// ("connection refused") instead of Go's nested prefixes.
func plainNetError(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 {
		return s[i+2:]
	}
	return s
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
