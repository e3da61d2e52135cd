-- Messages and campaigns (METRICS.md, "Messages" and "Campaigns").

CREATE TABLE fact_message (
    member_key TEXT NOT NULL, day TEXT NOT NULL, channel TEXT NOT NULL, template_id TEXT NOT NULL,
    first_sent_at TEXT NOT NULL, delivered INTEGER NOT NULL,
    first_click_at TEXT, visited INTEGER NOT NULL, converted INTEGER NOT NULL,
    PRIMARY KEY (member_key, day, channel, template_id)
);

CREATE TABLE metric_message_daily (
    day TEXT NOT NULL, channel TEXT NOT NULL, template_id TEXT NOT NULL,
    sent_users INTEGER NOT NULL, delivered_users INTEGER NOT NULL, clicked_users INTEGER NOT NULL,
    visit_users INTEGER NOT NULL, converted_users INTEGER NOT NULL,
    PRIMARY KEY (day, channel, template_id)
);
CREATE INDEX metric_message_daily_template ON metric_message_daily (template_id, day);

CREATE TABLE fact_activity (
    member_key TEXT NOT NULL, activity_id TEXT NOT NULL,
    first_reserved_at TEXT, first_joined_at TEXT, guided_joined INTEGER NOT NULL,
    orders_paid INTEGER NOT NULL, revenue_fen INTEGER NOT NULL,
    PRIMARY KEY (member_key, activity_id)
);

CREATE TABLE fact_activity_group (
    member_key TEXT NOT NULL, activity_id TEXT NOT NULL, group_id TEXT NOT NULL,
    started INTEGER NOT NULL, completed INTEGER NOT NULL,
    PRIMARY KEY (member_key, activity_id, group_id)
);

CREATE TABLE fact_activity_order (
    member_key TEXT NOT NULL, order_id TEXT NOT NULL, activity_id TEXT NOT NULL,
    refunded_fen INTEGER NOT NULL,
    PRIMARY KEY (member_key, order_id, activity_id)
);
CREATE INDEX fact_activity_order_activity ON fact_activity_order (member_key, activity_id);

CREATE TABLE activity_counts (
    activity_id TEXT PRIMARY KEY, members INTEGER NOT NULL,
    reserved_users INTEGER NOT NULL, joined_users INTEGER NOT NULL,
    reserved_joined_users INTEGER NOT NULL, guided_joined_users INTEGER NOT NULL,
    orders_paid INTEGER NOT NULL, order_users INTEGER NOT NULL, revenue_fen INTEGER NOT NULL
);

CREATE TABLE activity_group_counts (
    activity_id TEXT NOT NULL, group_id TEXT NOT NULL,
    started_members INTEGER NOT NULL, completed_members INTEGER NOT NULL,
    PRIMARY KEY (activity_id, group_id)
);

CREATE VIEW metric_activity AS
    SELECT a.activity_id, a.reserved_users, a.joined_users, a.reserved_joined_users,
           a.guided_joined_users,
           (SELECT count(*) FROM activity_group_counts g
             WHERE g.activity_id = a.activity_id AND g.started_members > 0) AS groups_started,
           (SELECT count(*) FROM activity_group_counts g
             WHERE g.activity_id = a.activity_id AND g.started_members > 0 AND g.completed_members > 0) AS groups_completed,
           a.orders_paid, a.order_users, a.revenue_fen
    FROM activity_counts a WHERE a.members > 0;

CREATE VIEW analyst_fact_message AS
    SELECT p.pseudonym AS member_ref, f.day, f.channel, f.template_id, f.first_sent_at, f.delivered,
           f.first_click_at, f.visited, f.converted
    FROM fact_message f JOIN member_pseudonym p ON p.member_key = f.member_key;
CREATE VIEW analyst_fact_activity AS
    SELECT p.pseudonym AS member_ref, f.activity_id, f.first_reserved_at, f.first_joined_at,
           f.guided_joined, f.orders_paid, f.revenue_fen
    FROM fact_activity f JOIN member_pseudonym p ON p.member_key = f.member_key;
