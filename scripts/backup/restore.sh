#!/usr/bin/env bash
# restore.sh: restore a backup into a named target.
#
#   restore.sh --target NAME|URL|PATH [--force] [--identity FILE] BACKUP
#
# BACKUP is a backup file or its manifest. The target is, for a PostgreSQL
# backup, a database name on the server of DATABASE_URL or a postgres:// URL;
# for a SQLite backup, a file path.
#
# Nothing touches the target until the backup has passed every check: size
# and sha256 against the manifest, decryption with the age identity, and a
# complete restore into a temporary copy whose schema version and row counts
# match the manifest. Only then is the temporary copy swapped in. A non-empty
# target is replaced only with --force. Stop the service first: it must not
# write to a database being replaced.

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

readonly USAGE="restore.sh --target NAME|URL|PATH [--force] [--identity FILE] BACKUP"

# pg_rename_db SERVER_URL FROM TO renames database FROM to TO. A rename needs
# FROM to have no other sessions and, unlike DROP DATABASE, has no WITH
# (FORCE): so end them first, as DROP ... WITH (FORCE) does (the rename then
# waits up to 5 s for them to exit). It returns non-zero with the server's
# error in _PG_RENAME_ERROR, rather than dying: a failed swap must be undone.
_PG_RENAME_ERROR=""
pg_rename_db() {
	local server=$1 from=$2 to=$3
	pg_split "$(pg_admin_url "$server")"
	if [ -n "$_PGS_PASS" ]; then
		local -x PGPASSWORD=$_PGS_PASS
	fi
	if psql -X -q -At -v ON_ERROR_STOP=1 -v from="$from" --dbname="$_PGS_URL" >/dev/null 2>"$_RUN_DIR/stderr" <<SQL; then
SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :'from' AND pid <> pg_backend_pid();
ALTER DATABASE "$from" RENAME TO "$to";
SQL
		return 0
	fi
	_PG_RENAME_ERROR=$(tool_error "$_RUN_DIR/stderr")
	return 1
}

restore_postgres() {
	local target=$1 force=$2 plain server name tmp tmp_url start cleanup version counts tables=0 exists=0 aside suffix err
	need pg_restore psql
	if [[ $target == postgres://* || $target == postgresql://* ]]; then
		server=$target
		pg_split "$target"
		name=$_PGS_DB
	else
		[ "$DB_KIND" = postgres ] || die "--target $target is a database name, but DATABASE_URL names no PostgreSQL server: pass a postgres:// URL"
		server=$PG_URL
		name=$target
	fi
	valid_db_name "$name" || die "target database name $name is not a plain identifier (letters, digits, _)"

	if pg_db_exists "$server" "$name"; then
		exists=1
		tables=$(pg_table_count "$(pg_with_db "$server" "$name")" "target database $name")
		if [ "$tables" -gt 0 ] && [ "$force" != 1 ]; then
			die "target database $name is not empty ($tables tables): refusing to overwrite it without --force"
		fi
	fi

	check_backup_file
	plain=$(plaintext_of "$_RUN_DIR" "$IDENTITY")

	start=$(now_ms)
	tmp="${name:0:40}_restoring_$$"
	tmp_url=$(pg_with_db "$server" "$tmp")
	pg_create_db "$server" "$tmp"
	at_exit pg_drop_db "$server" "$tmp"
	cleanup=$_AT_EXIT_ID
	pg_restore_into "$tmp_url" "$plain" "temporary database $tmp"
	version=$(pg_schema_version "$tmp_url" "temporary database $tmp")
	counts=$(pg_counts "$tmp_url" "temporary database $tmp")
	compare_with_manifest "the restored database" "$version" "$counts"

	# The swap: the only moment the target changes, and it cannot half-happen
	# to the data (the restore above is complete and checked). As for SQLite,
	# the old target is kept, renamed aside, never dropped: a --force typed by
	# mistake can be undone. From here the temporary database is kept whatever
	# happens, and if it cannot take the target's name the old database moves
	# back, so the name always points at a complete database.
	cancel_exit "$cleanup"
	if [ "$exists" = 1 ]; then
		# <name>_pre_restore_<UTC time>, the name cut so the whole fits
		# PostgreSQL's 63-byte identifiers (names are ASCII: bytes = characters).
		suffix="_pre_restore_$(date -u +%Y%m%d%H%M%S)"
		aside="${name:0:$((63 - ${#suffix}))}$suffix"
		log "replacing database $name ($tables tables; --force)"
		pg_rename_db "$server" "$name" "$aside" ||
			die "move database $name aside to $aside (database $name is unchanged; the restored, checked copy is kept as database $tmp): $_PG_RENAME_ERROR"
		if ! pg_rename_db "$server" "$tmp" "$name"; then
			err=$_PG_RENAME_ERROR
			pg_rename_db "$server" "$aside" "$name" ||
				die "rename $tmp to $name: $err; moving the previous database back from $aside failed too: $_PG_RENAME_ERROR (no database is named $name: the previous one is $aside, the restored, checked copy is kept as database $tmp: rename one by hand)"
			die "rename $tmp to $name (database $name was moved back and is unchanged; the restored, checked copy is kept as database $tmp): $err"
		fi
		log "the previous database $name is kept as $aside; drop it once satisfied with the restore: dropdb $aside"
	else
		pg_rename_db "$server" "$tmp" "$name" ||
			die "rename $tmp to $name (the restored, checked copy is kept as database $tmp: rename it by hand): $_PG_RENAME_ERROR"
	fi
	RESTORE_MS=$(($(now_ms) - start))
	TARGET_LABEL="postgres database $name"
}

restore_sqlite() {
	local target=$1 force=$2 plain dir base tmp start version counts tables=0 aside
	need sqlite3
	case $target in
	*://*) die "--target for a SQLite backup is a file path, not a URL" ;;
	esac
	if [ -e "$target" ]; then
		[ -f "$target" ] || die "target $target is not a regular file"
		if [ -s "$target" ]; then
			if is_sqlite_file "$target"; then
				tables=$(sqlite_table_count "$target")
			else
				tables="unknown (not a SQLite file)"
			fi
		fi
		if [ "$tables" != 0 ] && [ "$force" != 1 ]; then
			die "target $target is not empty ($tables tables): refusing to overwrite it without --force"
		fi
	fi

	check_backup_file
	plain=$(plaintext_of "$_RUN_DIR" "$IDENTITY")

	start=$(now_ms)
	dir=$(dirname -- "$target")
	base=${target##*/}
	mkdir -p -- "$dir" || die "cannot create $dir"
	# Beside the target, so the swap below is one rename on one file system.
	tmp=$dir/.$base.restoring.$$
	at_exit rm -f -- "$tmp"
	cp -- "$plain" "$tmp" || die "cannot write $tmp"
	sqlite_check "$tmp"
	version=$(sqlite_schema_version "$tmp")
	counts=$(sqlite_counts "$tmp")
	compare_with_manifest "the restored file" "$version" "$counts"

	if [ -e "$target" ]; then
		# Keep what is replaced, with its WAL: a --force typed by mistake can be
		# undone, and a stale -wal left beside the new file would be replayed
		# into it by the next connection and corrupt it.
		aside="$target.pre-restore-$(date -u +%Y%m%dT%H%M%SZ)"
		local f
		for f in "" -wal -shm; do
			if [ -e "$target$f" ]; then
				mv -- "$target$f" "$aside$f" || die "cannot move $target$f aside"
			fi
		done
		log "moved the previous $target (and its -wal/-shm) aside to $aside"
	fi
	mv -- "$tmp" "$target" || die "cannot move the restored file to $target"
	RESTORE_MS=$(($(now_ms) - start))
	TARGET_LABEL="sqlite file $target"
}

main() {
	local target="" force=0 backup=""
	IDENTITY=${BACKUP_AGE_IDENTITY:-}
	while [ $# -gt 0 ]; do
		case $1 in
		--target)
			[ $# -ge 2 ] || usage_error "$USAGE"
			target=$2
			shift 2
			;;
		--target=*)
			target=${1#*=}
			shift
			;;
		--identity)
			[ $# -ge 2 ] || usage_error "$USAGE"
			IDENTITY=$2
			shift 2
			;;
		--identity=*)
			IDENTITY=${1#*=}
			shift
			;;
		--force)
			force=1
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
	if [ -z "$target" ] || [ -z "$backup" ]; then usage_error "$USAGE"; fi
	if [[ $target == postgres://* || $target == postgresql://* ]]; then
		pg_split "$target" # registers the target's password with mask()
	fi

	init_run ""
	resolve_database
	load_manifest "$backup"
	log "restore of $M_NAME (taken $M_COMPLETED_AT, schema version $M_SCHEMA_VERSION) into $(mask "$target") started"
	"restore_$M_KIND" "$target" "$force"
	log "restored $M_NAME into $TARGET_LABEL in $(seconds "$RESTORE_MS"): schema version $M_SCHEMA_VERSION, rows $M_ROW_COUNTS"
}

main "$@"
