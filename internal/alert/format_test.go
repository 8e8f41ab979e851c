package alert

import (
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prodready/service/internal/config"
)

func TestSubjectLine(t *testing.T) {
	long := strings.Repeat("abcdefghij", 30)
	tests := []struct {
		name  string
		text  string
		count int
		want  string
	}{
		{"plain", "runtime error: index out of range", 1,
			"[api] [production] panic: runtime error: index out of range"},
		{"count shown from 2", "boom", 8, "[api] [production] panic: boom (x8)"},
		{"first line only", "boom\nsecond line\nthird", 1, "[api] [production] panic: boom"},
		{"CRLF injection stays in one header", "boom\r\nBcc: victim@example.com", 1,
			`[api] [production] panic: boom\r`},
		{"lone CR escaped", "boom\rBcc: victim@example.com", 1,
			`[api] [production] panic: boom\rBcc: victim@example.com`},
		{"leading newlines skipped", "\n\nboom", 1, "[api] [production] panic: boom"},
		{"control characters become spaces", "a\x00b\x1bc\td\u2028e", 1, "[api] [production] panic: a b c d e"},
		{"invalid UTF-8", "a\xffb", 1, "[api] [production] panic: a?b"},
		{"truncated with the count kept", long, 1024,
			("[api] [production] panic: " + long)[:120-len(" (x1024)")-3] + "... (x1024)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := subjectLine("[api]", "production", KindPanic, tt.text, tt.count)
			if got != tt.want {
				t.Errorf("subject =\n %q, want\n %q", got, tt.want)
			}
			if n := utf8.RuneCountInString(got); n > maxSubject {
				t.Errorf("subject has %d characters, want at most %d", n, maxSubject)
			}
			if strings.ContainsAny(got, "\r\n") {
				t.Errorf("subject %q contains a raw CR or LF", got)
			}
		})
	}
	// Multi-byte characters are cut on a character boundary.
	got := subjectLine("[api]", "production", KindPanic, strings.Repeat("é", 200), 1)
	if !utf8.ValidString(got) || utf8.RuneCountInString(got) != maxSubject || !strings.HasSuffix(got, "...") {
		t.Errorf("subject %q: want valid UTF-8, %d characters, ending in ...", got, maxSubject)
	}
}

func TestRedactHeaders(t *testing.T) {
	h := http.Header{}
	for _, kv := range [][2]string{
		{"Authorization", "Bearer tok-abcdef123456"},
		{"Proxy-Authorization", "Basic dXNlcjpwYXNz"},
		{"Cookie", "session=sess-987654321; theme=dark"},
		{"Set-Cookie", "sid=setcookie-value; HttpOnly"},
		{"X-Api-Key", "apikey-1234567"},
		{"X-Auth-Token", "xauth-1234567"},
		{"X-Client-Secret", "client-secret-1"},
		{"X-Db-Password", "hunter2hunter2"},
		{"X-Session-Id", "session-id-77777"},
		{"Accept", "application/json"},
		{"User-Agent", "curl/8.5"},
		{"X-Request-Id", "req-1"},
	} {
		h.Add(kv[0], kv[1])
	}
	lines, secrets := redactHeaders(h)
	wantLines := []string{
		"Accept: application/json",
		"Authorization: [redacted]",
		"Cookie: [redacted]",
		"Proxy-Authorization: [redacted]",
		"Set-Cookie: [redacted]",
		"User-Agent: curl/8.5",
		"X-Api-Key: [redacted]",
		"X-Auth-Token: [redacted]",
		"X-Client-Secret: [redacted]",
		"X-Db-Password: [redacted]",
		"X-Request-Id: req-1",
		"X-Session-Id: [redacted]",
	}
	if !slices.Equal(lines, wantLines) {
		t.Errorf("lines =\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(wantLines, "\n"))
	}
	// The values, and their parts, are collected for scrubbing elsewhere.
	for _, want := range []string{"tok-abcdef123456", "sess-987654321", "dark", "setcookie-value", "apikey-1234567", "hunter2hunter2"} {
		if !slices.Contains(secrets, want) {
			t.Errorf("secrets lack %q: %q", want, secrets)
		}
	}
}

func TestRedactQuery(t *testing.T) {
	tests := []struct{ raw, want string }{
		{"", ""},
		{"limit=10&cursor=abc", "limit=10&cursor=abc"},
		{"token=s3cr3t-value&limit=10", "token=[redacted]&limit=10"},
		{"access_token=a1&api_key=b2&password=c3&X-Amz-Signature=d4&flag", "access_token=[redacted]&api_key=[redacted]&password=[redacted]&X-Amz-Signature=[redacted]&flag"},
		{"%74oken=escaped-name", "%74oken=[redacted]"}, // %74 is "t"
		{"Session=upper", "Session=[redacted]"},
		{"x=1;token=s3cr3t-value", "x=1;token=[redacted]"}, // ; splits parameters for some parsers
		{"a=1;&;password=p;b", "a=1;&;password=[redacted];b"},
	}
	for _, tt := range tests {
		got, _ := redactQuery(tt.raw)
		if got != tt.want {
			t.Errorf("redactQuery(%q) = %q, want %q", tt.raw, got, tt.want)
		}
	}
	_, secrets := redactQuery("token=a%2Bb%2Fc-long")
	if !slices.Contains(secrets, "a+b/c-long") {
		t.Errorf("secrets = %q, want the unescaped value", secrets)
	}
}

func TestScrubber(t *testing.T) {
	secrets := secretList([]string{"pw", "hunter2hunter2", "tok+en/with=chars", "hunter2hunter2-longer"})
	s := newScrubber(secrets).Replace
	tests := []struct{ in, want string }{
		{"login failed for hunter2hunter2", "login failed for [redacted]"},
		{"longest first: hunter2hunter2-longer", "longest first: [redacted]"},
		{"escaped: tok%2Ben%2Fwith%3Dchars", "escaped: [redacted]"},
		{"raw: tok+en/with=chars", "raw: [redacted]"},
		{"short values are not secrets: pw", "short values are not secrets: pw"},
	}
	for _, tt := range tests {
		if got := s(tt.in); got != tt.want {
			t.Errorf("scrub(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// Two panic sites for the fingerprint test. Each returns the stack of a
// real recovered panic, as the server's recovery captures it. They are not
// inlined so that their frames look like a handler's.
//
//go:noinline
func panicSiteA(v any) (stack []byte) {
	defer func() { _ = recover(); stack = debug.Stack() }()
	panic(v)
}

//go:noinline
func panicSiteB(v any) (stack []byte) {
	defer func() { _ = recover(); stack = debug.Stack() }()
	panic(v)
}

func TestFingerprintGroupsBySiteAndType(t *testing.T) {
	fp := func(kind string, v any, stack []byte) string {
		return fingerprint(Report{Kind: kind, Value: v, Stack: stack})
	}
	a1 := fp(KindPanic, "boom 1", panicSiteA("boom 1"))
	a2 := fp(KindPanic, "boom 2 for user 42", panicSiteA("boom 2"))
	b := fp(KindPanic, "boom 1", panicSiteB("boom 1"))
	aErr := fp(KindPanic, errors.New("boom"), panicSiteA(errors.New("boom")))
	if a1 != a2 {
		t.Error("the same panic site with different texts must group")
	}
	if a1 == b {
		t.Error("different panic sites must not group")
	}
	if a1 == aErr {
		t.Error("different panic value types must not group")
	}

	// Line numbers are not part of it: the same code shifted by a redeploy groups.
	stack := string(panicSiteA("x"))
	shifted := strings.NewReplacer("format_test.go:", "format_test.go:1", ".go:", ".go:9").Replace(stack)
	if fp(KindPanic, "x", []byte(stack)) != fp(KindPanic, "x", []byte(shifted)) {
		t.Error("shifted line numbers changed the fingerprint")
	}

	// The top frames are the panic site's, not the recovery plumbing's.
	frames := appFrames(panicSiteA("x"), topFrames)
	if len(frames) == 0 || !strings.Contains(frames[0], "alert.panicSiteA") {
		t.Errorf("top frames = %q, want panicSiteA first", frames)
	}

	// Returned errors have no stack: the innermost error type and the route.
	wrapped := fmt.Errorf("list: %w", errConnRefused{})
	e1 := fingerprint(Report{Kind: Kind5xx, Err: wrapped, Method: "GET", Route: "/v1/notes"})
	e2 := fingerprint(Report{Kind: Kind5xx, Err: fmt.Errorf("other text: %w", errConnRefused{}), Method: "GET", Route: "/v1/notes"})
	e3 := fingerprint(Report{Kind: Kind5xx, Err: wrapped, Method: "GET", Route: "/v1/notes/:id"})
	if e1 != e2 || e1 == e3 {
		t.Errorf("5xx fingerprints: same route %v, other route %v; want equal, different", e1 == e2, e1 != e3)
	}
	if got := errorType(Report{Err: wrapped}); got != "alert.errConnRefused" {
		t.Errorf("errorType = %q, want the innermost error's type", got)
	}
	if got := errorType(Report{}); got != "none" {
		t.Errorf("errorType of nothing = %q", got)
	}
}

type errConnRefused struct{}

func (errConnRefused) Error() string { return "connection refused" }

func TestAppFramesFallsBackToAnyPackage(t *testing.T) {
	stack := "goroutine 1 [running]:\npanic({0x1, 0x2})\n\t/go/src/runtime/panic.go:1 +0x1\n" +
		"encoding/json.Marshal(0xc0000)\n\t/go/src/encoding/json/encode.go:1 +0x1\n" +
		"net/http.HandlerFunc.ServeHTTP(...)\n\t/go/src/net/http/server.go:1\n" +
		"created by net/http.(*Server).Serve in goroutine 1\n\t/go/src/net/http/server.go:2 +0x1\n"
	got := appFrames([]byte(stack), 3)
	want := []string{"encoding/json.Marshal", "net/http.HandlerFunc.ServeHTTP"}
	if !slices.Equal(got, want) {
		t.Errorf("frames = %q, want %q", got, want)
	}
}

func TestThrottleMailsAtPowersOfTwo(t *testing.T) {
	th := newThrottle(1000, 0, time.Hour)
	start := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	var mailed []int
	for i := range 1000 {
		if d := th.admit("fp", Report{}, start.Add(time.Duration(i)*time.Second)); !d.throttled && !d.suppressed {
			mailed = append(mailed, d.count)
		}
	}
	want := []int{1, 2, 4, 8, 16, 32, 64, 128, 256, 512}
	if !slices.Equal(mailed, want) {
		t.Errorf("mailed at %v, want %v", mailed, want)
	}
	// After the window the group starts again and its first occurrence is mailed.
	if d := th.admit("fp", Report{}, start.Add(groupWindow+time.Second)); d.count != 1 || d.throttled {
		t.Errorf("after the window: %+v, want a new group mailed at count 1", d)
	}
}

// TestThrottleBudget walks the budget through a flood of one error, then
// other errors, with hourly_cap 5 of which 2 are kept for new fingerprints.
func TestThrottleBudget(t *testing.T) {
	th := newThrottle(5, 2, 15*time.Minute)
	start := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	flood := Report{Kind: KindPanic, Value: "boom", Method: "GET", Route: "/debug/panic"}
	type outcome struct{ mailed, throttled, suppressed, first int }
	admit := func(fp string, rep Report, n int, at time.Time) (o outcome) {
		for range n {
			d := th.admit(fp, rep, at)
			switch {
			case d.throttled:
				o.throttled++
			case d.suppressed:
				o.suppressed++
				if d.firstSuppressed {
					o.first++
				}
			default:
				o.mailed++
			}
		}
		return o
	}
	steps := []struct {
		name string
		fp   string
		n    int
		at   time.Duration
		want outcome
	}{
		// Counts 1, 2, 4 and 8 are mailed: 1 is new, 2, 4 and 8 are the
		// three repeats cap-reserve allows; 16 ... 512 are held back.
		{"a flood of one error", "A", 1000, 0, outcome{mailed: 4, throttled: 990, suppressed: 6, first: 1}},
		{"a different error uses the reserve", "B", 1, time.Minute, outcome{mailed: 1}},
		{"its repeat cannot use the reserve", "B", 1, 2 * time.Minute, outcome{suppressed: 1}},
		// B's first mail was the 5th: the cap is full, so C is held too.
		{"a third error finds the cap full", "C", 1, 3 * time.Minute, outcome{suppressed: 1}},
	}
	for _, s := range steps {
		if got := admit(s.fp, flood, s.n, start.Add(s.at)); got != s.want {
			t.Errorf("%s: %+v, want %+v", s.name, got, s.want)
		}
	}
	if th.digestDue(start.Add(14 * time.Minute)) {
		t.Error("digest due before digest_interval passed")
	}
	if !th.digestDue(start.Add(15 * time.Minute)) {
		t.Error("digest not due 15 minutes after the first held report")
	}
	since, list := th.takeHeld()
	if !since.Equal(start) || len(list) != 3 {
		t.Fatalf("held since %v: %+v; want 3 fingerprints since 10:00", since, list)
	}
	if a := list[0]; a.fp != "A" || a.mails != 6 || a.occurrences != 1000 || a.route != "GET /debug/panic" || a.text != "boom" {
		t.Errorf("largest held = %+v, want A with 6 mails held of 1000 occurrences", a)
	}
	if _, again := th.takeHeld(); again != nil || th.digestDue(start.Add(time.Hour)) {
		t.Error("taking the held list did not start it over")
	}
	// An hour on, the slots have aged out and every group starts again.
	if got := admit("A", flood, 1, start.Add(time.Hour)); got.mailed != 1 {
		t.Errorf("an hour later A: %+v, want mailed", got)
	}
}

func TestThrottleForgetsGroupsBeyondTheBound(t *testing.T) {
	th := newThrottle(1, 0, time.Hour)
	now := time.Now()
	for i := range maxGroups + 10 {
		th.admit(fmt.Sprint(i), Report{}, now)
	}
	if len(th.groups) > maxGroups {
		t.Errorf("%d groups kept, want at most %d", len(th.groups), maxGroups)
	}
	for i := range 5 {
		th.admit(fmt.Sprint("later", i), Report{}, now.Add(2*groupWindow))
	}
	if len(th.groups) > maxGroups {
		t.Errorf("%d groups kept after expiry, want at most %d", len(th.groups), maxGroups)
	}
}

func TestTLSPolicyMapping(t *testing.T) {
	for _, s := range []string{"mandatory", "opportunistic", "none", ""} {
		if _, err := tlsPolicy(s); err != nil {
			t.Errorf("tlsPolicy(%q): %v", s, err)
		}
	}
	if _, err := tlsPolicy("sometimes"); err == nil {
		t.Error("an unknown policy was accepted")
	}
}

// TestMailText_SaysWhatFailed: the headline (and subject) of a 5xx mail for
// what the handler recorded, and the error chain that shows the layers a
// wrapped error came through.
func TestMailText_SaysWhatFailed(t *testing.T) {
	r := &Reporter{cfg: config.Email{SubjectPrefix: "[api]"}, info: Info{Environment: "production"}}
	refused := errors.New("connect: connection refused")
	for _, tt := range []struct {
		name        string
		rep         Report
		subject     string
		bodyHas     []string
		bodyHasNone string
	}{
		{"message and error", Report{Kind: Kind5xx, Message: "notes store failed", Err: refused},
			"[api] [production] 5xx: notes store failed: connect: connection refused", nil, "Error chain"},
		{"message only", Report{Kind: Kind5xx, Message: "upstream timed out"}, "[api] [production] 5xx: upstream timed out", nil, ""},
		{"status only", Report{Kind: Kind5xx, Status: 503}, "[api] [production] 5xx: HTTP 503 and no error recorded by the handler", nil, ""},
		{"wrapped error", Report{Kind: Kind5xx, Err: fmt.Errorf("get note: %w", fmt.Errorf("query: %w", refused))},
			"[api] [production] 5xx: get note: query: connect: connection refused",
			[]string{"Error chain (outermost first)", "*fmt.wrapError: get note: query: connect: connection refused",
				"*fmt.wrapError: query: connect: connection refused", "*errors.errorString: connect: connection refused"}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := r.compose(job{report: tt.rep, count: 1})
			if m.subject != tt.subject {
				t.Errorf("subject %q, want %q", m.subject, tt.subject)
			}
			for _, s := range tt.bodyHas {
				if !strings.Contains(m.body, s) {
					t.Errorf("body without %q:\n%s", s, m.body)
				}
			}
			if tt.bodyHasNone != "" && strings.Contains(m.body, tt.bodyHasNone) {
				t.Errorf("body with %q:\n%s", tt.bodyHasNone, m.body)
			}
		})
	}
}

// TestMailText_AClientCannotBlankItOut is the attack on the alert mail of
// one's own request: short cookie values that are words of the mail
// (panic, debug, github.com) stay in it; a credential of real length is
// still scrubbed wherever the request echoes it, and the configured
// secrets everywhere, the stack included.
func TestMailText_AClientCannotBlankItOut(t *testing.T) {
	const token = "s3cr3t-session-0123456789"
	r := &Reporter{cfg: config.Email{SubjectPrefix: "[api]"}, info: Info{Environment: "production"},
		secrets: secretList([]string{"configured-smtp-password"})}
	rep := Report{
		Kind: KindPanic, Value: "debug: a deliberate panic echoing " + token,
		Method: "GET", Route: "/debug/panic", Path: "/debug/panic",
		Headers: http.Header{"Cookie": {"a=debug; b=deliberate; c=panic; d=github.com; e=.go:; s=" + token}},
		Stack:   []byte("goroutine 1 [running]:\ngithub.com/prodready/service/internal/server.addFailRoutes.func1()\n\t/src/internal/server/debug.go:30 +0x25 configured-smtp-password\n"),
	}
	m := r.compose(job{report: rep, count: 1})
	for _, want := range []string{"Kind:        panic", "Route:       /debug/panic", "debug: a deliberate panic echoing [redacted]",
		"github.com/prodready/service/internal/server.addFailRoutes.func1()", "debug.go:30"} {
		if !strings.Contains(m.body, want) {
			t.Errorf("body without %q:\n%s", want, m.body)
		}
	}
	if !strings.HasPrefix(m.subject, "[api] [production] panic: debug: a deliberate panic echoing [redacted]") {
		t.Errorf("subject %q", m.subject)
	}
	for _, leak := range []string{token, "configured-smtp-password"} {
		if strings.Contains(m.body+m.subject, leak) {
			t.Errorf("%q in the mail:\n%s", leak, m.body)
		}
	}
}
