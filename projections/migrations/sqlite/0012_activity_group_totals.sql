-- metric_activity's group-buy groups started and completed, kept as counts of activity_counts
-- (moved by the projector) instead of counted from activity_group_counts on every read. Part of
-- the projection `core` (version 8). See the PostgreSQL migration.
ALTER TABLE activity_counts ADD COLUMN groups_started INTEGER NOT NULL DEFAULT 0;
ALTER TABLE activity_counts ADD COLUMN groups_completed INTEGER NOT NULL DEFAULT 0;

UPDATE activity_counts SET
    groups_started = (SELECT count(*) FROM activity_group_counts g
                       WHERE g.activity_id = activity_counts.activity_id AND g.started_members > 0),
    groups_completed = (SELECT count(*) FROM activity_group_counts g
                         WHERE g.activity_id = activity_counts.activity_id AND g.started_members > 0
                           AND g.completed_members > 0);

DROP VIEW metric_activity;
CREATE VIEW metric_activity AS
    SELECT activity_id, reserved_users, joined_users, reserved_joined_users, guided_joined_users,
           groups_started, groups_completed, orders_paid, order_users, revenue_fen
    FROM activity_counts WHERE members > 0;
