// Package backup holds no Go code of its own: its tests drive the backup
// shell scripts beside them (backup.sh, verify.sh, restore.sh, prune.sh and
// lib.sh) against a real PostgreSQL and a real SQLite file, as an operator
// would, so `go test ./...` proves the scripts work. docs/BACKUP.md is the
// manual.
package backup
