// Package health runs dependency checks for the status route and writes
// their results as application/health+json (draft-inadarei-api-health-check).
//
// It knows no dependency: each dependency's package provides its own Check
// (database.Check, cache.Check, alert.SMTPCheck, logging's SyslogCheck,
// backup.AgeCheck), and cmd/api registers the ones its configuration uses.
// This package keeps the runner (timeouts, caching, coalescing), the
// handler (token, status codes) and the format.
package health

import (
	"context"
	"math"
	"time"
)

// Status of one check or of the whole service. Warn still answers 200:
// the service works, but someone should look.
type Status string

// The three statuses of the health-check draft.
const (
	Pass Status = "pass"
	Warn Status = "warn"
	Fail Status = "fail"
)

// Result is what one check observed. Output must be safe to show to a
// monitoring service: a short, sanitized sentence, never a DSN, a credential
// or a raw driver error (log those instead).
type Result struct {
	Status        Status
	ObservedValue any    // e.g. latency in ms, free disk percent, backup age in s
	ObservedUnit  string // e.g. "ms", "percent", "s"
	Output        string
}

// Check is one dependency probe. Name follows the draft's
// "component:measurement" form, e.g. "database:responseTime".
// A later dependency plugs in by registering one more Check.
//
// The Output a check returns is meant for monitors: short, no DSN, no
// credential, no raw driver error. The raw error goes to the log, at warn
// level, with the check's name.
type Check struct {
	Name          string
	ComponentType string        // "datastore", "system", "component"
	Timeout       time.Duration // each check gets its own deadline
	Run           func(ctx context.Context) Result
}

// Milliseconds is d as a check's ObservedValue in "ms", to 0.01 ms.
func Milliseconds(d time.Duration) float64 {
	return math.Round(float64(d.Microseconds())/10) / 100
}
