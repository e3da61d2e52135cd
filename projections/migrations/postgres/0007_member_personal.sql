-- Personal data (EVENTS.md, "Personal data"), sealed: only ld1:… values made by ingestion under
-- the member's data key (liandong-vault) are stored here, never plaintext.

CREATE TABLE fact_personal (
    event_id       UUID PRIMARY KEY REFERENCES events (event_id) ON DELETE CASCADE,
    phone_sealed   TEXT,
    address_sealed TEXT
);

CREATE TABLE member_personal (
    member_key     TEXT PRIMARY KEY,
    phone_sealed   TEXT,
    address_sealed TEXT,
    updated_at     TIMESTAMPTZ NOT NULL
);

COMMENT ON TABLE fact_personal IS 'The sealed phone and address of each member.profile_updated that carried any; deleted with its events row.';
COMMENT ON TABLE member_personal IS 'Each member''s latest phone and address (each field from the latest update that carries it, by occurred_at), sealed under the member''s data key. Read them through GET /v1/members/{member_key}: admin sees them, support sees them masked; a destroyed data key (erasure) makes them unreadable.';
COMMENT ON COLUMN member_personal.phone_sealed IS 'ld1:<key_ref>:<key_id>:<base64 nonce||AES-256-GCM ciphertext>; null when the member never gave a phone.';
COMMENT ON COLUMN member_personal.updated_at IS 'occurred_at of the member''s latest update of phone or address.';
