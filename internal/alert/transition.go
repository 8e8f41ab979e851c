package alert

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/prodready/service/internal/health"
)

// smtpCheckName is the SMTP relay's check on /status (SMTPCheck).
const smtpCheckName = "smtp:responseTime"

// ReportTransition mails a status check that turned fail, and the same
// check when it stops failing: one mail each way, whatever the number of
// monitors polling, because the health runner calls it only when a check
// changes state. A check that stays failed sends nothing more. Changes
// between pass and warn are not mailed (warn answers 200: nothing is down).
//
// The mails are ordinary alerts: grouped by check and direction (a
// flapping check is mailed at its 1st, 2nd, 4th ... failure within an
// hour) and under the same budget as the rest.
//
// The SMTP check is the exception on the way down: its failure means this
// very mail could not be sent, so it is only logged (the runner already
// logs every change) and shown on /status; its recovery is mailed, with the
// count of alert mails that failed meanwhile.
//
// Register it with health.Runner.OnTransition; it never blocks.
func (r *Reporter) ReportTransition(t health.Transition) {
	if !r.enabled() {
		return
	}
	failing, recovered := t.To == health.Fail, t.From == health.Fail && t.To != health.Fail
	if !failing && !recovered {
		return
	}
	if t.Check == smtpCheckName {
		if failing {
			r.failedAtSMTPDown.Store(r.failed.Load())
			r.logger.Info("alert e-mail not attempted: the failing check is the SMTP relay itself; its recovery will be mailed",
				"check", t.Check)
			return
		}
	}
	change := t
	rep := Report{Kind: KindCheck, Time: t.Time, change: &change, Message: "check " + t.Check + " is failing"}
	if recovered {
		rep.Message = "check " + t.Check + " recovered"
		if t.Check == smtpCheckName {
			rep.lostMails = r.failed.Load() - r.failedAtSMTPDown.Load()
		}
	}
	r.Report(context.Background(), rep)
}

// checkHeadline is the first line (and subject) of a check's mail.
func checkHeadline(rep Report) string {
	t := rep.change
	if t == nil {
		return rep.Message
	}
	if t.To == health.Fail {
		if t.Output != "" {
			return fmt.Sprintf("%s is failing: %s", t.Check, t.Output)
		}
		return t.Check + " is failing"
	}
	return fmt.Sprintf("%s recovered (%s) after %s", t.Check, t.To, failedFor(*t))
}

// failedFor says how long a recovered check failed: "14 failed runs over 3m0s".
func failedFor(t health.Transition) string {
	runs := fmt.Sprintf("%d failed runs", t.Runs)
	if t.Runs == 1 {
		runs = "1 failed run"
	}
	if t.Since.IsZero() {
		return runs
	}
	return fmt.Sprintf("%s over %s", runs, t.Time.Sub(t.Since).Round(time.Second))
}

// writeCheck writes the body of a check's mail.
func (r *Reporter) writeCheck(b *strings.Builder, j job, text string, scrub func(string) string) {
	rep, t := j.report, j.report.change
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	field := func(name, value string) {
		if value != "" {
			p("  %-12s %s\n", name+":", oneLine(scrub(value)))
		}
	}
	p("%s\n\n", text)
	field("Kind", rep.Kind)
	field("Check", t.Check)
	field("Change", fmt.Sprintf("%s -> %s", t.From, t.To))
	field("Output", t.Output)
	if t.To == health.Fail {
		if !t.Since.IsZero() {
			field("Before", fmt.Sprintf("%s for %d runs since %s", t.From, t.Runs, utc(t.Since)))
		}
	} else {
		field("Failed", fmt.Sprintf("%s, since %s", failedFor(*t), utc(t.Since)))
	}
	if rep.lostMails > 0 {
		field("Lost mails", fmt.Sprintf("%d alert e-mails could not be sent while the relay failed (see the service log)", rep.lostMails))
	}
	if j.count > 1 {
		field("Occurrences", fmt.Sprintf("%d since %s (mailed at 1, 2, 4, 8, ... within an hour)", j.count, utc(j.since)))
	}
	r.writeTail(b, j, field, scrub)
	p("\nA check is mailed when it turns fail and when it recovers, not while it stays failed.\n")
	p("GET /status shows its current state; the service log has each failure's details.\n")
}
