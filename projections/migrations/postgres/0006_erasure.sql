-- Erasure (METRICS.md, "Erasure") and the analysts' de-identified views (issue 6).

-- The erasure registry. NOT a projection table: a rebuild never empties it, so every rebuild
-- skips the events of erased members. It holds keyed hashes (HMAC-SHA256 under the master
-- key's erasure key) of each identifier in its member-key form (`<unionid>`, `oa:<openid>`,
-- `mp:<openid>`), never the identifiers.
CREATE TABLE liandong_erasures (
    id_hash   TEXT PRIMARY KEY,
    erased_at TIMESTAMPTZ NOT NULL
);
COMMENT ON TABLE liandong_erasures IS 'Erased identifiers, as keyed hashes (never the identifiers): the projections skip every event carrying one. Survives rebuilds.';

-- A stable, non-reversible stand-in for each member (HMAC-SHA256 of member_key under the
-- master key's pseudonym key), maintained by the projection `core` for the analyst views.
CREATE TABLE member_pseudonym (
    member_key TEXT PRIMARY KEY,
    pseudonym  TEXT NOT NULL UNIQUE
);
COMMENT ON TABLE member_pseudonym IS 'member_key -> member_ref of the analyst views. Holds identifiers: not analyst-safe.';

CREATE VIEW analyst_events AS
    SELECT e.event_id, e.type, e.occurred_at, e.received_at, e.day, p.pseudonym AS member_ref,
           e.source_from, e.source_type, e.source_id, e.scene, e.props, e.schema_version
    FROM events e JOIN member_pseudonym p ON p.member_key = e.member_key;
COMMENT ON VIEW analyst_events IS 'events without identifiers: member_ref is a keyed hash of member_key (stable, not reversible); context and source_extra (free-form, may carry identifiers) are left out.';

CREATE VIEW analyst_member_profile AS
    SELECT p.pseudonym AS member_ref,
           m.unionid IS NOT NULL AS has_unionid, m.oa_openid IS NOT NULL AS on_oa,
           m.mp_openid IS NOT NULL AS on_mp,
           m.first_seen_at, m.last_seen_at, m.first_from, m.following, m.followed_at, m.follow_via,
           m.orders_paid, m.revenue_fen, m.first_paid_at, m.last_paid_at, m.coupons_claimed,
           m.coupons_redeemed, m.activity_notifications, m.last_prompt_at
    FROM member_profile m JOIN member_pseudonym p ON p.member_key = m.member_key;
COMMENT ON VIEW analyst_member_profile IS 'member_profile without identifiers: member_ref as in analyst_events; has_unionid / on_oa / on_mp say which identifiers the member has.';

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
COMMENT ON VIEW analyst_fact_member_day IS 'fact_member_day with member_ref instead of member_key.';
COMMENT ON VIEW analyst_fact_conversion IS 'fact_conversion with member_ref instead of member_key.';
COMMENT ON VIEW analyst_fact_follower IS 'fact_follower with member_ref instead of member_key.';
COMMENT ON VIEW analyst_fact_member_week IS 'fact_member_week with member_ref instead of member_key.';
COMMENT ON VIEW analyst_fact_experiment IS 'fact_experiment with member_ref instead of member_key.';
