-- One row per backup that scripts/backup/ has verified by restoring it; the
-- status route's backup:age check reads the newest. The scripts write it with
-- psql or sqlite3 (docs/BACKUP.md), so this SQL, like theirs, is portable.
-- id is the backup's name (notes-api-postgres-20261125T020000Z): re-verifying
-- a backup updates its row instead of adding one. Times are UTC; row_counts is
-- the manifest's JSON object of table -> rows, kept as text on both databases.
-- No index: one row a day stays small for decades.
CREATE TABLE backups (
    id             TEXT PRIMARY KEY,
    kind           TEXT NOT NULL CHECK (kind IN ('postgres', 'sqlite')),
    file_name      TEXT NOT NULL,
    sha256         TEXT NOT NULL,
    size_bytes     BIGINT NOT NULL CHECK (size_bytes >= 0),
    schema_version TEXT NOT NULL,
    started_at     TIMESTAMP WITH TIME ZONE NOT NULL,
    completed_at   TIMESTAMP WITH TIME ZONE NOT NULL,
    verified_at    TIMESTAMP WITH TIME ZONE,
    duration_ms    BIGINT NOT NULL CHECK (duration_ms >= 0),
    row_counts     TEXT NOT NULL DEFAULT '{}'
);
