package alert

import (
	"slices"
	"time"
)

// maxGroups bounds the memory the dedupe state may take. Fingerprints come
// from code locations, so thousands in an hour already mean something odd;
// beyond this, old groups are forgotten (their next occurrence mails again,
// still under the hourly cap).
const maxGroups = 10000

// maxHeld bounds the fingerprints a summary lists one by one; the rest are
// added up on one line.
const maxHeld = 50

// group counts the occurrences of one fingerprint within groupWindow.
type group struct {
	since  time.Time
	count  int
	mailed int // mails admitted for it in this window; 0 means "not yet seen"
}

// held is what the budget kept back of one fingerprint since the last
// summary: the summary lists it with its counts.
type held struct {
	fp          string
	kind, text  string // the first held report's kind and headline (scrubbed when composed)
	route       string // "GET /v1/notes/:id", or "" outside a request
	mails       int    // mails the budget stopped
	occurrences int    // occurrences of the fingerprint in its window, at the last report
	first, last time.Time
}

// throttle is the alert budget: which reports become mails. Three rules, in
// order (docs/LOGGING.md, "The alert budget"):
//
//  1. per fingerprint, a group is mailed at counts 1, 2, 4, 8, ... within
//     its hour (as Ruby's exception_notification does); other repeats are
//     throttled;
//  2. no more than cap mails in any hour (a sliding window), and of those,
//     repeats (a fingerprint's 2nd and later mail in its hour) may use only
//     cap-reserve: the last reserve slots are kept for fingerprints not yet
//     mailed this hour, so a flood of one error never hides a different one;
//  3. what rule 2 stopped is held, counted per fingerprint, and summarised
//     in the next mail that goes out, or in a digest once the oldest held
//     report is digestEvery old.
//
// Not safe for concurrent use; the Reporter holds its mutex.
type throttle struct {
	cap, reserve int
	digestEvery  time.Duration
	groups       map[string]*group

	sent    []time.Time // when the mails of the last capWindow were admitted, oldest first
	repeats []time.Time // the same, for repeat mails only

	held      map[string]*held // what the budget stopped since the last summary
	heldSince time.Time        // when the first of them was stopped
	// digestNotBefore: after a mail that was not delivered, no digest is
	// tried before this (giveBack).
	digestNotBefore time.Time
}

func newThrottle(cap, reserve int, digestEvery time.Duration) throttle {
	return throttle{cap: cap, reserve: reserve, digestEvery: digestEvery,
		groups: map[string]*group{}, held: map[string]*held{}}
}

// decision is what admit decided for one report.
type decision struct {
	count           int       // occurrences of the fingerprint in its window, this one included
	since           time.Time // first occurrence in the window
	throttled       bool      // a repeat between two powers of two: not mailed
	suppressed      bool      // over the budget: not mailed, held for the summary
	firstSuppressed bool      // the first suppression since the last summary
}

// admit counts one occurrence of the report rep (fingerprint fp) at now.
func (t *throttle) admit(fp string, rep Report, now time.Time) decision {
	g := t.groups[fp]
	if g == nil || now.Sub(g.since) >= groupWindow {
		if g == nil && len(t.groups) >= maxGroups {
			t.evict(now)
		}
		g = &group{since: now}
		t.groups[fp] = g
	}
	g.count++
	d := decision{count: g.count, since: g.since}
	if h := t.held[fp]; h != nil {
		h.occurrences, h.last = g.count, now
	}
	if g.count&(g.count-1) != 0 { // not a power of two
		d.throttled = true
		return d
	}
	if !t.take(now, g.mailed > 0) {
		d.suppressed = true
		d.firstSuppressed = len(t.held) == 0
		t.hold(fp, rep, g.count, now)
		return d
	}
	g.mailed++
	return d
}

// take uses one mail of the budget, if the last hour left one for this
// kind of mail: a repeat needs a slot outside the reserve.
func (t *throttle) take(now time.Time, repeat bool) bool {
	t.sent = expire(t.sent, now)
	t.repeats = expire(t.repeats, now)
	if len(t.sent) >= t.cap || (repeat && len(t.repeats) >= t.cap-t.reserve) {
		return false
	}
	t.sent = append(t.sent, now)
	if repeat {
		t.repeats = append(t.repeats, now)
	}
	return true
}

// expire drops the times older than capWindow from an oldest-first list.
func expire(ts []time.Time, now time.Time) []time.Time {
	i := 0
	for i < len(ts) && now.Sub(ts[i]) >= capWindow {
		i++
	}
	return append(ts[:0], ts[i:]...)
}

func (t *throttle) hold(fp string, rep Report, count int, now time.Time) {
	if len(t.held) == 0 {
		t.heldSince = now
	}
	h := t.held[fp]
	if h == nil {
		h = &held{fp: fp, kind: rep.Kind, text: truncate(oneLine(errorText(rep, job{})), 100), first: now}
		if rep.Route != "" || rep.Method != "" {
			h.route = rep.Method + " " + rep.Route
		}
		t.held[fp] = h
	}
	h.mails++
	h.occurrences, h.last = count, now
}

// giveBack puts back what j, a mail that was not delivered, was to list:
// its held-back list, and with holdReport its own report too (a send the
// relay refused; a report the full queue refused is dropped and counted
// instead). Its slot in the budget stays spent, so an outage of the relay
// costs no more attempts than the budget allows; and no digest is tried
// again before digestEvery has passed, however often the worker looks. The
// next mail or digest that goes out lists all of it.
func (t *throttle) giveBack(j job, holdReport bool, now time.Time) {
	for _, h := range j.held {
		if cur := t.held[h.fp]; cur != nil {
			cur.mails += h.mails
			cur.occurrences = max(cur.occurrences, h.occurrences)
			if h.first.Before(cur.first) {
				cur.first = h.first
			}
			continue
		}
		h := h
		t.held[h.fp] = &h
	}
	if len(j.held) > 0 && (t.heldSince.IsZero() || j.heldSince.Before(t.heldSince)) {
		t.heldSince = j.heldSince
	}
	if holdReport && j.report.Kind != kindSummary {
		if len(t.held) == 0 {
			t.heldSince = now
		}
		count := j.count
		if h := t.held[j.fp]; h != nil {
			count = max(count, h.occurrences) // later occurrences were held meanwhile
		}
		t.hold(j.fp, j.report, count, now)
	}
	t.digestNotBefore = now.Add(t.digestEvery)
}

// takeHeld returns what is held, largest first, and starts over: the
// caller puts it into a mail.
func (t *throttle) takeHeld() (since time.Time, list []held) {
	if len(t.held) == 0 {
		return time.Time{}, nil
	}
	for _, h := range t.held {
		list = append(list, *h)
	}
	slices.SortFunc(list, func(a, b held) int {
		if a.occurrences != b.occurrences {
			return b.occurrences - a.occurrences
		}
		return a.first.Compare(b.first)
	})
	since = t.heldSince
	clear(t.held)
	return since, list
}

// digestDue reports whether held reports have waited digestEvery for a
// mail to carry them, so a digest of its own should go.
func (t *throttle) digestDue(now time.Time) bool {
	return len(t.held) > 0 && now.Sub(t.heldSince) >= t.digestEvery && !now.Before(t.digestNotBefore)
}

// evict forgets expired groups and, if that is not enough, arbitrary ones.
func (t *throttle) evict(now time.Time) {
	for fp, g := range t.groups {
		if now.Sub(g.since) >= groupWindow {
			delete(t.groups, fp)
		}
	}
	for fp := range t.groups {
		if len(t.groups) < maxGroups {
			break
		}
		delete(t.groups, fp)
	}
}
