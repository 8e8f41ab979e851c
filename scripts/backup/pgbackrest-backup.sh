#!/usr/bin/env bash
# pgbackrest-backup.sh: one scheduled physical backup of the PostgreSQL
# cluster with pgBackRest, then a check of the whole repository.
#
#   pgbackrest-backup.sh full|diff|incr
#
# Run as the PostgreSQL OS user where pgBackRest reaches the cluster, with
# its configuration (/etc/pgbackrest/pgbackrest.conf or PGBACKREST_CONFIG;
# scripts/backup/pgbackrest/pgbackrest.conf is the template) and the stanza
# in PGBACKREST_STANZA (default notes). pgBackRest does the work: the stanza
# is created on the first run (stanza-create is idempotent), `backup`
# copies the cluster and expires what repo1-retention-* no longer keeps,
# `verify` re-reads every backup and WAL file and checks its checksum. WAL
# itself is archived continuously by the server's archive_command, not here.

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

readonly USAGE="pgbackrest-backup.sh full|diff|incr"

main() {
	[ $# -eq 1 ] || usage_error "$USAGE"
	local type=$1 start label
	case $type in
	full | diff | incr) ;;
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
	run "pgbackrest stanza-create" pgbackrest stanza-create
	log "$type backup of stanza $PGBACKREST_STANZA started"
	run "pgbackrest backup --type=$type" pgbackrest --type="$type" backup
	label=$(pgbackrest --output=json info 2>"$_RUN_DIR/stderr" | grep -o '"label":"[^"]*"' | tail -n 1 | cut -d'"' -f4) ||
		die "pgbackrest info: $(tool_error "$_RUN_DIR/stderr")"
	run "pgbackrest verify" pgbackrest verify
	log "backup $label complete; repository verified; $(seconds "$(($(now_ms) - start))") in all"
}

main "$@"
