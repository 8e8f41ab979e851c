#!/usr/bin/env bash
# prune.sh: apply the retention rule to BACKUP_DIR (backup.sh runs it after
# every backup).
#
#   prune.sh [--dry-run]
#
# Keeps, for each kind (postgres, sqlite), the newest backup of each of the
# last BACKUP_KEEP_DAILY days (default 7), BACKUP_KEEP_WEEKLY ISO weeks
# (default 4) and BACKUP_KEEP_MONTHLY months (default 12) that have a backup,
# and always the newest one; every other backup is removed with its manifest.
# Dates are read from the file names.

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

readonly USAGE="prune.sh [--dry-run]"

main() {
	local dry=""
	case ${1:-} in
	--dry-run) dry=1 ;;
	-h | --help)
		echo "usage: $USAGE"
		exit 0
		;;
	"") ;;
	*) usage_error "$USAGE" ;;
	esac
	[ $# -le 1 ] || usage_error "$USAGE"
	local dir=${BACKUP_DIR:-backups}
	[ -d "$dir" ] || die "BACKUP_DIR $dir is not a directory"
	init_run ""
	prune_backups "$dir" "$dry"
}

main "$@"
