#!/usr/bin/env bash
# The smoke suite: what a person would check first after a deploy, against the
# environment's public URL.
#
#   STATUS_TOKEN=... scripts/ci/smoke.sh BASE_URL [--read-only]
#
# Always: /livez and /readyz answer 200; /status refuses a request without the
# token (401) and, with it, answers 200 application/health+json with status
# pass or warn. Unless --read-only (production): a note is created, read,
# updated with its ETag and deleted, through the public API.
set -euo pipefail

[ $# -ge 1 ] || {
	echo "usage: STATUS_TOKEN=... $0 BASE_URL [--read-only]" >&2
	exit 2
}
base=${1%/}
read_only=false
[ "${2:-}" = "--read-only" ] && read_only=true
: "${STATUS_TOKEN:?set STATUS_TOKEN to one of the status tokens of the environment}"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The token goes to curl in a header file, not on its command line, where
# any process on the runner could read it with ps.
umask 077
printf 'Authorization: Bearer %s\n' "$STATUS_TOKEN" >"$work/auth"
failures=0
pass() { printf 'ok    %s\n' "$*"; }
fail() {
	printf 'FAIL  %s\n' "$*"
	failures=$((failures + 1))
}
# expect WHAT WANT GOT: one line for the check, counted when it fails.
expect() {
	if [ "$3" = "$2" ]; then
		pass "$1 $3"
	else
		fail "$1 answered $3, want $2: $(head -c 300 "$work/body")"
	fi
}

# request METHOD PATH [curl args...]: prints the status code; body in $work/body,
# headers in $work/headers.
request() {
	local method=$1 path=$2
	shift 2
	local code
	code=$(curl -sS -o "$work/body" -D "$work/headers" -w '%{http_code}' --max-time 10 \
		-X "$method" "$@" "$base$path") || code=000 # curl prints 000 itself on some failures
	echo "$code"
}
header() { sed -n "s/^$1: *//Ip" "$work/headers" | tr -d '\r' | tail -1; }

# A rollout has just finished; give the load balancer a moment to follow.
for _ in $(seq 1 30); do
	[ "$(request GET /readyz)" = 200 ] && break
	sleep 2
done

expect "GET /livez" 200 "$(request GET /livez)"
expect "GET /readyz" 200 "$(request GET /readyz)"
expect "GET /status without a token" 401 "$(request GET /status)"

code=$(request GET /status -H "@$work/auth")
ctype=$(header Content-Type)
status=$(jq -r '.status // empty' "$work/body" 2>/dev/null || true)
if [ "$code" = 200 ] && [[ $ctype == application/health+json* ]] && [[ $status =~ ^(pass|warn)$ ]]; then
	pass "GET /status 200 $ctype status=$status version=$(jq -r '.version // "?"' "$work/body")"
else
	fail "GET /status answered $code ($ctype) status=${status:-none}: $(head -c 500 "$work/body")"
fi

if ! $read_only; then
	title="smoke test $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	code=$(request POST /v1/notes -H 'Content-Type: application/json' \
		--data "$(jq -cn --arg t "$title" '{title: $t, body: "created by scripts/ci/smoke.sh"}')")
	id=$(jq -r '.id // empty' "$work/body" 2>/dev/null || true)
	if [ "$code" = 201 ] && [ -n "$id" ]; then
		pass "POST /v1/notes 201 id=$id"
		expect "GET the note" 200 "$(request GET "/v1/notes/$id")"
		etag=$(header ETag)
		expect "PUT the note with If-Match $etag" 200 "$(request PUT "/v1/notes/$id" \
			-H 'Content-Type: application/json' -H "If-Match: $etag" --data '{"title":"smoke test, updated"}')"
		expect "DELETE the note" 204 "$(request DELETE "/v1/notes/$id")"
		expect "GET the deleted note" 404 "$(request GET "/v1/notes/$id")"
	else
		fail "POST /v1/notes answered $code: $(head -c 300 "$work/body")"
	fi
fi

if [ "$failures" -gt 0 ]; then
	echo "smoke: $failures check(s) failed against $base"
	exit 1
fi
echo "smoke: every check passed against $base"
