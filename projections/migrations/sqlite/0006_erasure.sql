-- Erasure and the analysts' de-identified views, embedded store (see the PostgreSQL twin for
-- the comments). liandong_erasures is not a projection table: rebuilds never empty it.

CREATE TABLE liandong_erasures (
    id_hash   TEXT PRIMARY KEY,
    erased_at TEXT NOT NULL
);

CREATE TABLE member_pseudonym (
    member_key TEXT PRIMARY KEY,
    pseudonym  TEXT NOT NULL UNIQUE
);

CREATE VIEW analyst_events AS
    SELECT e.event_id, e.type, e.occurred_at, e.received_at, e.day, p.pseudonym AS member_ref,
           e.source_from, e.source_type, e.source_id, e.scene, e.props, e.schema_version
    FROM events e JOIN member_pseudonym p ON p.member_key = e.member_key;

CREATE VIEW analyst_member_profile AS
    SELECT p.pseudonym AS member_ref,
           m.unionid IS NOT NULL AS has_unionid, m.oa_openid IS NOT NULL AS on_oa,
           m.mp_openid IS NOT NULL AS on_mp,
           m.first_seen_at, m.last_seen_at, m.first_from, m.following, m.followed_at, m.follow_via,
           m.orders_paid, m.revenue_fen, m.first_paid_at, m.last_paid_at, m.coupons_claimed,
           m.coupons_redeemed, m.activity_notifications, m.last_prompt_at
    FROM member_profile m JOIN member_pseudonym p ON p.member_key = m.member_key;

CREATE VIEW analyst_fact_member_day AS
    SELECT p.pseudonym AS member_ref, f.day, f.mp_visit, f.oa_guided, f.prompt_follow, f.core_user,
           f.guided_order, f.guided_converted_7d
    FROM fact_member_day f JOIN member_pseudonym p ON p.member_key = f.member_key;
CREATE VIEW analyst_fact_conversion AS
    SELECT p.pseudonym AS member_ref, f.t0, f.cohort_day, f.repurchased
    FROM fact_conversion f JOIN member_pseudonym p ON p.member_key = f.member_key;
CREATE VIEW analyst_fact_follower AS
    SELECT p.pseudonym AS member_ref, f.t0, f.cohort_day, f.retained
    FROM fact_follower f JOIN member_pseudonym p ON p.member_key = f.member_key;
CREATE VIEW analyst_fact_member_week AS
    SELECT p.pseudonym AS member_ref, f.cohort_week, f.week_offset
    FROM fact_member_week f JOIN member_pseudonym p ON p.member_key = f.member_key;
CREATE VIEW analyst_fact_experiment AS
    SELECT p.pseudonym AS member_ref, f.experiment, f.variant, f.first_exposed_at, f.clicked
    FROM fact_experiment f JOIN member_pseudonym p ON p.member_key = f.member_key;
