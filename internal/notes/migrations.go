package notes

import (
	"embed"
	"io/fs"
)

// migrationFiles is the notes schema: the notes table. The files keep the
// names they had when they lived with the service's own migrations, so a
// database migrated by an older build finds them applied.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations is the notes set, for database.Migrate, Rollback, Status and
// Pending and the database:migrations check.
func Migrations() fs.FS { return migrationFiles }
