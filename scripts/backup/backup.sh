#!/usr/bin/env bash
# backup.sh: back up the service's database, prove the backup restores, and
# record it where the status route's backup:age check sees it.
#
#   PostgreSQL (DATABASE_URL=postgres://...): pg_dump --format=custom
#   SQLite (no URL, APP_DATABASE_SQLITE_PATH): VACUUM INTO, then PRAGMA integrity_check
#
# Then, in order, each step only when the one before succeeded:
#   1. verify: restore the dump into a scratch copy (a scratch PostgreSQL
#      database, created then dropped) and compare schema version and row
#      counts with what was read from the source;
#   2. encrypt with age when BACKUP_AGE_RECIPIENTS is set;
#   3. move the file and then its manifest into BACKUP_DIR (a manifest means
#      the backup is complete);
#   4. run BACKUP_UPLOAD_CMD with the two paths;
#   5. record the backup as verified in the service's backups table;
#   6. prune old backups (BACKUP_KEEP_DAILY/WEEKLY/MONTHLY).
# Any failure: exit 1 and one line on stderr. docs/BACKUP.md has every setting.

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

readonly USAGE="backup.sh (configured by environment variables; see docs/BACKUP.md)"

# backup_postgres OUT: dumps the service database to OUT and sets
# M_SCHEMA_VERSION, M_ROW_COUNTS and M_TOOL from the same snapshot.
backup_postgres() {
	local out=$1 url snapshot
	need pg_dump psql
	pg_split "$PG_URL"
	url=$_PGS_URL
	if [ -n "$_PGS_PASS" ]; then
		local -x PGPASSWORD=$_PGS_PASS
	fi
	M_TOOL=$(pg_dump --version)

	# The service keeps writing during the dump. One psql session opens a
	# repeatable-read transaction and exports its snapshot; pg_dump imports
	# it, and the schema version and row counts are read in that same
	# transaction, so the manifest describes exactly the rows in the dump.
	# exec: the coproc is psql itself, with none of this script's traps.
	# SIGPIPE is ignored meanwhile: if psql dies, a write to it fails with an
	# error this script reports, instead of killing the script silently.
	trap '' PIPE
	coproc SNAP { exec psql -X -q -At -v ON_ERROR_STOP=1 --dbname="$url" 2>"$_RUN_DIR/snapshot.err"; }
	_SNAP_IN=${SNAP[1]}
	_SNAP_OUT=${SNAP[0]}
	snapshot=$(snap_query "open a snapshot of $DB_LABEL" "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;" "SELECT pg_export_snapshot();")
	M_SCHEMA_VERSION=$(snap_query "read the schema version of $DB_LABEL" "$PG_SCHEMA_SQL")
	[ "$M_SCHEMA_VERSION" != - ] ||
		die "$DB_LABEL has no applied migrations (no bun_migrations rows): is DATABASE_URL the service's database?"

	# --lock-wait-timeout: fail rather than queue behind a long exclusive lock
	# (a migration, say) and block the service's queries queued behind us.
	run "pg_dump of $DB_LABEL" pg_dump --format=custom --snapshot="$snapshot" \
		--lock-wait-timeout="${BACKUP_LOCK_WAIT_TIMEOUT:-60s}" --file="$out" --dbname="$url"

	M_ROW_COUNTS=$(snap_query "count rows in $DB_LABEL" "$PG_COUNTS_SQL")
	printf '%s\n' "COMMIT;" '\q' 1>&"$_SNAP_IN" 2>/dev/null || true
	wait "$SNAP_PID" || die "close the snapshot of $DB_LABEL: $(tool_error "$_RUN_DIR/snapshot.err")"
	trap - PIPE
}

# snap_query WHAT SQL...: sends SQL to the snapshot session and prints the one
# line it answers; a psql that died or hangs past BACKUP_QUERY_TIMEOUT
# (seconds, default 1800) dies with WHAT and psql's error.
snap_query() {
	local what=$1 line
	shift
	if ! printf '%s\n' "$@" 1>&"$_SNAP_IN" 2>/dev/null ||
		! read -r -t "${BACKUP_QUERY_TIMEOUT:-1800}" line <&"$_SNAP_OUT"; then
		die "$what: $(tool_error "$_RUN_DIR/snapshot.err")"
	fi
	printf '%s' "$line"
}

# backup_sqlite OUT: copies the service database to OUT and sets
# M_SCHEMA_VERSION, M_ROW_COUNTS and M_TOOL from the copy.
backup_sqlite() {
	local out=$1
	need sqlite3
	# sqlite3 would create a missing file; a backup of nothing is no backup.
	[ -f "$SQLITE_PATH" ] || die "$DB_LABEL does not exist"
	is_sqlite_file "$SQLITE_PATH" || die "$DB_LABEL is not a SQLite database"
	M_TOOL="sqlite3 $(sqlite3 --version | cut -d' ' -f1)"

	# VACUUM INTO writes a consistent, compacted copy from one read
	# transaction while the service keeps writing (WAL mode), and unlike the
	# .backup command it never restarts when a writer changes a page. The
	# read-only connection cannot change the source.
	sqlite "copy $DB_LABEL with VACUUM INTO" -readonly -cmd ".timeout ${BACKUP_SQLITE_TIMEOUT_MS:-10000}" \
		"$SQLITE_PATH" "VACUUM INTO $(sql_quote "$out");"
	sqlite_check "$out"
	M_SCHEMA_VERSION=$(sqlite_schema_version "$out")
	[ "$M_SCHEMA_VERSION" != - ] ||
		die "$DB_LABEL has no applied migrations (no bun_migrations rows): is it the service's database?"
	M_ROW_COUNTS=$(sqlite_counts "$out")
}

main() {
	case ${1:-} in
	-h | --help)
		echo "usage: $USAGE"
		exit 0
		;;
	"") ;;
	*) usage_error "$USAGE" ;;
	esac

	local dir=${BACKUP_DIR:-backups}
	mkdir -p -- "$dir" || die "cannot create BACKUP_DIR $dir"
	# Work files live in BACKUP_DIR, so the finished backup is moved into
	# place by a rename on the same file system, never copied half-way.
	init_run "$dir"
	resolve_database
	age_recipient_args
	if [ "${#AGE_ARGS[@]}" -gt 0 ]; then
		need age
	fi

	# One backup at a time per directory (cron and a person at the keyboard).
	if command -v flock >/dev/null 2>&1; then
		exec 9>>"$dir/.lock"
		flock -n 9 || die "another backup is running in $dir"
	else
		warn "flock not found: nothing stops two backups running at once"
	fi

	local started_at start_ms ext plain size
	started_at=$(date -u +%FT%TZ)
	start_ms=$(now_ms)
	M_KIND=$DB_KIND
	M_NAME="$NAME_PREFIX-$M_KIND-$(date -u -d "$started_at" +%Y%m%dT%H%M%SZ)"
	M_STARTED_AT=$started_at
	M_SOURCE=$DB_LABEL
	ext=pgdump
	if [ "$M_KIND" = sqlite ]; then ext=sqlite; fi
	if [ -e "$dir/$M_NAME.manifest.json" ]; then
		die "$M_NAME already exists in $dir: one backup a second at most"
	fi
	log "backup of $DB_LABEL started: $M_NAME"

	plain=$_RUN_DIR/$M_NAME.$ext
	"backup_$M_KIND" "$plain"
	M_COMPLETED_AT=$(date -u +%FT%TZ)
	M_DURATION_MS=$(($(now_ms) - start_ms))
	M_PLAIN_SHA256=$(sha256_of "$plain")
	size=$(size_of "$plain")
	log "dumped $DB_LABEL in $(seconds "$M_DURATION_MS"): $(human_size "$size"), schema version $M_SCHEMA_VERSION, rows $M_ROW_COUNTS"

	# The plaintext is verified before encryption, so the machine taking
	# backups needs only the public recipients, never the private key.
	verify_dump "$M_KIND" "$plain"
	log "verified: restored into a scratch copy in $(seconds "$VERIFY_MS"); schema version and row counts match"

	if [ "${#AGE_ARGS[@]}" -gt 0 ]; then
		M_FILE=$M_NAME.$ext.age
		M_ENCRYPTED=true
		run "encrypt with age" age --encrypt "${AGE_ARGS[@]}" -o "$_RUN_DIR/$M_FILE" -- "$plain"
		rm -f -- "$plain"
		log "encrypted to $((${#AGE_ARGS[@]} / 2)) age recipient(s)"
		# With the identity at hand, prove the recipients are the right ones.
		local identity=${BACKUP_AGE_IDENTITY:-}
		if [ -n "$identity" ]; then
			local sum
			decrypt "$_RUN_DIR/$M_FILE" "$_RUN_DIR/roundtrip" "$identity"
			sum=$(sha256_of "$_RUN_DIR/roundtrip")
			[ "$sum" = "$M_PLAIN_SHA256" ] || die "decrypting the new backup gave different bytes"
			rm -f -- "$_RUN_DIR/roundtrip"
			log "checked: BACKUP_AGE_IDENTITY decrypts the backup"
		fi
	else
		M_FILE=$M_NAME.$ext
		M_ENCRYPTED=false
	fi
	M_SHA256=$(sha256_of "$_RUN_DIR/$M_FILE")
	M_SIZE=$(size_of "$_RUN_DIR/$M_FILE")
	write_manifest "$_RUN_DIR/$M_NAME.manifest.json"
	mv -- "$_RUN_DIR/$M_FILE" "$dir/$M_FILE" || die "cannot move the backup into $dir"
	mv -- "$_RUN_DIR/$M_NAME.manifest.json" "$dir/$M_NAME.manifest.json" || die "cannot move the manifest into $dir"
	log "wrote $dir/$M_FILE ($(human_size "$M_SIZE"), sha256 $M_SHA256) and its manifest"

	if [ -n "${BACKUP_UPLOAD_CMD:-}" ]; then
		log "upload: running BACKUP_UPLOAD_CMD"
		run "upload hook (BACKUP_UPLOAD_CMD)" bash -c "$BACKUP_UPLOAD_CMD" upload-hook "$dir/$M_FILE" "$dir/$M_NAME.manifest.json"
		log "upload: done"
	fi

	record_backup "$(date -u +%FT%TZ)"
	prune_backups "$dir"
	log "backup complete: $M_FILE in $(seconds "$(($(now_ms) - start_ms))") (dump $(seconds "$M_DURATION_MS"), verify $(seconds "$VERIFY_MS"))"
}

main "$@"
