# shellcheck shell=bash
# lib.sh: what backup.sh, verify.sh, restore.sh and prune.sh share. Sourced,
# never run. docs/BACKUP.md is the manual; this file explains the why.
#
# Conventions every script keeps:
#   - progress goes to stdout and, through logger(1), to syslog;
#   - any failure ends the script with exit 1 and ONE line on stderr that
#     starts with "notes-api-backup: FAILED:", also sent to syslog;
#   - the database password never appears in a log line, an error or the
#     process list: it travels in PGPASSWORD and mask() scrubs every message;
#   - nothing reads config.yaml: the scripts take the service's environment
#     variables (DATABASE_URL, APP_DATABASE_SQLITE_PATH, ...) and BACKUP_*.

set -Eeuo pipefail
shopt -s inherit_errexit
# Every time the scripts print or put in a name is UTC.
export TZ=UTC
# Backups, manifests and decrypted dumps are for this user only.
umask 077

readonly LOG_TAG=notes-api-backup
# Backup names are <prefix>-<kind>-<UTC timestamp>, e.g.
# notes-api-postgres-20261125T020000Z; retention reads the timestamp back.
readonly NAME_PREFIX=notes-api
readonly NAME_RE='^(notes-api-(postgres|sqlite)-([0-9]{8})T([0-9]{6})Z)\.'
readonly MANIFEST_FORMAT=1

# ----------------------------------------------------------------------------
# Run directory, clean-up and the one-line failure

_SECRETS=()    # strings mask() replaces; filled as URLs are parsed
_AT_EXIT=()    # clean-up commands, run newest first when the script ends
_AT_EXIT_ID=0
_EXITING=""
_SYSLOG=0
_RUN_DIR=""

# init_run [DIR] sets up logging and the private run directory,
# in DIR or else BACKUP_TMPDIR, TMPDIR or /tmp. Decrypted dumps are written
# there, so it is created mode 0700 and removed at exit.
#
# The run holds a lock on the directory's .lock file (fd 8, inherited by the
# tools it starts) for as long as it lives. A run killed with SIGKILL cannot
# clean up, so every run first removes the directories in base whose lock
# nobody holds: a killed run's leftovers last until the next run, never
# longer, and a live run's directory is never touched.
init_run() {
	local base=${1:-${BACKUP_TMPDIR:-${TMPDIR:-/tmp}}}
	_init_syslog
	mkdir -p -- "$base" || die "cannot create the work directory $base"
	_RUN_DIR=$(mktemp -d "$base/.notes-api-backup.XXXXXX") || die "cannot create a work directory in $base"
	if command -v flock >/dev/null 2>&1; then
		exec 8>"$_RUN_DIR/.lock"
		flock -n 8 || die "cannot lock the work directory $_RUN_DIR"
		sweep_work_dirs "$base"
	fi
}

# sweep_work_dirs BASE removes the run directories of dead runs: their lock
# is free, or (a run killed between mktemp and the lock) they have no lock
# file and are older than a minute. Scratch databases such a run created are
# dropped by sweep_scratch_dbs, not here.
sweep_work_dirs() {
	local d
	for d in "$1"/.notes-api-backup.*; do
		if [ ! -d "$d" ] || [ "$d" = "$_RUN_DIR" ]; then
			continue
		fi
		if [ -e "$d/.lock" ]; then
			flock -n "$d/.lock" true 2>/dev/null || continue
		elif [ -z "$(find "$d" -maxdepth 0 -mmin +1 2>/dev/null)" ]; then
			continue
		fi
		rm -rf -- "$d" && log "removed the work directory of a run that was killed: $d"
	done
}

# at_exit registers a command (words, not a string to eval) to run at exit
# and sets _AT_EXIT_ID, which cancel_exit takes once the work is done.
at_exit() {
	local q
	printf -v q '%q ' "$@"
	_AT_EXIT_ID=${#_AT_EXIT[@]}
	_AT_EXIT+=("$q")
}

cancel_exit() {
	_AT_EXIT[$1]=""
}

# _on_exit runs the clean-ups, each in a subshell that cannot change the exit
# status or print a second failure line.
_on_exit() {
	local rc=$? i
	trap - ERR
	set +e
	_EXITING=1
	_stop_child
	for ((i = ${#_AT_EXIT[@]} - 1; i >= 0; i--)); do
		if [ -n "${_AT_EXIT[i]}" ]; then
			(eval "${_AT_EXIT[i]}") >/dev/null 2>&1
		fi
	done
	[ -n "$_RUN_DIR" ] && rm -rf -- "$_RUN_DIR"
	exit "$rc"
}

# _on_error is the safety net for a command that failed without die (set -e
# would otherwise exit silently). A die in a subshell leaves a marker, so the
# parent that sees the subshell fail does not print a second line.
_on_error() {
	local rc=$1 line=$2 cmd=$3
	if [ -n "$_RUN_DIR" ] && [ -e "$_RUN_DIR/failed" ]; then
		exit "$rc"
	fi
	die "unexpected error (exit $rc) at ${BASH_SOURCE[1]:-?}:$line: $cmd"
}

# die prints the failure line on stderr (and to syslog) and exits 1.
die() {
	local msg
	if [ -n "${_EXITING:-}" ]; then
		exit 1 # a clean-up failed after the script's outcome was decided
	fi
	mask_into msg "$*"
	if [ -n "$_RUN_DIR" ] && [ -d "$_RUN_DIR" ]; then
		: >"$_RUN_DIR/failed"
	fi
	printf '%s: FAILED: %s\n' "$LOG_TAG" "$msg" >&2
	_syslog err "FAILED: $msg"
	exit 1
}

# usage_error is die for a wrong command line: exit 2, like the service.
usage_error() {
	printf '%s: usage: %s\n' "$LOG_TAG" "$*" >&2
	exit 2
}

trap _on_exit EXIT
trap '_on_error "$?" "$LINENO" "$BASH_COMMAND"' ERR
# SIGTERM is how Kubernetes (activeDeadlineSeconds) and systemd stop a run,
# SIGINT how a person does: the clean-ups still drop scratch databases and
# remove work files. run() waits for its tool in the background, so the
# signal is handled at once, not when a long pg_restore finishes, and the
# tool is stopped first (systemd and Kubernetes SIGKILL soon after).
trap 'die "interrupted (SIGINT)"' INT
trap 'die "interrupted (SIGTERM)"' TERM

_CHILD=""
_stop_child() {
	if [ -n "$_CHILD" ]; then
		kill -TERM "$_CHILD" 2>/dev/null
		wait "$_CHILD" 2>/dev/null
		_CHILD=""
	fi
}

# ----------------------------------------------------------------------------
# Logging: stdout and syslog

_init_syslog() {
	if [ "${BACKUP_SYSLOG:-1}" = 0 ]; then
		return
	fi
	if ! command -v logger >/dev/null 2>&1; then
		printf '%s %s: warning: logger not found; logging to stdout only\n' "$(date -u +%FT%TZ)" "$LOG_TAG"
		return
	fi
	_SYSLOG=1
}

_syslog() {
	local prio=$1 msg=$2
	[ "$_SYSLOG" = 1 ] || return 0
	if ! logger -t "$LOG_TAG" --id=$$ -p "user.$prio" -- "$msg" 2>/dev/null; then
		# No /dev/log, as in most containers: say so once, keep stdout.
		_SYSLOG=0
		printf '%s %s: warning: syslog is unavailable (logger failed); logging to stdout only\n' "$(date -u +%FT%TZ)" "$LOG_TAG"
	fi
}

# Builtins only (no date, no subshell): prune logs a line per removed backup.
log() {
	local msg ts
	mask_into msg "$*"
	printf -v ts '%(%Y-%m-%dT%H:%M:%SZ)T' -1
	printf '%s %s: %s\n' "$ts" "$LOG_TAG" "$msg"
	_syslog info "$msg"
}

warn() {
	local msg ts
	mask_into msg "$*"
	printf -v ts '%(%Y-%m-%dT%H:%M:%SZ)T' -1
	printf '%s %s: warning: %s\n' "$ts" "$LOG_TAG" "$msg"
	_syslog warning "$msg"
}

# mask_into VAR TEXT sets VAR to TEXT with every known secret replaced by xxxxx.
mask_into() {
	local -n _out=$1
	local _s=$2 _secret
	for _secret in "${_SECRETS[@]}"; do
		if [ -n "$_secret" ]; then
			_s=${_s//"$_secret"/xxxxx}
		fi
	done
	_out=$_s
}

# mask prints $1 masked.
mask() {
	local m
	mask_into m "$1"
	printf '%s' "$m"
}

# ----------------------------------------------------------------------------
# Small helpers

need() {
	local tool
	for tool in "$@"; do
		command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed (Debian: $(package_of "$tool"))"
	done
}

package_of() {
	case $1 in
	pg_dump | pg_restore | psql) echo postgresql-client ;;
	sqlite3) echo sqlite3 ;;
	age) echo age ;;
	*) echo "$1" ;;
	esac
}

# run WHAT CMD...: runs CMD with its stderr kept aside; on failure dies with
# WHAT and the tool's own error line, masked.
run() {
	local what=$1 rc=0
	shift
	# <&0: an asynchronous command would otherwise read /dev/null, not the
	# SQL its caller feeds in.
	"$@" <&0 2>"$_RUN_DIR/stderr" &
	_CHILD=$!
	wait "$_CHILD" || rc=$?
	_CHILD=""
	if [ "$rc" != 0 ]; then
		die "$what: $(tool_error "$_RUN_DIR/stderr")"
	fi
}

# tool_error picks the line of a tool's stderr that says what went wrong: the
# first ERROR/FATAL/error line (psql follows it with LINE and caret lines), or
# the last line.
tool_error() {
	local line
	line=$(grep -m1 -E '(ERROR|FATAL|error|fatal):' "$1" || true)
	if [ -z "$line" ]; then
		line=$(grep -v '^[[:space:]]*$' "$1" | tail -n 1 || true)
	fi
	line=${line//$'\t'/ }
	printf '%s' "${line:-no error message}"
}

now_ms() {
	local t=${EPOCHREALTIME//[!0-9]/}
	printf '%s' "$((t / 1000))"
}

# seconds formats milliseconds as 1.234s.
seconds() {
	printf '%d.%03ds' "$(($1 / 1000))" "$(($1 % 1000))"
}

human_size() {
	local b=$1
	if ((b >= 1073741824)); then
		printf '%d.%d GiB' "$((b / 1073741824))" "$((b % 1073741824 * 10 / 1073741824))"
	elif ((b >= 1048576)); then
		printf '%d.%d MiB' "$((b / 1048576))" "$((b % 1048576 * 10 / 1048576))"
	elif ((b >= 1024)); then
		printf '%d.%d KiB' "$((b / 1024))" "$((b % 1024 * 10 / 1024))"
	else
		printf '%d B' "$b"
	fi
}

sha256_of() {
	local sum
	sum=$(sha256sum -- "$1") || die "cannot read $1"
	printf '%s' "${sum%% *}"
}

size_of() {
	stat -c %s -- "$1" || die "cannot read $1"
}

# sql_quote makes a SQL string literal (standard SQL: double the quotes).
sql_quote() {
	printf "'%s'" "${1//\'/\'\'}"
}

# urldecode decodes %XX escapes, as libpq does for URL parts.
urldecode() {
	printf '%b' "${1//%/\\x}"
}

# secret_value NAME prints $NAME, or the content of the file named by
# $NAME_FILE (how Kubernetes and systemd credentials mount secrets). Both set
# is an error, as in the service's configuration.
secret_value() {
	local name=$1 file_var="${1}_FILE" value="" path
	value=${!name:-}
	path=${!file_var:-}
	if [ -n "$value" ] && [ -n "$path" ]; then
		die "both $name and $file_var are set: set one"
	fi
	if [ -n "$path" ]; then
		[ -r "$path" ] || die "$file_var names $path, which cannot be read"
		value=$(<"$path")
	fi
	printf '%s' "$value"
}

# ----------------------------------------------------------------------------
# Which database: the service's own rules (internal/config, internal/database)

DB_KIND=""     # postgres or sqlite
DB_LABEL=""    # what to call it in logs: a database name or a file, no secrets
SQLITE_PATH="" # sqlite: the database file
PG_URL=""      # postgres: the service's URL, password included: never log it

# resolve_database reads the service's database settings: APP_DATABASE_URL,
# then DATABASE_URL (each also as _FILE); empty means SQLite at
# APP_DATABASE_SQLITE_PATH (default data/notes.db).
resolve_database() {
	local url
	url=$(secret_value APP_DATABASE_URL)
	if [ -z "$url" ]; then
		url=$(secret_value DATABASE_URL)
	fi
	case $url in
	postgres://* | postgresql://*)
		DB_KIND=postgres
		PG_URL=$url
		pg_split "$url"
		DB_LABEL="postgres database $_PGS_DB"
		;;
	sqlite:* | file:*)
		DB_KIND=sqlite
		SQLITE_PATH=${url#*:}
		SQLITE_PATH=${SQLITE_PATH#//}
		if [[ $SQLITE_PATH == localhost/* ]]; then
			SQLITE_PATH=${SQLITE_PATH#localhost}
		fi
		DB_LABEL="sqlite file $SQLITE_PATH"
		;;
	"")
		DB_KIND=sqlite
		SQLITE_PATH=${APP_DATABASE_SQLITE_PATH:-data/notes.db}
		DB_LABEL="sqlite file $SQLITE_PATH"
		;;
	*)
		# Never echo the value: it may hold a password.
		die "the database URL has an unsupported scheme; want postgres://, postgresql://, sqlite:// or file:"
		;;
	esac
}

# pg_split URL sets _PGS_URL (the URL without its password), _PGS_PASS (the
# password, decoded; may be empty) and _PGS_DB, and adds the password to the
# strings mask() hides. The password then travels in PGPASSWORD, in no command
# line that ps shows. The URL must be one libpq accepts: pgx-only query
# parameters are not.
pg_split() {
	local url=$1 scheme rest auth path query="" userinfo user="" pass="" hostport param params others=()
	scheme=${url%%://*}
	rest=${url#*://}
	auth=${rest%%[/?]*}
	rest=${rest:${#auth}}
	path=${rest%%\?*}
	if [[ $rest == *\?* ]]; then
		query=${rest#*\?}
	fi
	hostport=$auth
	if [[ $auth == *@* ]]; then
		userinfo=${auth%@*}
		hostport=${auth##*@}
		user=${userinfo%%:*}
		if [[ $userinfo == *:* ]]; then
			pass=${userinfo#*:}
		fi
	fi
	if [ -n "$query" ]; then
		IFS='&' read -ra params <<<"$query"
		for param in "${params[@]}"; do
			case $param in
			password=*) pass=${param#password=} ;;
			*) others+=("$param") ;;
			esac
		done
		query=$(IFS='&' && printf "%s" "${others[*]}")
	fi
	_PGS_PASS=""
	if [ -n "$pass" ]; then
		_PGS_PASS=$(urldecode "$pass")
		_SECRETS+=("$pass" "$_PGS_PASS")
	fi
	_PGS_DB=$(urldecode "${path#/}")
	_PGS_URL="$scheme://${user:+$user@}$hostport/${path#/}${query:+?$query}"
}

# pg_with_db URL NAME prints URL with its database replaced by NAME.
pg_with_db() {
	local url=$1 scheme rest auth query=""
	scheme=${url%%://*}
	rest=${url#*://}
	auth=${rest%%[/?]*}
	rest=${rest:${#auth}}
	if [[ $rest == *\?* ]]; then
		query="?${rest#*\?}"
	fi
	printf '%s://%s/%s%s' "$scheme" "$auth" "$2" "$query"
}

# pg_admin_url URL: where CREATE and DROP DATABASE run, the server's
# maintenance database (BACKUP_PG_ADMIN_DB, default postgres).
pg_admin_url() {
	pg_with_db "$1" "${BACKUP_PG_ADMIN_DB:-postgres}"
}

valid_db_name() {
	[[ $1 =~ ^[A-Za-z_][A-Za-z0-9_]{0,62}$ ]]
}

# pg WHAT URL TOOL ARGS...: runs a PostgreSQL client tool on URL's database
# with the password in PGPASSWORD, dying with WHAT on failure.
pg() {
	local what=$1 url=$2 tool=$3
	shift 3
	pg_split "$url"
	if [ -n "$_PGS_PASS" ]; then
		local -x PGPASSWORD=$_PGS_PASS
	fi
	run "$what" "$tool" --dbname="$_PGS_URL" "$@"
}

# psql_at WHAT URL [ARGS]: psql for scripts (no .psqlrc, unaligned, tuples
# only, stop at the first error), SQL on stdin.
psql_at() {
	local what=$1 url=$2
	shift 2
	pg "$what" "$url" psql -X -q -At -v ON_ERROR_STOP=1 "$@"
}

# The two queries the manifest and the verification share. Row counts are a
# jsonb object, so the same tables and counts always print the same text;
# query_to_xml runs one count(*) per table inside a single statement.
readonly PG_COUNTS_SQL="SELECT coalesce(jsonb_object_agg(n.nspname || '.' || c.relname,
    (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I.%I', n.nspname, c.relname), false, true, '')))[1]::text::bigint), '{}')
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp)';"
# The schema version is the newest migration bun recorded as applied.
readonly PG_SCHEMA_SQL="SELECT CASE WHEN to_regclass('bun_migrations') IS NULL THEN '-' ELSE (SELECT coalesce(max(name), '-') FROM bun_migrations) END;"
readonly PG_TABLES_SQL="SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp)';"

pg_counts() { psql_at "count rows in $2" "$1" <<<"$PG_COUNTS_SQL"; }
pg_schema_version() { psql_at "read the schema version of $2" "$1" <<<"$PG_SCHEMA_SQL"; }
pg_table_count() { psql_at "inspect $2" "$1" <<<"$PG_TABLES_SQL"; }

# pg_db_exists SERVER_URL NAME
pg_db_exists() {
	local found
	found=$(psql_at "look up database $2" "$(pg_admin_url "$1")" -v name="$2" <<<"SELECT 1 FROM pg_database WHERE datname = :'name';")
	[ "$found" = 1 ]
}

# Names are checked by valid_db_name or generated, so quoting them is enough.
pg_create_db() { psql_at "create database $2" "$(pg_admin_url "$1")" <<<"CREATE DATABASE \"$2\";"; }
# WITH (FORCE) ends the database's other sessions first (PostgreSQL 13+).
pg_drop_db() { psql_at "drop database $2" "$(pg_admin_url "$1")" <<<"DROP DATABASE IF EXISTS \"$2\" WITH (FORCE);"; }

# pg_restore_into URL DUMP LABEL: the whole dump in one transaction, so a failure
# leaves the database as it was. Objects get the restoring role as owner and
# no grants from the source: a restore must not depend on the source's roles.
pg_restore_into() {
	pg "pg_restore into $3" "$1" pg_restore --exit-on-error --single-transaction \
		--no-owner --no-privileges "$2"
}

# ----------------------------------------------------------------------------
# SQLite

sqlite() {
	local what=$1
	shift
	run "$what" sqlite3 -bail -batch -noheader -list "$@"
}

# sqlite_counts FILE: {"table":rows,...} in table-name order.
sqlite_counts() {
	local file=$1 tables name args=()
	tables=$(sqlite "list tables of $file" -readonly "$file" \
		"SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name;")
	while IFS= read -r name; do
		[ -n "$name" ] || continue
		args+=("$(sql_quote "$name"), (SELECT count(*) FROM \"${name//\"/\"\"}\")")
	done <<<"$tables"
	local IFS=,
	sqlite "count rows in $file" -readonly "$file" "SELECT json_object(${args[*]});"
}

sqlite_schema_version() {
	sqlite "read the schema version of $1" -readonly "$1" \
		"SELECT CASE WHEN EXISTS (SELECT 1 FROM sqlite_schema WHERE name = 'bun_migrations')
		   THEN (SELECT coalesce(max(name), '-') FROM bun_migrations) ELSE '-' END;"
}

# sqlite_check FILE: PRAGMA integrity_check reads every page and index.
sqlite_check() {
	local result
	result=$(sqlite "integrity check of $1" -readonly "$1" "PRAGMA integrity_check;")
	[ "$result" = ok ] || die "integrity check of $1 failed: ${result%%$'\n'*}"
}

sqlite_table_count() {
	sqlite "inspect $1" -readonly "$1" "SELECT count(*) FROM sqlite_schema WHERE type = 'table';"
}

is_sqlite_file() {
	local head
	head=$(head -c 15 -- "$1" 2>/dev/null || true)
	[ "$head" = "SQLite format 3" ]
}

# ----------------------------------------------------------------------------
# age encryption

# age_recipient_args fills AGE_ARGS from BACKUP_AGE_RECIPIENTS (age1... keys,
# separated by spaces or commas) and BACKUP_AGE_RECIPIENTS_FILE (one a line).
# Recipients are public keys: they can live in config, unlike the identity.
AGE_ARGS=()
age_recipient_args() {
	local r list=${BACKUP_AGE_RECIPIENTS:-}
	AGE_ARGS=()
	for r in ${list//,/ }; do
		AGE_ARGS+=(-r "$r")
	done
	if [ -n "${BACKUP_AGE_RECIPIENTS_FILE:-}" ]; then
		[ -r "$BACKUP_AGE_RECIPIENTS_FILE" ] || die "BACKUP_AGE_RECIPIENTS_FILE names $BACKUP_AGE_RECIPIENTS_FILE, which cannot be read"
		AGE_ARGS+=(-R "$BACKUP_AGE_RECIPIENTS_FILE")
	fi
}

# decrypt IN OUT IDENTITY
decrypt() {
	local in=$1 out=$2 identity=$3
	[ -n "$identity" ] || die "${in##*/} is encrypted: pass --identity FILE or set BACKUP_AGE_IDENTITY"
	[ -r "$identity" ] || die "the age identity $identity cannot be read"
	need age
	if ! age --decrypt -i "$identity" -o "$out" -- "$in" 2>"$_RUN_DIR/stderr"; then
		rm -f -- "$out"
		if grep -q 'no identity matched' "$_RUN_DIR/stderr"; then
			die "decrypt ${in##*/}: the age identity $identity does not match this backup's recipients (wrong key)"
		fi
		die "decrypt ${in##*/}: $(tool_error "$_RUN_DIR/stderr")"
	fi
}

# ----------------------------------------------------------------------------
# Manifests: <name>.manifest.json beside the backup file
#
# JSON, for people and for jq, but written one key a line in a fixed order so
# that these scripts read it with bash alone: the postgres image the CronJob
# runs has no jq. Values never contain quotes (names, hex, numbers, times).

# write_manifest PATH: from the M_* variables.
write_manifest() {
	cat >"$1" <<EOF
{
  "format": $MANIFEST_FORMAT,
  "name": "$M_NAME",
  "kind": "$M_KIND",
  "file": "$M_FILE",
  "encrypted": $M_ENCRYPTED,
  "sha256": "$M_SHA256",
  "size_bytes": $M_SIZE,
  "plaintext_sha256": "$M_PLAIN_SHA256",
  "started_at": "$M_STARTED_AT",
  "completed_at": "$M_COMPLETED_AT",
  "duration_ms": $M_DURATION_MS,
  "schema_version": "$M_SCHEMA_VERSION",
  "source": "$M_SOURCE",
  "tool": "$M_TOOL",
  "row_counts": $M_ROW_COUNTS
}
EOF
}

# manifest_get FILE KEY prints the value of KEY (strings without quotes).
manifest_get() {
	local file=$1 key=$2 line value re
	re="^  \"$key\": (.*)$"
	while IFS= read -r line; do
		if [[ $line =~ $re ]]; then
			value=${BASH_REMATCH[1]}
			[ "$key" = row_counts ] || value=${value%,}
			if [[ $value == \"*\" ]]; then
				value=${value:1:${#value}-2}
			fi
			printf '%s' "$value"
			return 0
		fi
	done <"$file"
	die "manifest ${file##*/} has no \"$key\": not a manifest these scripts wrote"
}

# load_manifest ARG: ARG is a backup file or its manifest. Sets M_* and
# BACKUP_FILE, checking that both exist and agree.
load_manifest() {
	local arg=$1 dir base name
	[ -e "$arg" ] || die "$arg does not exist"
	dir=$(dirname -- "$arg")
	base=${arg##*/}
	[[ $base =~ $NAME_RE ]] || die "$base is not a backup these scripts wrote (want $NAME_PREFIX-<kind>-<YYYYMMDDTHHMMSSZ>.*)"
	name=${BASH_REMATCH[1]}
	MANIFEST=$dir/$name.manifest.json
	[ -f "$MANIFEST" ] || die "no manifest ${MANIFEST##*/} beside the backup: it is incomplete or was copied without it"
	M_FORMAT=$(manifest_get "$MANIFEST" format)
	[ "$M_FORMAT" = "$MANIFEST_FORMAT" ] || die "manifest ${MANIFEST##*/} has format $M_FORMAT; these scripts read $MANIFEST_FORMAT"
	M_NAME=$(manifest_get "$MANIFEST" name)
	M_KIND=$(manifest_get "$MANIFEST" kind)
	M_FILE=$(manifest_get "$MANIFEST" file)
	M_ENCRYPTED=$(manifest_get "$MANIFEST" encrypted)
	M_SHA256=$(manifest_get "$MANIFEST" sha256)
	M_SIZE=$(manifest_get "$MANIFEST" size_bytes)
	M_PLAIN_SHA256=$(manifest_get "$MANIFEST" plaintext_sha256)
	M_STARTED_AT=$(manifest_get "$MANIFEST" started_at)
	M_COMPLETED_AT=$(manifest_get "$MANIFEST" completed_at)
	M_DURATION_MS=$(manifest_get "$MANIFEST" duration_ms)
	M_SCHEMA_VERSION=$(manifest_get "$MANIFEST" schema_version)
	M_ROW_COUNTS=$(manifest_get "$MANIFEST" row_counts)
	[ "$M_NAME" = "$name" ] || die "manifest ${MANIFEST##*/} names $M_NAME, not $name"
	[[ $M_FILE == "$name".* && $M_FILE != */* ]] || die "manifest ${MANIFEST##*/} names an unexpected file $M_FILE"
	[[ $M_SIZE =~ ^[0-9]+$ && $M_DURATION_MS =~ ^[0-9]+$ ]] || die "manifest ${MANIFEST##*/} is damaged: size_bytes or duration_ms is not a number"
	BACKUP_FILE=$dir/$M_FILE
	[ -f "$BACKUP_FILE" ] || die "backup file $M_FILE named by the manifest is missing"
}

# check_backup_file: the stored file has the manifest's size and sha256.
# Run before anything else reads it: a truncated or corrupted copy stops here.
check_backup_file() {
	local size sum
	size=$(size_of "$BACKUP_FILE")
	if [ "$size" != "$M_SIZE" ]; then
		die "${BACKUP_FILE##*/} is $size bytes but the manifest says $M_SIZE: truncated or incomplete copy; refusing to use it"
	fi
	sum=$(sha256_of "$BACKUP_FILE")
	if [ "$sum" != "$M_SHA256" ]; then
		die "${BACKUP_FILE##*/} does not match its manifest (sha256 ${sum:0:12}..., manifest ${M_SHA256:0:12}...): corrupted; refusing to use it"
	fi
}

# plaintext_of DIR IDENTITY: prints the path of the checked plaintext dump,
# decrypting into DIR when the backup is encrypted.
plaintext_of() {
	local dir=$1 identity=$2 out sum
	if [ "$M_ENCRYPTED" = true ]; then
		out=$dir/${M_FILE%.age}
		decrypt "$BACKUP_FILE" "$out" "$identity"
		sum=$(sha256_of "$out")
		[ "$sum" = "$M_PLAIN_SHA256" ] || die "decrypted ${M_FILE} does not match the manifest's plaintext_sha256"
		printf '%s' "$out"
	else
		printf '%s' "$BACKUP_FILE"
	fi
}

# compare_with_manifest WHAT VERSION COUNTS: a restored copy must have the
# manifest's schema version and exactly its row counts.
compare_with_manifest() {
	local what=$1 version=$2 counts=$3
	if [ "$version" != "$M_SCHEMA_VERSION" ]; then
		die "$what has schema version $version; the manifest says $M_SCHEMA_VERSION"
	fi
	if [ "$counts" != "$M_ROW_COUNTS" ]; then
		die "$what row counts $counts differ from the manifest's $M_ROW_COUNTS"
	fi
}

# ----------------------------------------------------------------------------
# Restoring a checked plaintext dump into a scratch copy and comparing

# verify_dump KIND PLAINTEXT: restores into a scratch copy (PostgreSQL: a
# database created, then dropped; SQLite: a copy checked with PRAGMA
# integrity_check) and compares it with the manifest. Sets VERIFY_MS.
verify_dump() {
	local kind=$1 plain=$2 start version counts
	start=$(now_ms)
	case $kind in
	postgres)
		local server scratch url cleanup
		# BACKUP_VERIFY_URL keeps restore drills off the production server.
		server=$(secret_value BACKUP_VERIFY_URL)
		if [ -z "$server" ]; then
			[ "$DB_KIND" = postgres ] || die "verifying a postgres backup needs a server: set DATABASE_URL or BACKUP_VERIFY_URL"
			server=$PG_URL
		fi
		pg_split "$server" # registers its password with mask()
		need pg_restore psql
		# BACKUP_SCRATCH_PREFIX names the drill's database, so concurrent runs
		# (or tests) can tell their scratch databases apart.
		scratch="${BACKUP_SCRATCH_PREFIX:-notes_verify}_$(date -u +%Y%m%d%H%M%S)_$$"
		url=$(pg_with_db "$server" "$scratch")
		sweep_scratch_dbs "$server"
		hold_scratch_lock "$server" "$scratch"
		pg_create_db "$server" "$scratch"
		at_exit pg_drop_db "$server" "$scratch"
		cleanup=$_AT_EXIT_ID
		pg_restore_into "$url" "$plain" "scratch database $scratch"
		version=$(pg_schema_version "$url" "scratch database $scratch")
		counts=$(pg_counts "$url" "scratch database $scratch")
		pg_drop_db "$server" "$scratch"
		cancel_exit "$cleanup"
		release_scratch_lock
		;;
	sqlite)
		# Checked where it lies, read-only: no second copy on disk.
		need sqlite3
		sqlite_check "$plain"
		version=$(sqlite_schema_version "$plain")
		counts=$(sqlite_counts "$plain")
		;;
	esac
	# shellcheck disable=SC2034 # read by the scripts that source this file
	VERIFY_MS=$(($(now_ms) - start))
	compare_with_manifest "the restored copy" "$version" "$counts"
}

# ----------------------------------------------------------------------------
# Scratch databases that outlive a killed run
#
# A run that creates a scratch database first takes a session-level advisory
# lock named after it, in a psql session that lives as long as the script
# (a coproc: when the script dies, even by SIGKILL, psql reads end-of-file,
# exits, and the server releases the lock). Any run on the same server later
# drops every database of the scratch naming pattern whose lock it can take:
# its creator is gone. Live drills, from this machine or another, keep theirs.

# hold_scratch_lock SERVER_URL NAME
hold_scratch_lock() {
	local line
	pg_split "$(pg_admin_url "$1")"
	if [ -n "$_PGS_PASS" ]; then
		local -x PGPASSWORD=$_PGS_PASS
	fi
	trap '' PIPE
	coproc SCRATCH_LOCK { exec psql -X -q -At -v ON_ERROR_STOP=1 --dbname="$_PGS_URL" 2>"$_RUN_DIR/lock.err"; }
	_LOCK_IN=${SCRATCH_LOCK[1]}
	if ! printf '%s\n' "SELECT pg_advisory_lock(1852796276, hashtext($(sql_quote "$2"))), 'locked';" 1>&"$_LOCK_IN" 2>/dev/null ||
		! read -r -t 60 line <&"${SCRATCH_LOCK[0]}" || [ "$line" != "|locked" ]; then
		die "lock the scratch database name $2: $(tool_error "$_RUN_DIR/lock.err")"
	fi
	trap - PIPE
}

release_scratch_lock() {
	printf '%s\n' '\q' 1>&"$_LOCK_IN" 2>/dev/null || true
	wait "$SCRATCH_LOCK_PID" 2>/dev/null || true
}

# sweep_scratch_dbs SERVER_URL drops the scratch databases of dead runs.
sweep_scratch_dbs() {
	local prefix=${BACKUP_SCRATCH_PREFIX:-notes_verify} dropped
	# \gexec runs the statements the query returns: the name (printed), then
	# its DROP. The locks (class 1852796276, "notes") go when this psql exits.
	dropped=$(psql_at "sweep scratch databases left by killed runs" "$(pg_admin_url "$1")" -v pattern="^${prefix}_[0-9]{14}_[0-9]+\$" <<'SQL'
SELECT format('SELECT %L', datname), format('DROP DATABASE %I WITH (FORCE)', datname) FROM pg_database
 WHERE CASE WHEN datname ~ :'pattern' THEN pg_try_advisory_lock(1852796276, hashtext(datname)) ELSE false END \gexec
SQL
	)
	if [ -n "$dropped" ]; then
		log "dropped scratch databases of runs that were killed: ${dropped//$'\n'/, }"
	fi
}

# ----------------------------------------------------------------------------
# The service's record of verified backups (the backups table)

# record_backup VERIFIED_AT: upserts the manifest's backup into the service's
# own database, where the status route's backup:age check reads it.
record_backup() {
	local verified=$1 sql
	sql="INSERT INTO backups (id, kind, file_name, sha256, size_bytes, schema_version,
    started_at, completed_at, verified_at, duration_ms, row_counts)
  VALUES ($(sql_quote "$M_NAME"), $(sql_quote "$M_KIND"), $(sql_quote "$M_FILE"), $(sql_quote "$M_SHA256"),
    $M_SIZE, $(sql_quote "$M_SCHEMA_VERSION"), $(sql_quote "$(db_time "$M_STARTED_AT")"),
    $(sql_quote "$(db_time "$M_COMPLETED_AT")"), $(sql_quote "$(db_time "$verified")"),
    $M_DURATION_MS, $(sql_quote "$M_ROW_COUNTS"))
  ON CONFLICT (id) DO UPDATE SET verified_at = excluded.verified_at, sha256 = excluded.sha256,
    size_bytes = excluded.size_bytes, file_name = excluded.file_name;"
	case $DB_KIND in
	postgres)
		need psql
		psql_at "record the backup in the backups table of $DB_LABEL (is the schema migrated?)" "$PG_URL" <<<"$sql" >/dev/null
		;;
	sqlite)
		need sqlite3
		[ -f "$SQLITE_PATH" ] || die "cannot record the backup: $DB_LABEL does not exist"
		sqlite "record the backup in the backups table of $DB_LABEL (is the schema migrated?)" \
			-cmd ".timeout ${BACKUP_SQLITE_TIMEOUT_MS:-10000}" "$SQLITE_PATH" "$sql" >/dev/null
		;;
	esac
	log "recorded $M_NAME as verified in the backups table of $DB_LABEL"
}

# record_pgbackrest_backup INFO_JSON LABEL: upserts the pgBackRest backup
# LABEL, as `pgbackrest --output=json info` describes it in the file
# INFO_JSON, into the service's own PostgreSQL database (DATABASE_URL), once
# `pgbackrest verify` has passed: method pgbackrest, the label as its file
# name, no single checksum (verify checked every file's), the repository
# bytes it added as its size, pgBackRest's start and stop times. PostgreSQL
# reads the JSON itself, so no JSON tool is needed on the database host.
record_pgbackrest_backup() {
	local info=$1 label=$2 tag
	[ "$DB_KIND" = postgres ] || die "cannot record the pgBackRest backup: DATABASE_URL must name the service's PostgreSQL database"
	need psql
	# A dollar-quote tag the JSON cannot contain by accident.
	tag="pgbr_$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
	grep -qF "\$$tag\$" "$info" && die "cannot record the pgBackRest backup: unexpected pgbackrest info output"
	{
		printf 'WITH b AS (SELECT e FROM jsonb_array_elements(($%s$' "$tag"
		cat "$info"
		cat <<SQL
\$$tag\$::jsonb) -> 0 -> 'backup') e
  WHERE e ->> 'label' = :'label' AND NOT coalesce((e ->> 'error')::boolean, false))
INSERT INTO backups (id, kind, method, file_name, sha256, size_bytes, schema_version,
    started_at, completed_at, verified_at, duration_ms, row_counts)
  SELECT 'notes-api-pgbackrest-' || (e ->> 'label'), 'postgres', 'pgbackrest', e ->> 'label', '',
    (e -> 'info' -> 'repository' ->> 'delta')::bigint,
    (SELECT coalesce(max(name), '-') FROM bun_migrations),
    to_timestamp((e -> 'timestamp' ->> 'start')::bigint), to_timestamp((e -> 'timestamp' ->> 'stop')::bigint), now(),
    ((e -> 'timestamp' ->> 'stop')::bigint - (e -> 'timestamp' ->> 'start')::bigint) * 1000, '{}'
  FROM b
  ON CONFLICT (id) DO UPDATE SET verified_at = excluded.verified_at, size_bytes = excluded.size_bytes
  RETURNING id;
SQL
	} >"$_RUN_DIR/record.sql"
	local recorded
	recorded=$(psql_at "record the pgBackRest backup in the backups table of $DB_LABEL (is the schema migrated?)" "$PG_URL" \
		-v label="$label" <"$_RUN_DIR/record.sql")
	[ -n "$recorded" ] || die "cannot record the pgBackRest backup: pgbackrest info does not list $label as a good backup"
	log "recorded $recorded as verified in the backups table of $DB_LABEL"
}

# db_time turns 2026-11-25T02:00:00Z into 2026-11-25 02:00:00+00:00: what
# PostgreSQL's timestamptz accepts and what bun reads back from SQLite text,
# sorting in time order as text.
db_time() {
	local t=${1%Z}
	printf '%s+00:00' "${t/T/ }"
}

# ----------------------------------------------------------------------------
# Retention

# prune_backups DIR [dry-run]: keeps, per kind, the newest backup of each of
# the last BACKUP_KEEP_DAILY days, BACKUP_KEEP_WEEKLY ISO weeks and
# BACKUP_KEEP_MONTHLY months that have backups (restic's --keep-daily/weekly/
# monthly rule), and always the newest; removes the other backups with their
# manifests. Dates come from the names, not file times, which copies change.
#
# Only a complete backup (a manifest and a file beside it) counts: a dump
# left without its manifest (a run killed between its two renames, a copy
# brought back without it) cannot be restored, so it must not take the
# newest backup's place or a day's slot and get a good backup removed. Such
# leftovers are removed once a complete backup is newer; newer ones are left
# alone, with a warning.
prune_backups() {
	local dir=$1 dry=${2:-}
	local daily=${BACKUP_KEEP_DAILY:-7} weekly=${BACKUP_KEEP_WEEKLY:-4} monthly=${BACKUP_KEEP_MONTHLY:-12}
	local n
	for n in "$daily" "$weekly" "$monthly"; do
		[[ $n =~ ^[0-9]+$ ]] || die "BACKUP_KEEP_DAILY, BACKUP_KEEP_WEEKLY and BACKUP_KEEP_MONTHLY must be whole numbers"
	done
	local kind removed=0 kept=0 doomed=()
	for kind in postgres sqlite; do
		local found=() names=() incomplete=() weeks=() f files name
		for f in "$dir/$NAME_PREFIX-$kind-"*; do
			[ -e "$f" ] || continue
			if [[ ${f##*/} =~ $NAME_RE ]]; then
				found+=("${BASH_REMATCH[1]}")
			fi
		done
		[ "${#found[@]}" -gt 0 ] || continue
		mapfile -t found < <(printf '%s\n' "${found[@]}" | sort -ru)
		for name in "${found[@]}"; do
			files=("$dir/$name".*)
			if [ -f "$dir/$name.manifest.json" ] && [ "${#files[@]}" -ge 2 ]; then
				names+=("$name")
			else
				incomplete+=("$name")
			fi
		done
		for name in "${incomplete[@]}"; do
			# Names sort in time order within a kind.
			if [ "${#names[@]}" -eq 0 ] || [[ ! $name < ${names[0]} ]]; then
				warn "prune: $name is incomplete (no manifest or no backup file) and newer than every complete backup; leaving it"
			elif [ -n "$dry" ]; then
				log "prune (dry run): would remove the incomplete $name"
			else
				doomed+=("$dir/$name".*)
				log "prune: removing the incomplete $name"
			fi
		done
		[ "${#names[@]}" -gt 0 ] || continue
		# ISO week of every date in one date(1) call.
		mapfile -t weeks < <(printf '%s\n' "${names[@]}" | sed -E 's/.*-([0-9]{4})([0-9]{2})([0-9]{2})T.*/\1-\2-\3/' | date -u -f - +%G-W%V)
		local -A seen_day=() seen_week=() seen_month=()
		local nd=0 nw=0 nm=0 i ts keep
		for i in "${!names[@]}"; do
			name=${names[i]}
			ts=${name##*-}
			keep=$((i == 0))
			if [ -z "${seen_day[${ts:0:8}]:-}" ]; then
				seen_day[${ts:0:8}]=1
				if ((nd < daily)); then nd=$((nd + 1)) keep=1; fi
			fi
			if [ -z "${seen_week[${weeks[i]}]:-}" ]; then
				seen_week[${weeks[i]}]=1
				if ((nw < weekly)); then nw=$((nw + 1)) keep=1; fi
			fi
			if [ -z "${seen_month[${ts:0:6}]:-}" ]; then
				seen_month[${ts:0:6}]=1
				if ((nm < monthly)); then nm=$((nm + 1)) keep=1; fi
			fi
			if ((keep)); then
				kept=$((kept + 1))
				continue
			fi
			removed=$((removed + 1))
			if [ -n "$dry" ]; then
				log "prune (dry run): would remove $name"
			else
				doomed+=("$dir/$name".*)
				log "prune: removing $name"
			fi
		done
	done
	if [ "${#doomed[@]}" -gt 0 ]; then
		rm -f -- "${doomed[@]}" || die "prune: cannot remove old backups from $dir"
	fi
	log "prune: kept $kept backups, removed $removed (keep daily=$daily weekly=$weekly monthly=$monthly)"
}
