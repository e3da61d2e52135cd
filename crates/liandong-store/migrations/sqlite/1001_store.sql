-- The read store's own tables, which belong to no projection and survive every rebuild: the
-- projectors' bookkeeping, the audit trail, the stored API keys and the dead-letter replays.
-- Versions 1001… are liandong-store's; the read models' migrations (projections/) are 1…999.
-- Every statement is idempotent: stores made before these tables moved into a migration
-- already have them. The store's erasure registry, `liandong_erasures`, is the one exception:
-- read-model migration 0006 created it before the store had migrations of its own, and an
-- applied migration is history (sqlx checks its checksum), so it stays there.

-- The version each projection was last built at.
CREATE TABLE IF NOT EXISTS liandong_projections (
    projection TEXT PRIMARY KEY,
    version INTEGER NOT NULL
);

-- The next log offset of each partition, per projection; moved only inside the transaction
-- that applies the events before it.
CREATE TABLE IF NOT EXISTS liandong_positions (
    projection TEXT NOT NULL,
    partition INTEGER NOT NULL,
    next_offset BIGINT NOT NULL,
    PRIMARY KEY (projection, partition)
);

-- AUTOINCREMENT: ids are never reused, so "newest first" is "largest id first".
CREATE TABLE IF NOT EXISTS liandong_audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    key_id TEXT NOT NULL,
    role TEXT NOT NULL,
    action TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    member_ref TEXT,
    detail TEXT
);
CREATE INDEX IF NOT EXISTS liandong_audit_member_ref
    ON liandong_audit (member_ref, id) WHERE member_ref IS NOT NULL;
CREATE TRIGGER IF NOT EXISTS liandong_audit_no_update BEFORE UPDATE ON liandong_audit
    BEGIN SELECT RAISE(ABORT, 'liandong_audit is append-only: UPDATE refused'); END;
CREATE TRIGGER IF NOT EXISTS liandong_audit_no_delete BEFORE DELETE ON liandong_audit
    BEGIN SELECT RAISE(ABORT, 'liandong_audit is append-only: DELETE refused'); END;

CREATE TABLE IF NOT EXISTS liandong_api_keys (
    key_id TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    sha256 TEXT NOT NULL UNIQUE,
    label TEXT,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);

CREATE TABLE IF NOT EXISTS liandong_dead_letter_replays (
    log TEXT NOT NULL,
    partition INTEGER NOT NULL,
    log_offset BIGINT NOT NULL,
    event_id TEXT,
    outcome TEXT NOT NULL,
    error TEXT,
    replayed_at TEXT NOT NULL,
    PRIMARY KEY (log, partition, log_offset)
);
