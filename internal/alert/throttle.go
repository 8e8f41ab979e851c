package alert

import "time"

// maxGroups bounds the memory the dedupe state may take. Fingerprints come
// from code locations, so thousands in an hour already mean something odd;
// beyond this, old groups are forgotten (their next occurrence mails again,
// still under the hourly cap).
const maxGroups = 10000

// group counts the occurrences of one fingerprint within groupWindow.
type group struct {
	since time.Time
	count int
}

// throttle decides which reports become mails: a group is mailed at counts
// 1, 2, 4, 8, ... (as Ruby's exception_notification does), and no more than
// cap mails leave in any hour (a sliding window, as documented for
// email.hourly_cap). Not safe for concurrent use; the Reporter holds its
// mutex.
type throttle struct {
	cap    int
	groups map[string]*group

	sent            []time.Time // when the mails of the last capWindow were admitted, oldest first
	suppressed      int         // mails the cap stopped since the last summary
	suppressedSince time.Time   // when the first of them was stopped
}

// decision is what admit decided for one report.
type decision struct {
	count           int       // occurrences of the fingerprint in its window, this one included
	since           time.Time // first occurrence in the window
	throttled       bool      // a repeat between two powers of two: not mailed
	suppressed      bool      // over the hourly cap: not mailed
	firstSuppressed bool      // the first suppression since the last summary
}

// admit counts one occurrence of fingerprint fp at now.
func (t *throttle) admit(fp string, now time.Time) decision {
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
	if g.count&(g.count-1) != 0 { // not a power of two
		d.throttled = true
		return d
	}
	if !t.take(now) {
		d.suppressed = true
		d.firstSuppressed = t.suppressed == 0
		if d.firstSuppressed {
			t.suppressedSince = now
		}
		t.suppressed++
	}
	return d
}

// take uses one mail of the cap, if the last hour left one.
func (t *throttle) take(now time.Time) bool {
	i := 0
	for i < len(t.sent) && now.Sub(t.sent[i]) >= capWindow {
		i++
	}
	t.sent = append(t.sent[:0], t.sent[i:]...)
	if len(t.sent) >= t.cap {
		return false
	}
	t.sent = append(t.sent, now)
	return true
}

// summary reports how many mails the cap stopped, and since when, once the
// cap has room again for the summary mail itself; the count starts over.
func (t *throttle) summary(now time.Time) (since time.Time, suppressed int, ok bool) {
	if t.suppressed == 0 || !t.take(now) {
		return time.Time{}, 0, false
	}
	since, suppressed = t.suppressedSince, t.suppressed
	t.suppressed = 0
	return since, suppressed, true
}

// finalSummary is summary at shutdown: the count is mailed, cap or not,
// rather than lost.
func (t *throttle) finalSummary() (since time.Time, suppressed int) {
	since, suppressed = t.suppressedSince, t.suppressed
	t.suppressed = 0
	return since, suppressed
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
