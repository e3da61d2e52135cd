-- Personal data, sealed (see the PostgreSQL twin for the comments): only ld1:… values made by
-- ingestion under the member's data key, never plaintext.

CREATE TABLE fact_personal (
    event_id       TEXT PRIMARY KEY REFERENCES events (event_id) ON DELETE CASCADE,
    phone_sealed   TEXT,
    address_sealed TEXT
);

CREATE TABLE member_personal (
    member_key     TEXT PRIMARY KEY,
    phone_sealed   TEXT,
    address_sealed TEXT,
    updated_at     TEXT NOT NULL
);
