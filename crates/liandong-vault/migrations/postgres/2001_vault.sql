-- liandong-vault's tables (versions 2001…), which belong to no projection and survive every
-- rebuild: the members' data keys, wrapped by the master key, and the vault's own settings
-- (the fingerprint of the master key the data keys were made with). Idempotent: stores made
-- before these tables moved into a migration already have them.
CREATE TABLE IF NOT EXISTS liandong_data_keys (
    key_ref TEXT PRIMARY KEY,
    wrapped BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS liandong_vault (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
