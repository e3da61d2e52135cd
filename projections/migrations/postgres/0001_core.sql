-- The core read models (METRICS.md): `events`, `member_profile`, and the identity bindings the
-- projector folds them with. Maintained by the projection `core` (projections/src/core.rs).

CREATE TABLE events (
    event_id     UUID PRIMARY KEY,
    type         TEXT NOT NULL,
    occurred_at  TIMESTAMPTZ NOT NULL,
    received_at  TIMESTAMPTZ NOT NULL,
    day          DATE NOT NULL,
    member_key   TEXT NOT NULL,
    unionid      TEXT,
    oa_openid    TEXT,
    mp_openid    TEXT,
    source_from  TEXT,
    source_type  TEXT,
    source_id    TEXT,
    scene        BIGINT,
    props        JSONB NOT NULL,
    source_extra JSONB,
    context      JSONB,
    schema_version INTEGER NOT NULL
);
CREATE INDEX events_member_key ON events (member_key, occurred_at);
CREATE INDEX events_oa_openid ON events (oa_openid) WHERE oa_openid IS NOT NULL;
CREATE INDEX events_mp_openid ON events (mp_openid) WHERE mp_openid IS NOT NULL;
CREATE INDEX events_day_type ON events (day, type);

COMMENT ON TABLE events IS 'Every accepted tracking event, one row per event_id (duplicates count once). member_key and unionid follow the final identity resolution; personal data (phone, address) is not in props.';
COMMENT ON COLUMN events.day IS 'Calendar date of occurred_at in the configured time zone (LIANDONG_TIMEZONE, default Asia/Shanghai).';
COMMENT ON COLUMN events.member_key IS 'The unionid when the event''s openid is (ever) bound to one, else oa:<oa_openid> or mp:<mp_openid>.';
COMMENT ON COLUMN events.source_from IS 'Resolved from (EVENTS.md): source.from lower-cased, else from the scene, else direct for mp.visit; null for other events without source or scene.';

CREATE TABLE member_identity (
    kind    TEXT NOT NULL CHECK (kind IN ('oa', 'mp')),
    openid  TEXT NOT NULL,
    unionid TEXT NOT NULL,
    PRIMARY KEY (kind, openid)
);
CREATE INDEX member_identity_unionid ON member_identity (unionid);
COMMENT ON TABLE member_identity IS 'Openid to unionid bindings seen in the log (an openid binds to one unionid for life).';

CREATE TABLE member_profile (
    member_key             TEXT PRIMARY KEY,
    unionid                TEXT,
    oa_openid              TEXT,
    mp_openid              TEXT,
    first_seen_at          TIMESTAMPTZ NOT NULL,
    last_seen_at           TIMESTAMPTZ NOT NULL,
    first_from             TEXT,
    following              BOOLEAN NOT NULL,
    followed_at            TIMESTAMPTZ,
    follow_via             TEXT,
    orders_paid            BIGINT NOT NULL,
    revenue_fen            BIGINT NOT NULL,
    first_paid_at          TIMESTAMPTZ,
    last_paid_at           TIMESTAMPTZ,
    coupons_claimed        BIGINT NOT NULL,
    coupons_redeemed       BIGINT NOT NULL,
    activity_notifications BOOLEAN NOT NULL,
    last_prompt_at         TIMESTAMPTZ
);
COMMENT ON TABLE member_profile IS 'One row per member (member_key), across OA and MP (METRICS.md).';
COMMENT ON COLUMN member_profile.first_from IS 'Resolved from of the member''s earliest mp.visit; null if none.';
COMMENT ON COLUMN member_profile.following IS 'True iff the member''s latest oa.follow/oa.unfollow is oa.follow.';
COMMENT ON COLUMN member_profile.orders_paid IS 'Number of the member''s paid orders (an order is paid at its first order.paid).';
COMMENT ON COLUMN member_profile.revenue_fen IS 'Sum of paid amounts minus the sum of order.refunded amounts, in fen.';
COMMENT ON COLUMN member_profile.activity_notifications IS 'Latest member.preferences_changed value; true if never set.';
COMMENT ON COLUMN member_profile.last_prompt_at IS 'Latest mp.follow_prompt.shown.';
