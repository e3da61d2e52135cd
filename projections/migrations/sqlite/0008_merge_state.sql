-- The state the member-level read models merge into (see the PostgreSQL migration of the same
-- number): paid orders, the profile's deciders, the members behind each linkage day, the A/B
-- counts, and an index for a member's events of one type in a time window.

CREATE TABLE member_order (
    member_key TEXT NOT NULL,
    order_id   TEXT NOT NULL,
    paid_at    TEXT NOT NULL,
    paid_event TEXT NOT NULL,
    amount_fen INTEGER NOT NULL,
    guided     INTEGER NOT NULL,
    PRIMARY KEY (member_key, order_id)
);
CREATE INDEX member_order_paid ON member_order (member_key, paid_at);
-- The member's first guided order (its linkage conversion t0) in one index step.
CREATE INDEX member_order_guided ON member_order (member_key, paid_at, order_id) WHERE guided;

ALTER TABLE member_profile ADD COLUMN first_visit_at TEXT;
ALTER TABLE member_profile ADD COLUMN first_visit_event TEXT;
ALTER TABLE member_profile ADD COLUMN follow_changed_at TEXT;
ALTER TABLE member_profile ADD COLUMN follow_changed_event TEXT;
ALTER TABLE member_profile ADD COLUMN followed_event TEXT;
ALTER TABLE member_profile ADD COLUMN preferences_at TEXT;
ALTER TABLE member_profile ADD COLUMN preferences_event TEXT;

ALTER TABLE metric_linkage_daily ADD COLUMN members INTEGER NOT NULL DEFAULT 0;

CREATE TABLE ab_counts (
    experiment TEXT NOT NULL, variant TEXT NOT NULL,
    exposed INTEGER NOT NULL, clicked INTEGER NOT NULL,
    PRIMARY KEY (experiment, variant)
);

CREATE INDEX events_member_type ON events (member_key, type, occurred_at);
