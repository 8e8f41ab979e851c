package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/prodready/service/internal/servicetest"
)

// rowAvailability runs Gatus (make gatus) with deploy/monitoring/gatus/config.yaml,
// the file the cluster's ConfigMap is made from, against the staging-like
// stack, polling every second; cuts Redis until Mailpit holds the
// "triggered" mail, restores it until it holds the "resolved" one.
func rowAvailability(ctx context.Context, e *env) (string, error) {
	s, err := e.stack(ctx)
	if err != nil {
		return "", err
	}
	bin := filepath.Join(e.root, ".tools", "gatus")
	if _, err := os.Stat(bin); err != nil {
		return "", errors.New("gatus is missing: make gatus builds it into .tools/ (make checklist does)")
	}
	port, err := servicetest.LoopbackPort()
	if err != nil {
		return "", err
	}
	out := &logBuf{}
	g, err := startProcess(bin, nil, []string{
		"GATUS_CONFIG_PATH=" + filepath.Join(e.root, "deploy", "monitoring", "gatus", "config.yaml"),
		"NOTES_API_URL=" + s.url, "STATUS_TOKEN=" + s.token, "GATUS_INTERVAL=1s",
		"GATUS_WEB_ADDRESS=127.0.0.1", "GATUS_WEB_PORT=" + strconv.Itoa(port),
		"GATUS_SMTP_HOST=127.0.0.1", "GATUS_SMTP_PORT=" + strconv.Itoa(s.mailpit.smtpPort),
		"GATUS_SMTP_FROM=gatus@example.com", "GATUS_ALERT_TO=oncall@example.com",
	}, out)
	if err != nil {
		return "", err
	}
	defer func() { _, _ = g.terminate(5 * time.Second) }()
	api := "http://127.0.0.1:" + strconv.Itoa(port)

	// Gatus has seen the service healthy before anything breaks.
	deadline := time.Now().Add(30 * time.Second)
	for {
		var eps []struct {
			Results []struct {
				Success bool `json:"success"`
			} `json:"results"`
		}
		if err := httpJSON(ctx, api+"/api/v1/endpoints/statuses", &eps); err == nil && len(eps) == 1 &&
			len(eps[0].Results) >= 2 && eps[0].Results[len(eps[0].Results)-1].Success {
			break
		}
		if g.exited() || time.Now().After(deadline) || ctx.Err() != nil {
			return "", fmt.Errorf("gatus saw no good poll of %s/status in 30s: %s", s.url, out.tail(5))
		}
		time.Sleep(200 * time.Millisecond)
	}

	const endpoint = "notes-api-status"
	var parts []string
	for _, step := range []struct {
		what, subject string
		act           func()
	}{
		{"Redis cut", endpoint + ": Alert triggered", s.redis.cut},
		{"Redis restored", endpoint + ": Alert resolved", s.redis.restore},
	} {
		start := time.Now()
		step.act()
		m, _, err := s.mailpit.waitMail(ctx, 45*time.Second, func(subject, _ string) bool { return subject == step.subject })
		if err != nil {
			s.redis.restore()
			return "", fmt.Errorf("%s: %w; gatus: %s", step.what, err, out.tail(5))
		}
		if strings.Contains(m.Text, s.token) {
			return "", fmt.Errorf("%s: the mail %q carries the status token", step.what, m.Subject)
		}
		first, _, _ := strings.Cut(m.Text, "\n")
		first = strings.TrimSuffix(first, "\r")
		parts = append(parts, fmt.Sprintf("%s: Mailpit got %q %.1f s later (%q)", step.what, m.Subject, time.Since(start).Seconds(), first))
	}
	if strings.Contains(out.String(), s.token) {
		return "", errors.New("gatus's output carries the status token")
	}
	return "Gatus (make gatus) with deploy/monitoring/gatus/config.yaml polled /status every 1 s with the token from its environment; " +
		strings.Join(parts, "; ") + "; the token in neither mail nor Gatus's log. In the cluster: deploy/kubernetes/components/gatus (staging, production); " +
		"production also Synthetics (deploy/monitoring)", nil
}
