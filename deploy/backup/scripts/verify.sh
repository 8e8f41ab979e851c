#!/usr/bin/env bash
# verify.sh: prove a stored backup restores, then record it as verified.
#
#   verify.sh [--identity FILE] [--no-record] BACKUP
#
# BACKUP is a backup file or its manifest. Checks size and sha256 against the
# manifest, decrypts (age identity: --identity or BACKUP_AGE_IDENTITY),
# restores into a scratch copy (PostgreSQL: a scratch database on the server
# of BACKUP_VERIFY_URL or DATABASE_URL, created then dropped; SQLite: a copy
# checked with PRAGMA integrity_check), compares schema version and row counts
# with the manifest, and prints the restore time. Unless --no-record, it then
# marks the backup verified in the service's backups table. backup.sh already
# verifies every new backup; run this on stored or uploaded copies (a monthly
# restore drill with the real private key).

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

readonly USAGE="verify.sh [--identity FILE] [--no-record] BACKUP"

main() {
	local record=1 backup="" plain
	IDENTITY=${BACKUP_AGE_IDENTITY:-}
	while [ $# -gt 0 ]; do
		case $1 in
		--identity)
			[ $# -ge 2 ] || usage_error "$USAGE"
			IDENTITY=$2
			shift 2
			;;
		--identity=*)
			IDENTITY=${1#*=}
			shift
			;;
		--no-record)
			record=0
			shift
			;;
		-h | --help)
			echo "usage: $USAGE"
			exit 0
			;;
		-*) usage_error "$USAGE" ;;
		*)
			[ -z "$backup" ] || usage_error "$USAGE"
			backup=$1
			shift
			;;
		esac
	done
	[ -n "$backup" ] || usage_error "$USAGE"

	init_run ""
	resolve_database
	load_manifest "$backup"
	# Where the result will be recorded is checked first, not after a long restore.
	if [ "$record" = 1 ]; then
		if [ "$DB_KIND" != "$M_KIND" ]; then
			die "$M_NAME is a $M_KIND backup but the service database is $DB_LABEL: nowhere to record it; pass --no-record"
		fi
		if [ "$DB_KIND" = sqlite ] && [ ! -f "$SQLITE_PATH" ]; then
			die "cannot record the result: $DB_LABEL does not exist; set APP_DATABASE_SQLITE_PATH or pass --no-record"
		fi
	fi
	log "verify of $M_NAME (taken $M_COMPLETED_AT, schema version $M_SCHEMA_VERSION) started"
	check_backup_file
	plain=$(plaintext_of "$_RUN_DIR" "$IDENTITY")
	verify_dump "$M_KIND" "$plain"
	log "verified $M_NAME: restored in $(seconds "$VERIFY_MS"); schema version $M_SCHEMA_VERSION and row counts $M_ROW_COUNTS match"
	echo "restore time: $(seconds "$VERIFY_MS")"
	if [ "$record" = 1 ]; then
		record_backup "$(date -u +%FT%TZ)"
	fi
}

main "$@"
