package main

import (
	"context"
	"log/slog"
	"net/url"
	"os"

	"github.com/prodready/service/internal/alert"
	"github.com/prodready/service/internal/config"
	"github.com/prodready/service/internal/server"
)

// newAlertReporter builds the stack-trace e-mail reporter from the
// configuration. With email.enabled false it returns a reporter that does
// nothing, so serve wires it the same way either way.
func newAlertReporter(cfg config.Config, logger *slog.Logger) (*alert.Reporter, error) {
	host, _ := os.Hostname()
	return alert.New(cfg.Email, alert.Info{
		Service:      cfg.Service.Name,
		Environment:  cfg.Environment,
		Version:      version,
		Host:         host,
		StatusTokens: cfg.Status.Tokens,
		Secrets:      urlPasswords(cfg.Database.URL, cfg.Cache.RedisURL),
	}, logger)
}

// installAlertHooks connects the server's failure hooks to rep: recovered
// panics, unhandled 5xx errors, and the per-request scope that puts the
// error records of a failing request into its one mail. The server does not
// import internal/alert; this adapter is the only place the two meet. It
// returns a function that restores the previous hooks (for tests).
func installAlertHooks(rep *alert.Reporter) (restore func()) {
	prevPanic, prevError, prevScope := server.ReportPanic, server.ReportError, server.AlertScope
	server.ReportPanic = func(ctx context.Context, p server.PanicReport) {
		rep.Report(ctx, alert.Report{
			Kind: alert.KindPanic, Value: p.Value, Stack: p.Stack,
			Method: p.Method, Route: p.Route, Path: p.Path, Query: p.Query,
			RequestID: p.RequestID, UserAgent: p.UserAgent, ClientIP: p.ClientIP,
			Status: 500, Headers: p.Headers,
		})
	}
	server.ReportError = func(ctx context.Context, e server.ErrorReport) {
		rep.Report(ctx, alert.Report{
			Kind: alert.Kind5xx, Err: e.Err,
			Method: e.Method, Route: e.Route, Path: e.Path, Query: e.Query,
			RequestID: e.RequestID, UserAgent: e.UserAgent, ClientIP: e.ClientIP,
			Status: e.Status, Headers: e.Headers,
		})
	}
	server.AlertScope = rep.BeginRequest
	return func() {
		server.ReportPanic, server.ReportError, server.AlertScope = prevPanic, prevError, prevScope
	}
}

// urlPasswords returns the passwords inside connection URLs, so the
// reporter can scrub them from any error text it mails.
func urlPasswords(raws ...string) []string {
	var out []string
	for _, raw := range raws {
		if u, err := url.Parse(raw); err == nil && u.User != nil {
			if p, ok := u.User.Password(); ok && p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}
