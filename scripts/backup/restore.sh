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

restore_postgres() {
	local target=$1 force=$2 plain server name tmp tmp_url start cleanup version counts tables=0 exists=0
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
	# to the data (the restore above is complete and checked). From here the
	# temporary database is kept whatever happens: once the target is
	# dropped it is the only copy, and a failed rename must not be followed
	# by the clean-up dropping it too.
	cancel_exit "$cleanup"
	if [ "$exists" = 1 ]; then
		log "replacing database $name ($tables tables; --force)"
		psql_at "drop database $name (the restored, checked copy is kept as database $tmp)" \
			"$(pg_admin_url "$server")" <<<"DROP DATABASE IF EXISTS \"$name\" WITH (FORCE);"
	fi
	psql_at "rename $tmp to $name (the restored, checked copy is kept as database $tmp: rename it by hand)" \
		"$(pg_admin_url "$server")" <<<"ALTER DATABASE \"$tmp\" RENAME TO \"$name\";"
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
