#!/usr/bin/env bash
# Instructions per request, counted by valgrind's callgrind on the real
# program: the figure in docs/PERFORMANCE.md that does not depend on the
# machine's load (make bench's throughput ratios do). For GET /livez and a
# cached GET /v1/notes/:id it runs the full stack (bin/api serve on the
# development defaults make bench uses) and the bare gin engine (bin/bench
# -serve-bare) under callgrind, warms each up, counts N requests sent over
# one keep-alive connection and divides. The whole process is counted:
# handlers, net/http, the runtime and the garbage collector; the kernel's
# share of each socket read and write is not. Each figure is the least of
# three runs: callgrind takes its commands (count on, off, dump) only when
# the program next runs, and now and then a run counts much more than its
# requests (seen here once in eight, ten times the others); the others
# agree within a few per cent.
#
#   make bench-instructions        # builds bin/api and bin/bench first
#   N=5000 scripts/bench/instructions.sh
#
# Needs valgrind (the Debian package). Loopback only. About two minutes.
set -euo pipefail
cd "$(dirname "$0")/../.."

N=${N:-2000}
WARMUP=300
for tool in valgrind callgrind_control curl; do
	command -v "$tool" >/dev/null || { echo "instructions.sh: $tool is needed (apt-get install valgrind curl)" >&2; exit 2; }
done
for bin in bin/api bin/bench; do
	[ -x "$bin" ] || { echo "instructions.sh: $bin is missing: make bench-instructions builds it" >&2; exit 2; }
done

work=$(mktemp -d)
pid=
cleanup() {
	if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi
	rm -rf "$work"
}
trap cleanup EXIT

# valgrind 3.19 knows neither Go's RDTSCP nor its preemption signals.
export GODEBUG=cpu.rdtscp=off,asyncpreemptoff=1
note_json='{"title":"bench note","body":"a note body of some length for the benchmark"}'

# requests URL COUNT: COUNT GETs of URL over one connection (curl reuses it).
requests() {
	local i
	for ((i = 0; i < $2; i++)); do printf 'url = "%s"\noutput = "/dev/null"\n' "$1"; done >"$work/urls"
	curl -fsS --config "$work/urls"
}

# measure SIDE PATH: sets result to the instructions per request of SIDE
# (full or bare) on PATH (livez or get).
result=
measure() {
	local side=$1 path=$2 port dir url id
	port=$((20000 + RANDOM % 20000))
	dir="$work/$side-$path"
	mkdir -p "$dir"
	if [ "$side" = full ]; then
		APP_ENVIRONMENT=development PORT=$port APP_HTTP_HOST=127.0.0.1 APP_DATABASE_SQLITE_PATH="$dir/notes.db" \
			APP_LOG_LEVEL=info APP_NEWRELIC_ENABLED=false APP_CACHE_TTL=1h APP_HTTP_DRAIN_DELAY=0s STATUS_TOKENS=bench-token \
			valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$dir/cg.out" bin/api serve \
			>/dev/null 2>"$dir/valgrind.log" &
	else
		valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$dir/cg.out" bin/bench -serve-bare "127.0.0.1:$port" \
			>/dev/null 2>"$dir/valgrind.log" &
	fi
	pid=$!
	local up=
	for _ in $(seq 1 240); do
		if curl -fs "http://127.0.0.1:$port/livez" >/dev/null 2>&1; then up=1; break; fi
		sleep 0.5
	done
	[ -n "$up" ] || { echo "instructions.sh: $side did not answer under valgrind; its log:" >&2; tail -20 "$dir/valgrind.log" >&2; exit 1; }
	url="http://127.0.0.1:$port/livez"
	if [ "$path" = get ]; then
		if [ "$side" = full ]; then # the service makes the note; its first read fills the cache
			id=$(curl -fsS "http://127.0.0.1:$port/v1/notes" -H 'Content-Type: application/json' -d "$note_json" | sed 's/.*"id":"\([^"]*\)".*/\1/')
		else # the bare engine serves what it is given, as the cache would
			id=01a23bae-4490-7128-9bd2-cf62252340a8
			curl -fsS -X PUT --data-binary "{\"id\":\"$id\",\"title\":\"bench note\",\"body\":\"a note body of some length for the benchmark\",\"version\":1,\"created_at\":\"2026-12-03T11:33:26.288076Z\",\"updated_at\":\"2026-12-03T11:33:26.288076Z\"}" \
				"http://127.0.0.1:$port/_fill/$id"
		fi
		url="http://127.0.0.1:$port/v1/notes/$id"
	fi
	requests "$url" "$WARMUP"
	# callgrind takes a command when the program next runs (its timers
	# wake it within milliseconds): a pause after each, so that the count
	# holds the N requests and nothing else.
	sleep 0.5
	callgrind_control -i on "$pid" >/dev/null 2>&1
	sleep 0.5
	requests "$url" "$N"
	sleep 0.5
	callgrind_control -i off "$pid" >/dev/null 2>&1
	sleep 0.5
	callgrind_control -d "$pid" >/dev/null 2>&1
	sleep 1
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	pid=
	local total
	total=$(cat "$dir"/cg.out* | awk '/^totals:/ {s += $2} END {print s + 0}')
	result=$((total / N))
}

printf '| Request (%d over one connection) | bare gin (instructions) | full stack (instructions) | bare/full |\n|---|---:|---:|---:|\n' "$N"
for path in livez get; do
	bare=0 full=0
	for _ in 1 2 3; do # the least of three: now and then a run counts far more than its requests
		measure bare "$path"
		if [ "$bare" = 0 ] || [ "$result" -lt "$bare" ]; then bare=$result; fi
		measure full "$path"
		if [ "$full" = 0 ] || [ "$result" -lt "$full" ]; then full=$result; fi
	done
	# shellcheck disable=SC2016 # Markdown backticks, not a command
	label='`GET /livez`'
	# shellcheck disable=SC2016
	[ "$path" = get ] && label='cached `GET /v1/notes/:id` (in-memory cache)'
	printf '| %s | %d | %d | %s |\n' "$label" "$bare" "$full" "$(awk -v b="$bare" -v f="$full" 'BEGIN {printf "%.2f", b / f}')"
done
