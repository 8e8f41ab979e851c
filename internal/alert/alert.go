// Package alert e-mails stack traces of recovered panics and unhandled 5xx
// errors to the operators, without ever slowing a request or flooding an
// inbox:
//
//   - Report only decides and enqueues: one worker goroutine sends from a
//     bounded queue, and a full queue drops (and counts) instead of waiting;
//   - reports are grouped by a fingerprint (error type and top in-app stack
//     frames); a group is mailed at its 1st, 2nd, 4th, 8th, ... occurrence
//     within an hour, and the subject shows the count ("(x8)");
//   - a budget of email.hourly_cap mails an hour stops a storm, and keeps
//     email.new_fingerprint_reserve of it for fingerprints not mailed yet,
//     so a flood of one error never hides a different one; what it held
//     back is listed per fingerprint in the next mail that goes out, or in
//     a digest after email.digest_interval (throttle.go);
//   - a dependency check that turns fail is mailed once, and once when it
//     recovers (ReportTransition); the SMTP check's own failure is not;
//   - secrets never reach the mail: credential-looking headers and query
//     parameters are redacted, and configured secrets (SMTP password, status
//     tokens) are scrubbed from every field, stack trace included;
//   - SMTP failures are logged at warn (not error, which could feed back
//     into e-mail on error-level logs) and counted for the status route.
package alert

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	mail "github.com/wneessen/go-mail"

	"github.com/prodready/service/internal/config"
	"github.com/prodready/service/internal/health"
)

// Report kinds.
const (
	KindPanic    = "panic"     // a recovered panic
	Kind5xx      = "5xx"       // a request answered with a server error
	KindErrorLog = "error-log" // an error-level log record (email.on_error_log)
	KindCheck    = "check"     // a status check turned fail, or recovered
	kindTest     = "test"      // api email-test
	kindSummary  = "suppressed"
)

// defaultDigestInterval applies when email.digest_interval is not set (a
// configuration built in code rather than loaded).
const defaultDigestInterval = 15 * time.Minute

// groupWindow is how long occurrences of one fingerprint are counted
// together; after it, the group starts again at 1 and is mailed at once.
const groupWindow = time.Hour

// capWindow is the period of the global cap (email.hourly_cap): no more
// than the cap in any capWindow.
const capWindow = time.Hour

// Info describes the running service; it heads every mail.
type Info struct {
	Service, Environment, Version, Host string
	// StatusTokens are scrubbed from every field of every mail, wherever
	// they appear (an error text, a stack, a header).
	StatusTokens []string
	// Secrets are scrubbed the same way: the database and Redis passwords,
	// which a driver error could quote.
	Secrets []string
}

// Report is one event to mail. Kind and either Err or Value are required;
// the request fields are empty for events outside a request.
type Report struct {
	Kind    string // KindPanic, Kind5xx or KindErrorLog
	Err     error  // the error (5xx, error-log)
	Value   any    // what was passed to panic (panic)
	Message string // context, such as the log record's message
	Stack   []byte // a goroutine dump as debug.Stack returns it; nil when none

	Method, Route, Path, Query     string // Route is the template (/v1/notes/:id); Query is raw
	RequestID, UserAgent, ClientIP string
	Status                         int         // HTTP status answered, 0 when unknown
	Headers                        http.Header // request headers; redacted in the mail
	Time                           time.Time   // zero means now

	logs   []string  // error records logged during the same request (see BeginRequest)
	record string    // the log record as one line (error-log)
	pcs    []uintptr // the logging code's stack, for Stack (error-log)
	typ    string    // errorType, taken before Value is rendered

	change    *health.Transition // the check change (KindCheck)
	lostMails uint64             // mails that failed while the SMTP check failed (its recovery)
}

// Stats are the reporter's counters, for the status route and tests.
type Stats struct {
	Enabled bool `json:"enabled"`
	// Queued is the number of mails waiting for the worker now.
	Queued int `json:"queued"`
	// Sent and Failed count SMTP outcomes.
	Sent   uint64 `json:"sent"`
	Failed uint64 `json:"failed"`
	// Dropped counts mails lost to a full queue, to the flush deadline, or
	// reported after Close.
	Dropped uint64 `json:"dropped"`
	// Throttled counts repeats a group did not mail (between its
	// power-of-two counts); Suppressed counts mails the budget stopped
	// (email.hourly_cap and its reserve); Held is how many of those wait
	// for the next mail or digest to list them; Digests counts the mails
	// sent only to list them.
	Throttled  uint64 `json:"throttled"`
	Suppressed uint64 `json:"suppressed"`
	Held       int    `json:"held"`
	Digests    uint64 `json:"digests"`
	// LastError is the last SMTP error, one line, secrets scrubbed.
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// LastSentAt is when a mail last went out (alerts or `api email-test`).
	LastSentAt time.Time `json:"last_sent_at,omitzero"`
}

// Reporter sends alert mails. Its methods are safe for concurrent use; a nil
// or disabled Reporter accepts reports and does nothing.
type Reporter struct {
	cfg     config.Email
	info    Info
	logger  *slog.Logger
	client  *mail.Client
	sendMu  sync.Mutex // one SMTP conversation at a time (worker and SendTest)
	secrets []string   // configured secrets to scrub (password, status tokens)
	now     func() time.Time

	mu       sync.Mutex // guards the fields below and sends on queue
	queue    chan job
	closed   bool
	throttle throttle

	base   context.Context // cancelled when Close's deadline passes
	cancel context.CancelFunc
	done   chan struct{} // closed when the worker returns
	tick   time.Duration // how often the worker checks whether a cap summary can go

	sent, failed, dropped, throttled, suppressed, digests atomic.Uint64
	failedAtSMTPDown                                      atomic.Uint64 // failed, when the SMTP check turned fail

	errMu       sync.Mutex
	lastError   string
	lastErrorAt time.Time
	lastSentAt  time.Time
	lastDropLog time.Time
}

// job is one mail for the worker.
type job struct {
	report    Report
	count     int       // occurrences of the fingerprint so far
	since     time.Time // first occurrence in the group's window
	fp        string
	held      []held    // what the budget held back, listed in this mail
	heldSince time.Time // when the first of them was held
}

// New returns a Reporter for cfg. When cfg.Enabled is false it returns a
// Reporter that ignores reports (Stats().Enabled is false) and starts no
// goroutine. Otherwise it checks the settings and starts the worker; call
// Close at shutdown to flush the queue.
func New(cfg config.Email, info Info, logger *slog.Logger) (*Reporter, error) {
	return newReporter(cfg, info, logger, time.Now)
}

// newReporter is New with a clock and extra client options, for tests (a
// fake hour, a TLS configuration trusting a test certificate).
func newReporter(cfg config.Email, info Info, logger *slog.Logger, now func() time.Time, extra ...mail.Option) (*Reporter, error) {
	if logger == nil {
		logger = slog.Default()
	}
	r := &Reporter{cfg: cfg, info: info, logger: logger, now: now}
	if !cfg.Enabled {
		return r, nil
	}
	if r.info.Host == "" {
		r.info.Host, _ = os.Hostname()
	}
	if len(cfg.Recipients) == 0 {
		return nil, errors.New("alert: e-mail is enabled but no recipient is set")
	}
	if cfg.QueueSize <= 0 || cfg.HourlyCap <= 0 || cfg.Timeout <= 0 {
		return nil, errors.New("alert: queue_size, hourly_cap and timeout must be positive")
	}
	if cfg.NewFingerprintReserve < 0 || cfg.NewFingerprintReserve >= cfg.HourlyCap {
		return nil, errors.New("alert: new_fingerprint_reserve must be at least 0 and less than hourly_cap")
	}
	digest := cfg.DigestInterval
	if digest <= 0 {
		digest = defaultDigestInterval
	}
	r.secrets = secretList(append(append([]string{cfg.Password}, info.StatusTokens...), info.Secrets...))
	client, err := newClient(cfg, extra)
	if err != nil {
		return nil, fmt.Errorf("alert: %s", r.sanitize(err))
	}
	r.client = client
	if _, err := r.buildMsg(message{}); err != nil { // addresses checked once, at start
		return nil, fmt.Errorf("alert: %w", err)
	}
	r.queue = make(chan job, cfg.QueueSize)
	r.throttle = newThrottle(cfg.HourlyCap, cfg.NewFingerprintReserve, digest)
	r.base, r.cancel = context.WithCancel(context.Background())
	r.done = make(chan struct{})
	// The worker looks for a due digest often enough that one goes out at
	// most a quarter of its interval late, and at least once a minute.
	r.tick = min(time.Minute, digest/4)
	go r.work()
	return r, nil
}

func (r *Reporter) enabled() bool { return r != nil && r.queue != nil }

// Report queues a mail for rep unless its group or the budget holds it
// back. It never blocks on the network and never waits for room in the
// queue: when the queue is full the mail is dropped and counted. It runs on
// the request's goroutine, so it does only bookkeeping; the mail is
// formatted and sent by the worker.
//
// ctx is the request's context: a panic or 5xx report takes the error
// records collected for the request (see BeginRequest) into its mail.
func (r *Reporter) Report(ctx context.Context, rep Report) {
	if !r.enabled() {
		return
	}
	if ctx == nil {
		ctx = context.Background()
	}
	if rep.Time.IsZero() {
		rep.Time = r.now()
	}
	if rep.Kind != KindErrorLog {
		if s := scopeFrom(ctx); s != nil {
			rep.logs = s.take()
		}
	}
	if len(rep.Stack) == 0 && len(rep.pcs) > 0 {
		rep.Stack = stackText(rep.pcs)
	}
	fp := fingerprint(rep)
	// The worker formats the mail later; a panic value may be a pointer
	// that other goroutines still change, so it is rendered now.
	rep.typ = errorType(rep)
	if rep.Value != nil {
		rep.Value = fmt.Sprint(rep.Value)
	}

	r.mu.Lock()
	d, queued := r.admitLocked(rep, fp)
	r.mu.Unlock()
	if d.firstSuppressed {
		r.logger.WarnContext(ctx, "alert e-mail budget reached; alerts are held back and listed in the next mail or digest",
			"hourly_cap", r.cfg.HourlyCap, "new_fingerprint_reserve", r.cfg.NewFingerprintReserve,
			"digest_interval", r.throttle.digestEvery.String(), "fingerprint", fp)
	}
	if !queued && !d.throttled && !d.suppressed {
		r.drop()
	}
}

// admitLocked applies the budget to one report and queues its mail when it
// lets it through, with the list of what the budget held back; r.mu must
// be held.
func (r *Reporter) admitLocked(rep Report, fp string) (decision, bool) {
	if r.closed {
		return decision{}, false
	}
	now := r.now()
	d := r.throttle.admit(fp, rep, now)
	switch {
	case d.throttled:
		r.throttled.Add(1)
		r.digestLocked(now)
		return d, false
	case d.suppressed:
		r.suppressed.Add(1)
		r.digestLocked(now)
		return d, false
	}
	// The request's headers must not change under the worker.
	rep.Headers = rep.Headers.Clone()
	j := job{report: rep, count: d.count, since: d.since, fp: fp}
	j.heldSince, j.held = r.throttle.takeHeld()
	if !r.enqueueLocked(j) {
		r.throttle.giveBack(j, false, r.now()) // the report is dropped (Report counts it); its list is not
		return d, false
	}
	return d, true
}

// enqueueLocked queues j without waiting; r.mu must be held. A full queue
// means the SMTP server is slow or gone: the mail is not worth a stalled
// request.
func (r *Reporter) enqueueLocked(j job) bool {
	select {
	case r.queue <- j:
		return true
	default:
		return false
	}
}

// drop counts a lost mail and warns, at most once a minute so a storm does
// not become a log storm.
func (r *Reporter) drop() {
	n := r.dropped.Add(1)
	r.errMu.Lock()
	now := r.now()
	logIt := now.Sub(r.lastDropLog) >= time.Minute
	if logIt {
		r.lastDropLog = now
	}
	r.errMu.Unlock()
	if logIt {
		r.logger.Warn("alert e-mail dropped: the queue is full or the reporter is closed",
			"dropped_total", n, "queue_size", r.cfg.QueueSize)
	}
}

// digestLocked queues a digest of what the budget held back once the
// oldest of it has waited email.digest_interval for another mail to carry
// it; r.mu must be held. A digest is outside the hourly cap (it would
// otherwise wait for the very room the storm took), so there is at most one
// per digest interval.
func (r *Reporter) digestLocked(now time.Time) {
	if r.throttle.digestDue(now) {
		r.enqueueDigestLocked(now)
	}
}

func (r *Reporter) enqueueDigestLocked(now time.Time) {
	since, list := r.throttle.takeHeld()
	if len(list) == 0 {
		return
	}
	j := job{report: Report{Kind: kindSummary, Time: now}, held: list, heldSince: since}
	if !r.enqueueLocked(j) {
		if r.closed {
			r.dropped.Add(1) // Close's last digest: nothing comes after it
			return
		}
		r.throttle.giveBack(j, false, now) // held again for a later digest: nothing dropped
	}
}

// Stats returns the counters.
func (r *Reporter) Stats() Stats {
	if !r.enabled() {
		return Stats{}
	}
	r.mu.Lock()
	held := 0
	for _, h := range r.throttle.held {
		held += h.mails
	}
	r.mu.Unlock()
	r.errMu.Lock()
	defer r.errMu.Unlock()
	return Stats{
		Held:        held,
		Digests:     r.digests.Load(),
		Enabled:     true,
		Queued:      len(r.queue),
		Sent:        r.sent.Load(),
		Failed:      r.failed.Load(),
		Dropped:     r.dropped.Load(),
		Throttled:   r.throttled.Load(),
		Suppressed:  r.suppressed.Load(),
		LastError:   r.lastError,
		LastErrorAt: r.lastErrorAt,
		LastSentAt:  r.lastSentAt,
	}
}

// Close stops accepting reports and sends what is queued, plus a digest of
// whatever the budget held back and no mail has listed yet. It returns when the
// queue is empty or when ctx is done (give it email.flush_timeout); then the
// send in progress is cancelled, what is left is counted as dropped, and the
// error says how many were lost. Reports after Close are dropped.
func (r *Reporter) Close(ctx context.Context) error {
	if !r.enabled() {
		return nil
	}
	r.mu.Lock()
	if !r.closed {
		r.closed = true // first: a last digest the queue cannot take is counted dropped
		r.enqueueDigestLocked(r.now())
		close(r.queue)
	}
	r.mu.Unlock()

	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
	}
	pending := len(r.queue) + 1 // the queue, and the mail being sent
	r.cancel()
	return fmt.Errorf("alert: flush deadline passed with about %d e-mails unsent: %w", pending, ctx.Err())
}

// work is the single sender: one SMTP conversation at a time keeps the
// relay's load and the order of mails predictable.
func (r *Reporter) work() {
	defer close(r.done)
	t := time.NewTicker(r.tick)
	defer t.Stop()
	for {
		select {
		case j, ok := <-r.queue:
			if !ok {
				return
			}
			r.deliver(j)
		case <-t.C:
			// Without this, the digest of a storm would wait for the next
			// report, which may never come.
			r.mu.Lock()
			if !r.closed {
				r.digestLocked(r.now())
			}
			r.mu.Unlock()
		}
	}
}

// deliver formats and sends one queued mail.
func (r *Reporter) deliver(j job) {
	if r.base.Err() != nil { // Close gave up waiting: count, don't try
		r.dropped.Add(1)
		return
	}
	m := r.compose(j)
	err := r.send(r.base, m)
	if err != nil {
		r.failed.Add(1)
		r.logger.Warn("alert e-mail not sent", "error", err.Error(), "kind", j.report.Kind, "fingerprint", j.fp,
			"smtp", r.cfg.SMTPHost, "held_for_next_mail", j.report.Kind != kindTest)
		if j.report.Kind != kindTest {
			r.mu.Lock()
			r.throttle.giveBack(j, true, r.now())
			r.mu.Unlock()
		}
		return
	}
	r.sent.Add(1)
	if j.report.Kind == kindSummary {
		r.digests.Add(1)
	}
	r.logger.Info("alert e-mail sent", "kind", j.report.Kind, "fingerprint", j.fp, "count", j.count,
		"recipients", len(r.cfg.Recipients))
}

// SendTest sends one test message synchronously through the same client and
// settings as the alerts, for `api email-test`. The error, if any, is one
// line with secrets scrubbed.
func (r *Reporter) SendTest(ctx context.Context) error {
	if !r.enabled() {
		return errors.New("e-mail is disabled")
	}
	return r.send(ctx, r.compose(job{report: Report{Kind: kindTest, Time: r.now()}}))
}

// send runs one SMTP conversation with the configured timeout. A failure is
// recorded as LastError and returned sanitized.
func (r *Reporter) send(ctx context.Context, m message) error {
	msg, err := r.buildMsg(m)
	if err == nil {
		ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
		defer cancel()
		r.sendMu.Lock()
		err = r.client.DialAndSendWithContext(ctx, msg)
		r.sendMu.Unlock()
	}
	if err == nil {
		r.errMu.Lock()
		r.lastSentAt = r.now()
		r.errMu.Unlock()
		return nil
	}
	line := r.sanitize(err)
	r.errMu.Lock()
	r.lastError, r.lastErrorAt = line, r.now()
	r.errMu.Unlock()
	return errors.New(line)
}
