#!/usr/bin/env bash
# pgbackrest-backup.sh: one scheduled physical backup of the PostgreSQL
# cluster with pgBackRest, then a check of the whole repository.
#
#   pgbackrest-backup.sh full|diff|incr
#   pgbackrest-backup.sh check
#
# Run as the PostgreSQL OS user where pgBackRest reaches the cluster, with
# its configuration (/etc/pgbackrest/pgbackrest.conf or PGBACKREST_CONFIG;
# scripts/backup/pgbackrest/pgbackrest.conf is the template) and the stanza
# in PGBACKREST_STANZA (default notes). pgBackRest does the work: the stanza
# is created on the first run (stanza-create is idempotent), `backup`
# copies the cluster and expires what repo1-retention-* no longer keeps,
# `verify` re-reads every backup and WAL file and checks its checksum. WAL
# itself is archived continuously by the server's archive_command, not here;
# `check`, the archive job (every five minutes), switches the WAL segment and
# waits until it is in the repository: it proves archiving works and keeps
# an idle database's recovery point fresh for the backup:age check.
#
# After a verified backup it records it in the service's backups table, in
# the database DATABASE_URL names (APP_DATABASE_URL first, each also as
# _FILE; on the database host postgresql:///notes reaches it through the
# socket), where the status route's backup:age check finds the newest base
# backup that archived WAL can be replayed onto.

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

readonly USAGE="pgbackrest-backup.sh full|diff|incr|check"

main() {
	[ $# -eq 1 ] || usage_error "$USAGE"
	local type=$1 start label
	case $type in
	full | diff | incr | check) ;;
	-h | --help)
		echo "usage: $USAGE"
		exit 0
		;;
	*) usage_error "$USAGE" ;;
	esac
	init_run ""
	need pgbackrest
	export PGBACKREST_STANZA=${PGBACKREST_STANZA:-notes}
	start=$(now_ms)
	if [ "$type" = check ]; then
		run "pgbackrest check (is archive_command working?)" pgbackrest check
		log "archive check passed: the current WAL segment reached the repository in $(seconds "$(($(now_ms) - start))")"
		return
	fi
	resolve_database
	[ "$DB_KIND" = postgres ] || die "set DATABASE_URL to the service's PostgreSQL database (postgresql:///notes on its host): each backup is recorded there"
	run "pgbackrest stanza-create" pgbackrest stanza-create
	log "$type backup of stanza $PGBACKREST_STANZA started"
	run "pgbackrest backup --type=$type" pgbackrest --type="$type" backup
	pgbackrest --output=json info >"$_RUN_DIR/info.json" 2>"$_RUN_DIR/stderr" ||
		die "pgbackrest info: $(tool_error "$_RUN_DIR/stderr")"
	label=$(grep -o '"label":"[^"]*"' "$_RUN_DIR/info.json" | tail -n 1 | cut -d'"' -f4)
	[ -n "$label" ] || die "pgbackrest info lists no backup after the backup"
	run "pgbackrest verify" pgbackrest verify
	record_pgbackrest_backup "$_RUN_DIR/info.json" "$label"
	log "backup $label complete; repository verified; $(seconds "$(($(now_ms) - start))") in all"
}

main "$@"
