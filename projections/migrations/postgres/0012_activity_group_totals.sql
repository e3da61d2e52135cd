-- metric_activity's group-buy groups started and completed, kept as counts of activity_counts
-- (moved by the projector when a group starts, completes or empties) instead of counted from
-- activity_group_counts on every read: the campaign board read every group of every campaign
-- (220 ms at 100,000 groups, benches/reads.rs). Part of the projection `core` (version 8).
ALTER TABLE activity_counts
    ADD COLUMN groups_started BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN groups_completed BIGINT NOT NULL DEFAULT 0;

UPDATE activity_counts a SET
    groups_started = (SELECT count(*) FROM activity_group_counts g
                       WHERE g.activity_id = a.activity_id AND g.started_members > 0),
    groups_completed = (SELECT count(*) FROM activity_group_counts g
                         WHERE g.activity_id = a.activity_id AND g.started_members > 0
                           AND g.completed_members > 0);

DROP VIEW metric_activity;
CREATE VIEW metric_activity AS
    SELECT activity_id, reserved_users, joined_users, reserved_joined_users, guided_joined_users,
           groups_started, groups_completed, orders_paid, order_users, revenue_fen
    FROM activity_counts WHERE members > 0;
COMMENT ON VIEW metric_activity IS 'One row per campaign (activity_id) named by an activity.* event or an order.placed: reservations, joins, joins after a reservation or within 24 h of an OA-guided visit, group-buy groups started and completed, paid orders, buyers, revenue.';
COMMENT ON COLUMN activity_counts.groups_started IS 'Groups of the campaign with a member who joined them (activity_group_counts.started_members > 0).';
COMMENT ON COLUMN activity_counts.groups_completed IS 'Of those, groups a member reported complete (completed_members > 0).';
