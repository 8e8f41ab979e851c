-- Portable between SQLite and PostgreSQL. Timestamps are written by bun in
-- UTC with microseconds: PostgreSQL stores them as timestamptz, SQLite as the
-- same text, which bun parses back.
CREATE TABLE notes (
    id         TEXT PRIMARY KEY,
    title      TEXT NOT NULL,
    body       TEXT NOT NULL DEFAULT '',
    version    BIGINT NOT NULL CHECK (version >= 1),
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL
);
