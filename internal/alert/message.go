package alert

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// message is a composed mail, ready for buildMsg.
type message struct {
	subject, body, fp string
}

// compose writes the mail for j as plain text: what happened, where, the
// request, its headers (redacted), the log records of the request and the
// full stack. The configured secrets (SMTP password, status tokens, the
// database's) are scrubbed from every part. The values of the request's
// own credential headers and parameters are scrubbed from the parts that
// echo the request (error text, path, headers, logs), but not from the
// stack or the fields the server fills in (kind, type, route, method,
// status): the client chooses those values, and must not be able to blank
// out the mail that reports it.
func (r *Reporter) compose(j job) message {
	rep := j.report
	headerLines, headerSecrets := redactHeaders(rep.Headers)
	query, querySecrets := redactQuery(rep.Query)
	fixed := newScrubber(r.secrets).Replace
	scrub := newScrubber(secretList(append(append(r.secrets, requestSecrets(headerSecrets)...), requestSecrets(querySecrets)...))).Replace

	text := scrub(errorText(rep, j))
	subject := subjectLine(r.cfg.SubjectPrefix, r.info.Environment, rep.Kind, text, j.count)

	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	field := func(name, value string) {
		if value != "" {
			p("  %-12s %s\n", name+":", oneLine(scrub(value)))
		}
	}
	// A field the server fills in, not the client.
	fixedField := func(name, value string) {
		if value != "" {
			p("  %-12s %s\n", name+":", oneLine(fixed(value)))
		}
	}

	switch rep.Kind {
	case kindTest:
		p("This is a test message from %s (%s) on %s, sent by `api email-test`.\n", r.info.Service, r.info.Environment, r.info.Host)
		p("Stack-trace e-mails will reach %s through %s:%d.\n", strings.Join(r.cfg.Recipients, ", "), r.cfg.SMTPHost, r.cfg.SMTPPort)
		return message{subject: subject, body: b.String()}
	case kindSummary:
		p("No other alert mail went out for %s to carry this list, so it comes as a digest.\n\n",
			r.throttle.digestEvery)
		r.writeHeld(&b, j, scrub)
		p("\nService %s %s (%s) on %s\n", r.info.Service, r.info.Version, r.info.Environment, r.info.Host)
		return message{subject: subject, body: b.String()}
	case KindCheck:
		r.writeCheck(&b, j, text, scrub)
		return message{subject: subject, body: b.String(), fp: j.fp}
	}

	p("%s\n\n", text)
	fixedField("Kind", rep.Kind)
	fixedField("Type", rep.typ)
	if j.count > 1 {
		fixedField("Occurrences", fmt.Sprintf("%d since %s (mailed at 1, 2, 4, 8, ... within an hour)", j.count, utc(j.since)))
	} else {
		fixedField("Occurrences", "1 (first in this hour; repeats are mailed at 2, 4, 8, ...)")
	}
	r.writeTail(&b, j, field, scrub)

	if rep.Method != "" || rep.RequestID != "" {
		p("\nRequest\n")
		fixedField("Method", rep.Method)
		fixedField("Route", rep.Route)
		path := rep.Path
		if query != "" {
			path += "?" + query
		}
		field("Path", path)
		if rep.Status != 0 {
			fixedField("Status", fmt.Sprint(rep.Status))
		}
		field("Request ID", rep.RequestID)
		field("Client IP", rep.ClientIP)
		field("User agent", rep.UserAgent)
	}
	if len(headerLines) > 0 {
		p("\nRequest headers (credentials redacted)\n")
		for _, l := range headerLines {
			p("  %s\n", oneLine(scrub(l)))
		}
	}
	if chain := errorChain(rep.Err); len(chain) > 1 {
		p("\nError chain (outermost first)\n")
		for _, l := range chain {
			p("  %s\n", oneLine(scrub(l)))
		}
	}
	if len(rep.logs) > 0 {
		p("\nError records logged during this request\n")
		for _, l := range rep.logs {
			p("  %s\n", oneLine(scrub(l)))
		}
	}
	if rep.record != "" {
		p("\nLog record\n  %s\n", oneLine(scrub(rep.record)))
	}
	p("\nStack trace\n")
	if len(rep.Stack) > 0 {
		// Go's traces print no string contents, only function names, files
		// and argument words: nothing of the request to scrub.
		p("%s\n", strings.TrimRight(fixed(string(rep.Stack)), "\n"))
	} else {
		p("  (none: a returned error carries no stack trace in Go; the route and the error chain above locate it)\n")
	}
	return message{subject: subject, body: b.String(), fp: j.fp}
}

// errorText is the headline of the mail, also the subject's text.
func errorText(rep Report, j job) string {
	switch rep.Kind {
	case kindTest:
		return "test message; e-mail settings work"
	case kindSummary:
		mails := 0
		for _, h := range j.held {
			mails += h.mails
		}
		return fmt.Sprintf("%d alerts held back by the budget, %d fingerprints", mails, len(j.held))
	case KindCheck:
		return checkHeadline(rep)
	case KindPanic:
		return fmt.Sprint(rep.Value)
	case KindErrorLog:
		if rep.Err != nil {
			return rep.Message + ": " + rep.Err.Error()
		}
		return rep.Message
	}
	switch {
	case rep.Err != nil && rep.Message != "":
		return rep.Message + ": " + rep.Err.Error()
	case rep.Err != nil:
		return rep.Err.Error()
	case rep.Message != "":
		return rep.Message
	case rep.Status != 0:
		return fmt.Sprintf("HTTP %d and no error recorded by the handler", rep.Status)
	}
	return "no error text"
}

// errorChain lists "type: text" for each error of err's Unwrap chain, which
// shows the layers a returned error went through.
func errorChain(err error) []string {
	var out []string
	for ; err != nil && len(out) < 10; err = errors.Unwrap(err) {
		out = append(out, fmt.Sprintf("%T: %s", err, err.Error()))
	}
	return out
}

func utc(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// writeHeld lists what the budget held back, per fingerprint: the part of
// a mail that makes a suppressed alert visible after all.
func (r *Reporter) writeHeld(b *strings.Builder, j job, scrub func(string) string) {
	mails, occurrences := 0, 0
	for _, h := range j.held {
		mails += h.mails
		occurrences += h.occurrences
	}
	fmt.Fprintf(b, "Held back by the alert budget since %s: %d mails of %d fingerprints (%d occurrences)\n",
		utc(j.heldSince), mails, len(j.held), occurrences)
	fmt.Fprintf(b, "(email.hourly_cap %d, of which email.new_fingerprint_reserve %d only for fingerprints not mailed yet this hour)\n",
		r.cfg.HourlyCap, r.cfg.NewFingerprintReserve)
	for i, h := range j.held {
		if i == maxHeld {
			fmt.Fprintf(b, "  ... and %d more fingerprints\n", len(j.held)-maxHeld)
			break
		}
		where := ""
		if h.route != "" {
			where = " at " + h.route
		}
		fmt.Fprintf(b, "  %s  %-10s x%d, %d mails held, %s to %s%s\n      %s\n",
			h.fp, h.kind, h.occurrences, h.mails, utc(h.first), utc(h.last), oneLine(scrub(where)), oneLine(scrub(h.text)))
	}
	fmt.Fprintf(b, "The service logs every panic and unhandled error; search the logs by fingerprint or time.\n")
}

// writeTail ends the head of a mail: the fingerprint, the service, and the
// list of what the budget held back when there is one.
func (r *Reporter) writeTail(b *strings.Builder, j job, field func(name, value string), scrub func(string) string) {
	field("Fingerprint", j.fp)
	b.WriteString("\n")
	field("Service", r.info.Service)
	field("Version", r.info.Version)
	field("Environment", r.info.Environment)
	field("Host", r.info.Host)
	field("Time", utc(j.report.Time))
	if len(j.held) > 0 {
		b.WriteString("\n")
		r.writeHeld(b, j, scrub)
	}
}
