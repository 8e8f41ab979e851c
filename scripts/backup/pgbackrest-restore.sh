#!/usr/bin/env bash
# pgbackrest-restore.sh: restore the PostgreSQL cluster from pgBackRest, to
# the latest archived point or to a moment in time.
#
#   pgbackrest-restore.sh [--time TIME] --scratch DIR --port PORT
#   pgbackrest-restore.sh [--time TIME] --in-place PGDATA
#
# TIME is a PostgreSQL timestamp with a zone ("2026-12-01 10:14:00+00"):
# every transaction committed up to it is restored, none after. Without it,
# everything archived. pgBackRest picks the backup set before TIME and
# fetches the WAL to replay; the server then replays it and promotes.
#
#   --scratch DIR --port PORT   a drill: restore into the empty or missing DIR
#                  and start a server there on 127.0.0.1:PORT, with archiving
#                  off so it never writes into the repository. Nothing else
#                  is touched. Stop it with pg_ctl --pgdata=DIR stop.
#   --in-place PGDATA           the real thing, with the server stopped: the
#                  old PGDATA is kept aside as PGDATA.pre-restore-<UTC time>,
#                  the restore goes into a new PGDATA, and the server replays
#                  to TIME when you start it.
#   --conf-from DIR             copy postgresql.conf, pg_hba.conf and
#                  pg_ident.conf from DIR (Debian keeps them in
#                  /etc/postgresql/<version>/main, outside the backup).
#
# Run as the PostgreSQL OS user, with pgBackRest's configuration as for
# pgbackrest-backup.sh; PG_BIN names the server's bin directory when pg_ctl
# is not on PATH (default: the newest /usr/lib/postgresql/*/bin). Before restoring after a mistake on a live server,
# push its current WAL segment: pgbackrest check (docs/BACKUP.md).

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

readonly USAGE="pgbackrest-restore.sh [--time TIME] [--conf-from DIR] (--scratch DIR --port PORT | --in-place PGDATA)"

main() {
	local time="" scratch="" port="" inplace="" confdir="" target
	while [ $# -gt 0 ]; do
		case $1 in
		--time | --scratch | --port | --in-place | --conf-from)
			[ $# -ge 2 ] || usage_error "$USAGE"
			case $1 in
			--time) time=$2 ;;
			--scratch) scratch=$2 ;;
			--port) port=$2 ;;
			--in-place) inplace=$2 ;;
			--conf-from) confdir=$2 ;;
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
	if { [ -n "$scratch" ] && [ -n "$inplace" ]; } || { [ -z "$scratch" ] && [ -z "$inplace" ]; }; then
		usage_error "$USAGE"
	fi
	if [ -n "$scratch" ] && ! [[ $port =~ ^[0-9]+$ ]]; then
		usage_error "$USAGE"
	fi
	init_run ""
	need pgbackrest
	# Debian keeps pg_ctl off PATH, in /usr/lib/postgresql/<version>/bin.
	local pgctl
	if [ -n "${PG_BIN:-}" ]; then
		pgctl=$PG_BIN/pg_ctl
	else
		pgctl=$(command -v pg_ctl || printf '%s\n' /usr/lib/postgresql/*/bin/pg_ctl | sort -V | tail -n 1)
	fi
	[ -x "$pgctl" ] || die "pg_ctl not found: set PG_BIN to the server's bin directory"
	export PGBACKREST_STANZA=${PGBACKREST_STANZA:-notes}
	local args=()
	if [ -n "$time" ]; then
		args+=(--type=time "--target=$time" --target-action=promote)
	fi

	local start
	start=$(now_ms)
	if [ -n "$scratch" ]; then
		target=$scratch
		if [ -e "$target" ] && [ -n "$(ls -A -- "$target")" ]; then
			die "$target is not empty: a drill restores into a new directory"
		fi
		[ -d "$target" ] || mkdir -m 0700 -- "$target" || die "cannot create $target"
		args+=(--archive-mode=off)
	else
		target=$inplace
		[ -d "$target" ] || die "$target is not a directory: name the cluster's data directory"
		[ ! -e "$target/postmaster.pid" ] || die "$target has a postmaster.pid: stop the server first (pg_ctlcluster 15 main stop, or scale it to 0)"
		local aside
		aside="$target.pre-restore-$(date -u +%Y%m%dT%H%M%SZ)"
		mv -- "$target" "$aside" || die "cannot move $target aside to $aside"
		mkdir -m 0700 -- "$target" || die "cannot create a new $target (the old data is in $aside)"
		log "the old data directory is kept as $aside; remove it once the restore is checked"
	fi
	log "restore of stanza $PGBACKREST_STANZA into $target started (target: ${time:-latest archived WAL})"
	run "pgbackrest restore" pgbackrest --pg1-path="$target" "${args[@]}" restore
	if [ -n "$confdir" ]; then
		cp -- "$confdir"/postgresql.conf "$confdir"/pg_hba.conf "$confdir"/pg_ident.conf "$target"/ ||
			die "cannot copy the configuration from $confdir"
	fi
	log "files restored in $(seconds "$(($(now_ms) - start))")"
	if [ -n "$inplace" ]; then
		log "start the server now: it replays WAL to ${time:-the end of the archive}, then promotes"
		return
	fi
	[ -f "$target/postgresql.conf" ] || die "$target has no postgresql.conf (Debian keeps it in /etc/postgresql): pass --conf-from"
	# hot_standby=off: the server accepts connections only once it has
	# replayed to the target and promoted, so the first accepted connection
	# means the restore is complete.
	run "start the scratch server" "$pgctl" --pgdata="$target" --log="$target.log" --no-wait start \
		--options="-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$(dirname -- "$target") -c hot_standby=off -c archive_mode=off"
	local deadline=$((SECONDS + ${BACKUP_RESTORE_TIMEOUT:-3600})) started=""
	until "${pgctl%/*}/pg_isready" -q -h 127.0.0.1 -p "$port"; do
		# The server writes postmaster.pid a moment after pg_ctl returns and
		# removes it when it stops: gone after it was there means it died.
		if [ -e "$target/postmaster.pid" ]; then
			started=1
		elif [ -n "$started" ] || ((SECONDS > deadline - ${BACKUP_RESTORE_TIMEOUT:-3600} + 60)); then
			die "the scratch server stopped during recovery: $(tool_error "$target.log")"
		fi
		((SECONDS < deadline)) || die "recovery did not finish within ${BACKUP_RESTORE_TIMEOUT:-3600}s (BACKUP_RESTORE_TIMEOUT); see $target.log"
		sleep 0.2
	done
	log "restored and started on 127.0.0.1:$port in $(seconds "$(($(now_ms) - start))"); stop it with: pg_ctl --pgdata=$target stop"
}

main "$@"
