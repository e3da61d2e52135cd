-- The core read models (METRICS.md) on the embedded store. Times are TEXT in RFC 3339 UTC with
-- microseconds (YYYY-MM-DDTHH:MM:SS.ffffffZ), so text order is time order; JSON is TEXT.

CREATE TABLE events (
    event_id     TEXT PRIMARY KEY,
    type         TEXT NOT NULL,
    occurred_at  TEXT NOT NULL,
    received_at  TEXT NOT NULL,
    day          TEXT NOT NULL,
    member_key   TEXT NOT NULL,
    unionid      TEXT,
    oa_openid    TEXT,
    mp_openid    TEXT,
    source_from  TEXT,
    source_type  TEXT,
    source_id    TEXT,
    scene        INTEGER,
    props        TEXT NOT NULL,
    source_extra TEXT,
    context      TEXT,
    schema_version INTEGER NOT NULL
);
CREATE INDEX events_member_key ON events (member_key, occurred_at);
CREATE INDEX events_oa_openid ON events (oa_openid) WHERE oa_openid IS NOT NULL;
CREATE INDEX events_mp_openid ON events (mp_openid) WHERE mp_openid IS NOT NULL;
CREATE INDEX events_day_type ON events (day, type);

CREATE TABLE member_identity (
    kind    TEXT NOT NULL CHECK (kind IN ('oa', 'mp')),
    openid  TEXT NOT NULL,
    unionid TEXT NOT NULL,
    PRIMARY KEY (kind, openid)
);
CREATE INDEX member_identity_unionid ON member_identity (unionid);

CREATE TABLE member_profile (
    member_key             TEXT PRIMARY KEY,
    unionid                TEXT,
    oa_openid              TEXT,
    mp_openid              TEXT,
    first_seen_at          TEXT NOT NULL,
    last_seen_at           TEXT NOT NULL,
    first_from             TEXT,
    following              INTEGER NOT NULL,
    followed_at            TEXT,
    follow_via             TEXT,
    orders_paid            INTEGER NOT NULL,
    revenue_fen            INTEGER NOT NULL,
    first_paid_at          TEXT,
    last_paid_at           TEXT,
    coupons_claimed        INTEGER NOT NULL,
    coupons_redeemed       INTEGER NOT NULL,
    activity_notifications INTEGER NOT NULL,
    last_prompt_at         TEXT
);
