package main

import (
	"context"
	"log/slog"
	"net/url"
	"os"

	"github.com/prodready/service/internal/alert"
	"github.com/prodready/service/internal/config"
	"github.com/prodready/service/internal/monitoring"
	"github.com/prodready/service/internal/server"
)

// newAlertReporter builds the stack-trace e-mail reporter from the
// configuration. With email.enabled false it returns a reporter that does
// nothing, so serve wires it the same way either way.
// secrets are the configuration's secret values (config.Loaded.SecretValues,
// the resources' sections included), scrubbed from every mail beside the
// tokens and the URLs' passwords.
func newAlertReporter(cfg config.Config, logger *slog.Logger, secrets ...string) (*alert.Reporter, error) {
	host, _ := os.Hostname()
	return alert.New(cfg.Email, alert.Info{
		Service:      cfg.Service.Name,
		Environment:  cfg.Environment,
		Version:      version,
		Host:         host,
		StatusTokens: cfg.Status.Tokens,
		Secrets:      append(urlPasswords(cfg.Database.URL, cfg.Cache.RedisURL), secrets...),
	}, logger)
}

// alertHooks adapts the e-mail reporter and the APM agent to server.Alerts:
// recovered panics, unhandled 5xx errors, and the per-request scope that
// puts the error records of a failing request into its one mail. The server
// imports neither; this adapter is the only place they meet. Both hear of
// the same failures, so a mail and an APM error always go together.
type alertHooks struct {
	rep   *alert.Reporter
	agent *monitoring.Agent // does nothing when monitoring is off
}

func (a alertHooks) Scope(ctx context.Context) (context.Context, func()) {
	return a.rep.BeginRequest(ctx)
}

func (a alertHooks) ReportPanic(ctx context.Context, p server.PanicReport) {
	r := requestReport(p.RequestInfo)
	r.Kind, r.Value, r.Stack, r.Status = alert.KindPanic, p.Value, p.Stack, 500
	a.rep.Report(ctx, r)
	a.agent.NoticePanic(ctx, p.Value) // still inside recovery's deferred call: the stack has the panic
}

func (a alertHooks) ReportError(ctx context.Context, e server.ErrorReport) {
	r := requestReport(e.RequestInfo)
	r.Kind, r.Err, r.Status = alert.Kind5xx, e.Err, e.Status
	a.rep.Report(ctx, r)
	a.agent.NoticeError(ctx, e.Status, e.Err)
}

// requestReport is the part of an alert that describes the request.
func requestReport(ri server.RequestInfo) alert.Report {
	return alert.Report{
		Method: ri.Method, Route: ri.Route, Path: ri.Path, Query: ri.Query,
		RequestID: ri.RequestID, UserAgent: ri.UserAgent, ClientIP: ri.ClientIP,
		Headers: ri.Headers,
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
