-- Messages and campaigns (METRICS.md, "Messages" and "Campaigns").

CREATE TABLE fact_message (
    member_key TEXT NOT NULL, day DATE NOT NULL, channel TEXT NOT NULL, template_id TEXT NOT NULL,
    first_sent_at TIMESTAMPTZ NOT NULL, delivered BOOLEAN NOT NULL,
    first_click_at TIMESTAMPTZ, visited BOOLEAN NOT NULL, converted BOOLEAN NOT NULL,
    PRIMARY KEY (member_key, day, channel, template_id)
);
COMMENT ON TABLE fact_message IS 'Per member, day, channel and template with a send: the earliest send s of the day, delivered, the earliest click in [s, s + 72 h), an MP visit from the message in that window, an order paid in [first click, s + 7 days).';

CREATE TABLE metric_message_daily (
    day DATE NOT NULL, channel TEXT NOT NULL, template_id TEXT NOT NULL,
    sent_users BIGINT NOT NULL, delivered_users BIGINT NOT NULL, clicked_users BIGINT NOT NULL,
    visit_users BIGINT NOT NULL, converted_users BIGINT NOT NULL,
    PRIMARY KEY (day, channel, template_id)
);
CREATE INDEX metric_message_daily_template ON metric_message_daily (template_id, day);
COMMENT ON TABLE metric_message_daily IS 'The message funnel per day, channel (oa_template, mp_notify) and template: distinct members sent, delivered, clicked within 72 h of their first send of the day, visiting the MP from the message within 72 h, paying after their first click and within 7 days of the send.';

CREATE TABLE fact_activity (
    member_key TEXT NOT NULL, activity_id TEXT NOT NULL,
    first_reserved_at TIMESTAMPTZ, first_joined_at TIMESTAMPTZ, guided_joined BOOLEAN NOT NULL,
    orders_paid BIGINT NOT NULL, revenue_fen BIGINT NOT NULL,
    PRIMARY KEY (member_key, activity_id)
);
COMMENT ON TABLE fact_activity IS 'Per member and campaign it names: earliest reservation and join, whether an OA-guided visit came within 24 h before the earliest join, its paid orders of the campaign and their revenue.';

CREATE TABLE fact_activity_group (
    member_key TEXT NOT NULL, activity_id TEXT NOT NULL, group_id TEXT NOT NULL,
    started BOOLEAN NOT NULL, completed BOOLEAN NOT NULL,
    PRIMARY KEY (member_key, activity_id, group_id)
);
COMMENT ON TABLE fact_activity_group IS 'Per member and group-buy group: joined it (activity.joined, kind groupbuy), reported it complete (activity.group_completed).';

CREATE TABLE fact_activity_order (
    member_key TEXT NOT NULL, order_id TEXT NOT NULL, activity_id TEXT NOT NULL,
    refunded_fen BIGINT NOT NULL,
    PRIMARY KEY (member_key, order_id, activity_id)
);
CREATE INDEX fact_activity_order_activity ON fact_activity_order (member_key, activity_id);
COMMENT ON TABLE fact_activity_order IS 'The campaigns a member''s order.placed events name for an order, and the member''s refunds of that order.';

CREATE TABLE activity_counts (
    activity_id TEXT PRIMARY KEY, members BIGINT NOT NULL,
    reserved_users BIGINT NOT NULL, joined_users BIGINT NOT NULL,
    reserved_joined_users BIGINT NOT NULL, guided_joined_users BIGINT NOT NULL,
    orders_paid BIGINT NOT NULL, order_users BIGINT NOT NULL, revenue_fen BIGINT NOT NULL
);
COMMENT ON TABLE activity_counts IS 'Per campaign, the member counts of metric_activity; members = members naming the campaign.';

CREATE TABLE activity_group_counts (
    activity_id TEXT NOT NULL, group_id TEXT NOT NULL,
    started_members BIGINT NOT NULL, completed_members BIGINT NOT NULL,
    PRIMARY KEY (activity_id, group_id)
);
COMMENT ON TABLE activity_group_counts IS 'Per group-buy group: members who joined it, members who reported it complete.';

CREATE VIEW metric_activity AS
    SELECT a.activity_id, a.reserved_users, a.joined_users, a.reserved_joined_users,
           a.guided_joined_users,
           (SELECT count(*) FROM activity_group_counts g
             WHERE g.activity_id = a.activity_id AND g.started_members > 0) AS groups_started,
           (SELECT count(*) FROM activity_group_counts g
             WHERE g.activity_id = a.activity_id AND g.started_members > 0 AND g.completed_members > 0) AS groups_completed,
           a.orders_paid, a.order_users, a.revenue_fen
    FROM activity_counts a WHERE a.members > 0;
COMMENT ON VIEW metric_activity IS 'One row per campaign (activity_id) named by an activity.* event or an order.placed: reservations, joins, joins after a reservation or within 24 h of an OA-guided visit, group-buy groups started and completed, paid orders, buyers, revenue.';

CREATE VIEW analyst_fact_message AS
    SELECT p.pseudonym AS member_ref, f.day, f.channel, f.template_id, f.first_sent_at, f.delivered,
           f.first_click_at, f.visited, f.converted
    FROM fact_message f JOIN member_pseudonym p ON p.member_key = f.member_key;
CREATE VIEW analyst_fact_activity AS
    SELECT p.pseudonym AS member_ref, f.activity_id, f.first_reserved_at, f.first_joined_at,
           f.guided_joined, f.orders_paid, f.revenue_fen
    FROM fact_activity f JOIN member_pseudonym p ON p.member_key = f.member_key;
COMMENT ON VIEW analyst_fact_message IS 'fact_message with member_ref instead of member_key.';
COMMENT ON VIEW analyst_fact_activity IS 'fact_activity with member_ref instead of member_key.';
