-- The state the member-level read models merge into instead of refolding a member's history
-- (projections/src/members.rs): each member's paid orders, the events that decided the
-- profile's "first"/"latest" columns, the members behind each linkage day (so a day whose last
-- member left is dropped), the per-variant A/B counts, and an index for the member's events of
-- one type in a time window.

CREATE TABLE member_order (
    member_key TEXT NOT NULL,
    order_id   TEXT NOT NULL,
    paid_at    TIMESTAMPTZ NOT NULL,
    paid_event TEXT NOT NULL,
    amount_fen BIGINT NOT NULL,
    guided     BOOLEAN NOT NULL,
    PRIMARY KEY (member_key, order_id)
);
CREATE INDEX member_order_paid ON member_order (member_key, paid_at);
-- The member's first guided order (its linkage conversion t0) in one index step.
CREATE INDEX member_order_guided ON member_order (member_key, paid_at, order_id) WHERE guided;
COMMENT ON TABLE member_order IS 'Each member''s paid orders: paid at the first order.paid (by order_id), for its amount; guided = paid within 7 days after an OA-guided visit of the member.';

ALTER TABLE member_profile
    ADD COLUMN first_visit_at TIMESTAMPTZ,
    ADD COLUMN first_visit_event TEXT,
    ADD COLUMN follow_changed_at TIMESTAMPTZ,
    ADD COLUMN follow_changed_event TEXT,
    ADD COLUMN followed_event TEXT,
    ADD COLUMN preferences_at TIMESTAMPTZ,
    ADD COLUMN preferences_event TEXT;
COMMENT ON COLUMN member_profile.first_visit_at IS 'Time (with first_visit_event) of the earliest mp.visit, which decides first_from.';
COMMENT ON COLUMN member_profile.follow_changed_at IS 'Time (with follow_changed_event) of the latest oa.follow/oa.unfollow, which decides following.';

ALTER TABLE metric_linkage_daily ADD COLUMN members BIGINT NOT NULL DEFAULT 0;
COMMENT ON COLUMN metric_linkage_daily.members IS 'Members with an mp.visit or an oa.follow on the day (the rows of fact_member_day).';

CREATE TABLE ab_counts (
    experiment TEXT NOT NULL, variant TEXT NOT NULL,
    exposed BIGINT NOT NULL, clicked BIGINT NOT NULL,
    PRIMARY KEY (experiment, variant)
);
COMMENT ON TABLE ab_counts IS 'Per experiment and variant: members exposed to that one variant, and of them those who clicked it at or after their first exposure (what ab_readout tests).';

CREATE INDEX events_member_type ON events (member_key, type, occurred_at);
