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

-- The next log offset of each partition, per projection (and per rebuild slot `<name>#build`);
-- moved only inside the transaction that applies the events before it.
CREATE TABLE IF NOT EXISTS liandong_positions (
    projection TEXT NOT NULL,
    partition INTEGER NOT NULL,
    next_offset BIGINT NOT NULL,
    PRIMARY KEY (projection, partition)
);

CREATE TABLE IF NOT EXISTS liandong_audit (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at TIMESTAMPTZ NOT NULL,
    key_id TEXT NOT NULL,
    role TEXT NOT NULL,
    action TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    member_ref TEXT,
    detail TEXT
);
CREATE INDEX IF NOT EXISTS liandong_audit_member_ref
    ON liandong_audit (member_ref, id) WHERE member_ref IS NOT NULL;
COMMENT ON TABLE liandong_audit IS
    'Append-only audit trail: member reads, erasures, key changes. member_ref is a keyed hash, never an identifier.';
CREATE OR REPLACE FUNCTION liandong_audit_refuse_change() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'liandong_audit is append-only: % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END
    $$;
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'liandong_audit_append_only'
                   AND tgrelid = 'liandong_audit'::regclass) THEN
        CREATE TRIGGER liandong_audit_append_only BEFORE UPDATE OR DELETE ON liandong_audit
            FOR EACH ROW EXECUTE FUNCTION liandong_audit_refuse_change();
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'liandong_audit_no_truncate'
                   AND tgrelid = 'liandong_audit'::regclass) THEN
        CREATE TRIGGER liandong_audit_no_truncate BEFORE TRUNCATE ON liandong_audit
            FOR EACH STATEMENT EXECUTE FUNCTION liandong_audit_refuse_change();
    END IF;
END $$;

CREATE TABLE IF NOT EXISTS liandong_api_keys (
    key_id TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    sha256 TEXT NOT NULL UNIQUE,
    label TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ
);
COMMENT ON TABLE liandong_api_keys IS
    'API keys made with liandong keys create: SHA-256 digests only, never a key.';

CREATE TABLE IF NOT EXISTS liandong_dead_letter_replays (
    log TEXT NOT NULL,
    partition INTEGER NOT NULL,
    log_offset BIGINT NOT NULL,
    event_id TEXT,
    outcome TEXT NOT NULL,
    error TEXT,
    replayed_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (log, partition, log_offset)
);
COMMENT ON TABLE liandong_dead_letter_replays IS
    'What liandong dead-letter replay did with each dead letter (appended, duplicate, still_failing).';
