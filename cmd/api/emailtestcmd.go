package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
)

// emailTestCmd runs `api email-test`: it sends one test message with the
// current e-mail settings, synchronously, and prints one line saying where
// it went, or fails with the SMTP error on one line (exit code 1), the
// password scrubbed. It sends even when email.enabled is false, and says
// so: checking the settings before turning alerts on is the point.
func emailTestCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	l, err := loadConfig("email-test", args, getenv, stderr)
	if err != nil {
		return err
	}
	cfg := l.Config
	note := ""
	if !cfg.Email.Enabled {
		note = " (email.enabled is false: sent anyway to test the settings; alerts stay off)"
		cfg.Email.Enabled = true
	}
	if len(cfg.Email.Recipients) == 0 {
		return usagef("email-test: email.recipients is empty; set it (APP_EMAIL_RECIPIENTS=a@example.com,b@example.com)")
	}
	rep, err := newAlertReporter(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return usagef("email-test: %v", err)
	}
	defer func() { _ = rep.Close(ctx) }() // nothing is queued: returns at once

	if err := rep.SendTest(ctx); err != nil {
		return fmt.Errorf("email-test: %w", err)
	}
	addr := net.JoinHostPort(cfg.Email.SMTPHost, strconv.Itoa(cfg.Email.SMTPPort))
	_, err = fmt.Fprintf(stdout, "email-test: sent to %s via %s%s\n", strings.Join(cfg.Email.Recipients, ", "), addr, note)
	return err
}
