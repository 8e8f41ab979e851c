// Package servicetest gives tests access to the real services on the machine
// (PostgreSQL, Redis, Mailpit, a TCP proxy to cut them) and what tests share
// to watch the service (LogBuffer). A test that needs an absent service skips
// with a loud message, unless REQUIRE_SERVICES=1 is set (as .ci/run does): then it fails.
package servicetest

import (
	"os"
	"strings"
	"testing"
)

// Required reports whether absent services must fail tests instead of skipping them.
func Required() bool { return os.Getenv("REQUIRE_SERVICES") == "1" }

// URL returns the value of the environment variable env (for example
// TEST_DATABASE_URL), or skips/fails the test when it is unset.
func URL(t testing.TB, env, what string) string {
	t.Helper()
	v := os.Getenv(env)
	if v == "" {
		Missing(t, what, env+" is not set")
	}
	return v
}

// Missing skips the test loudly, or fails it under REQUIRE_SERVICES=1.
// The service is named in capitals, so `make test`'s skip summary (and a
// reader skimming the output) cannot mistake the skip for a pass.
func Missing(t testing.TB, what, why string) {
	t.Helper()
	msg := "SERVICE MISSING: " + strings.ToUpper(what) + ": " + why
	if Required() {
		t.Fatal(msg + " (REQUIRE_SERVICES=1 is set, so a missing service fails the test)")
	}
	t.Skip(msg + " (skipped; REQUIRE_SERVICES=1 makes this a failure, as .ci/run sets it)")
}
