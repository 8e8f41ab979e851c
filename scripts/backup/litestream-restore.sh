#!/usr/bin/env bash
# litestream-restore.sh: restore the service's SQLite file from its
# Litestream replica, to the latest synced point or to a moment in time.
#
#   litestream-restore.sh [--time TIME] --output FILE
#   litestream-restore.sh [--time TIME] --in-place FILE
#
# TIME is RFC 3339 (2026-12-01T10:14:00Z): the state as of the last sync at
# or before it (Litestream syncs every second). The replica is
# LITESTREAM_REPLICA_URL (file:///... or s3://...), as in litestream.yml.
#
#   --output FILE    a drill: restore into a new FILE; nothing else is touched.
#   --in-place FILE  the real thing, with the service and Litestream stopped:
#                    FILE, its -wal and -shm and Litestream's .FILE-litestream
#                    directory are kept aside with a .pre-restore-<UTC time>
#                    suffix, then the restore takes FILE's place.
#
# Litestream does the work and checks the result (PRAGMA integrity_check);
# LITESTREAM names its binary (default: litestream on PATH, else .tools/).

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

readonly USAGE="litestream-restore.sh [--time TIME] (--output FILE | --in-place FILE)"

main() {
	local time="" output="" inplace="" target bin start args=()
	while [ $# -gt 0 ]; do
		case $1 in
		--time | --output | --in-place)
			[ $# -ge 2 ] || usage_error "$USAGE"
			case $1 in
			--time) time=$2 ;;
			--output) output=$2 ;;
			--in-place) inplace=$2 ;;
			esac
			shift 2
			;;
		-h | --help)
			echo "usage: $USAGE"
			exit 0
			;;
		*) usage_error "$USAGE" ;;
		esac
	done
	if { [ -n "$output" ] && [ -n "$inplace" ]; } || { [ -z "$output" ] && [ -z "$inplace" ]; }; then
		usage_error "$USAGE"
	fi
	init_run ""
	bin=${LITESTREAM:-$(command -v litestream || printf '%s\n' "$(dirname -- "${BASH_SOURCE[0]}")"/../../.tools/litestream-* | sort -V | tail -n 1)}
	[ -x "$bin" ] || die "litestream not found: make litestream, or set LITESTREAM"
	[ -n "${LITESTREAM_REPLICA_URL:-}" ] || die "LITESTREAM_REPLICA_URL is not set: name the replica (file:///... or s3://...)"
	if [ -n "$time" ]; then
		args+=(-timestamp "$time")
	fi
	target=${output:-$inplace}
	if [ -n "$output" ]; then
		[ ! -e "$output" ] || die "$output exists: a drill restores into a new file"
	else
		[ -f "$inplace" ] || die "$inplace is not a file: name the service's database"
	fi
	start=$(now_ms)
	log "restore of $LITESTREAM_REPLICA_URL into $target started (target: ${time:-latest sync})"
	# Into a file beside the target first: a failed restore leaves it untouched.
	run "litestream restore" "$bin" restore -integrity-check quick "${args[@]}" -o "$target.restoring" "$LITESTREAM_REPLICA_URL"
	if [ -n "$inplace" ]; then
		local aside f
		aside=pre-restore-$(date -u +%Y%m%dT%H%M%SZ)
		for f in "$inplace" "$inplace-wal" "$inplace-shm" "$(dirname -- "$inplace")/.$(basename -- "$inplace")-litestream"; do
			if [ -e "$f" ]; then
				mv -- "$f" "$f.$aside" || die "cannot move $f aside"
			fi
		done
		log "the old database is kept as $inplace.$aside; remove it once the restore is checked"
	fi
	mv -- "$target.restoring" "$target" || die "cannot move the restored file to $target"
	log "restored $target in $(seconds "$(($(now_ms) - start))")"
}

main "$@"
