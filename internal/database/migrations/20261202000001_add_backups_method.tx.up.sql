-- Expand only (docs/RELEASE.md, "Expand, then contract"): which tool made a
-- recorded backup. 'dump' is a verified logical dump (scripts/backup/backup.sh),
-- 'pgbackrest' a physical base backup that `pgbackrest verify` checked
-- (scripts/backup/pgbackrest-backup.sh). The default keeps every INSERT of
-- the previous release valid, and it reads no column it does not know:
-- TestPreviousReleaseRunsOnTheNewSchema runs that release against this schema.
ALTER TABLE backups ADD COLUMN method TEXT NOT NULL DEFAULT 'dump' CHECK (method IN ('dump', 'pgbackrest'));
