// Package health runs dependency checks for the status route and writes
// their results as application/health+json (draft-inadarei-api-health-check).
package health

import (
	"context"
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
type Check struct {
	Name          string
	ComponentType string        // "datastore", "system", "component"
	Timeout       time.Duration // each check gets its own deadline
	Run           func(ctx context.Context) Result
}
