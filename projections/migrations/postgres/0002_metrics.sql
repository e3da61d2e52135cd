-- The indicator system (METRICS.md): traffic, linkage, retention and A/B read models, and the
-- per-member facts they are folded from. A late event or binding refolds only the facts of the
-- members it touches, then recounts only the days, cohorts and experiments those facts move.

CREATE TABLE liandong_settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
COMMENT ON TABLE liandong_settings IS 'Process settings the views need (the configured time zone).';

CREATE TABLE metric_menu_entry_daily (
    day DATE NOT NULL, entry TEXT NOT NULL, variant TEXT NOT NULL,
    exposures BIGINT NOT NULL, clicks BIGINT NOT NULL,
    PRIMARY KEY (day, entry, variant)
);
COMMENT ON TABLE metric_menu_entry_daily IS 'OA menu entries per day: menu-entry click rate (菜单栏入口点击率) = clicks / exposures.';
COMMENT ON COLUMN metric_menu_entry_daily.day IS 'Calendar day of occurred_at in the configured time zone.';
COMMENT ON COLUMN metric_menu_entry_daily.entry IS 'Menu label (props.entry), e.g. 立即点餐.';
COMMENT ON COLUMN metric_menu_entry_daily.variant IS 'props.variant; empty string when absent.';
COMMENT ON COLUMN metric_menu_entry_daily.exposures IS 'Number of oa.menu.exposure events.';
COMMENT ON COLUMN metric_menu_entry_daily.clicks IS 'Number of oa.menu.click events.';

CREATE TABLE metric_article_daily (
    day DATE NOT NULL, article_id TEXT NOT NULL, reads BIGINT NOT NULL, clicks BIGINT NOT NULL,
    PRIMARY KEY (day, article_id)
);
COMMENT ON TABLE metric_article_daily IS 'OA articles per day: article link click rate (图文链接点击率) = clicks / reads.';
COMMENT ON COLUMN metric_article_daily.reads IS 'Number of oa.article.read events.';
COMMENT ON COLUMN metric_article_daily.clicks IS 'Number of oa.article.click events.';

CREATE TABLE fact_member_day (
    member_key TEXT NOT NULL, day DATE NOT NULL,
    mp_visit BOOLEAN NOT NULL, oa_guided BOOLEAN NOT NULL, prompt_follow BOOLEAN NOT NULL,
    core_user BOOLEAN NOT NULL, guided_order BOOLEAN NOT NULL, guided_converted_7d BOOLEAN NOT NULL,
    PRIMARY KEY (member_key, day)
);
CREATE INDEX fact_member_day_day ON fact_member_day (day);
COMMENT ON TABLE fact_member_day IS 'One row per member and day with an mp.visit or an oa.follow: what metric_linkage_daily counts.';

CREATE TABLE metric_linkage_daily (
    day DATE PRIMARY KEY,
    mp_users BIGINT NOT NULL, oa_guided_users BIGINT NOT NULL, prompt_follows BIGINT NOT NULL,
    core_users BIGINT NOT NULL, guided_order_users BIGINT NOT NULL, guided_converted_7d BIGINT NOT NULL
);
COMMENT ON TABLE metric_linkage_daily IS 'OA + MP linkage per day (distinct members). Follow conversion = prompt_follows / mp_users; core usage = core_users / mp_users; cross-platform rate = guided_order_users / oa_guided_users; linkage conversion = guided_converted_7d / oa_guided_users.';
COMMENT ON COLUMN metric_linkage_daily.mp_users IS 'Members with at least one mp.visit on the day.';
COMMENT ON COLUMN metric_linkage_daily.oa_guided_users IS 'Members with at least one OA-guided mp.visit (from menu, article, template, oa_msg, oa_profile) on the day.';
COMMENT ON COLUMN metric_linkage_daily.prompt_follows IS 'Members with an oa.follow via mp_prompt on the day.';
COMMENT ON COLUMN metric_linkage_daily.core_users IS 'Among mp_users, members with an order.placed or activity.reserved on the day.';
COMMENT ON COLUMN metric_linkage_daily.guided_order_users IS 'Among oa_guided_users, members with an order.placed on the day at or after their first OA-guided visit of the day.';
COMMENT ON COLUMN metric_linkage_daily.guided_converted_7d IS 'Among oa_guided_users, members with an order paid within 7 days (g <= t < g + 7 days) of their first OA-guided visit g of the day.';

CREATE TABLE fact_conversion (
    member_key TEXT PRIMARY KEY, t0 TIMESTAMPTZ NOT NULL, cohort_day DATE NOT NULL, repurchased BOOLEAN NOT NULL
);
CREATE INDEX fact_conversion_cohort ON fact_conversion (cohort_day);
CREATE TABLE retention_repurchase_30d_counts (
    cohort_day DATE PRIMARY KEY, converted BIGINT NOT NULL, repurchased BIGINT NOT NULL
);

CREATE TABLE fact_follower (
    member_key TEXT PRIMARY KEY, t0 TIMESTAMPTZ NOT NULL, cohort_day DATE NOT NULL, retained BOOLEAN NOT NULL
);
CREATE INDEX fact_follower_cohort ON fact_follower (cohort_day);
CREATE TABLE retention_follower_30d_counts (
    cohort_day DATE PRIMARY KEY, followers BIGINT NOT NULL, retained BIGINT NOT NULL
);

CREATE TABLE fact_member_week (
    member_key TEXT NOT NULL, cohort_week DATE NOT NULL, week_offset INTEGER NOT NULL,
    PRIMARY KEY (member_key, week_offset)
);
CREATE INDEX fact_member_week_cohort ON fact_member_week (cohort_week);
CREATE TABLE retention_weekly_counts (
    cohort_week DATE NOT NULL, week_offset INTEGER NOT NULL, active BIGINT NOT NULL,
    PRIMARY KEY (cohort_week, week_offset)
);
CREATE TABLE week_offsets (week_offset INTEGER PRIMARY KEY);
INSERT INTO week_offsets SELECT generate_series(0, 12);

CREATE TABLE fact_experiment (
    member_key TEXT NOT NULL, experiment TEXT NOT NULL,
    variant TEXT, first_exposed_at TIMESTAMPTZ, clicked BOOLEAN NOT NULL,
    PRIMARY KEY (member_key, experiment)
);
CREATE INDEX fact_experiment_experiment ON fact_experiment (experiment);
COMMENT ON COLUMN fact_experiment.variant IS 'The one variant the member was exposed to; null when exposed to several (excluded).';

CREATE TABLE ab_readout (
    experiment TEXT NOT NULL, variant TEXT NOT NULL,
    exposed_users BIGINT NOT NULL, clicked_users BIGINT NOT NULL,
    ctr DOUBLE PRECISION, lift DOUBLE PRECISION, p_value DOUBLE PRECISION,
    ci_low DOUBLE PRECISION, ci_high DOUBLE PRECISION,
    PRIMARY KEY (experiment, variant)
);
COMMENT ON TABLE ab_readout IS 'Menu A/B tests: distinct members exposed to exactly one variant, who clicked that variant at or after their first exposure; the control is the variant named control, else the alphabetically first.';
COMMENT ON COLUMN ab_readout.ctr IS 'clicked_users / exposed_users.';
COMMENT ON COLUMN ab_readout.lift IS 'ctr / control ctr - 1; null for the control and when a denominator is zero.';
COMMENT ON COLUMN ab_readout.p_value IS 'Two-sided pooled two-proportion z-test against the control.';
COMMENT ON COLUMN ab_readout.ci_low IS '95% interval (unpooled standard error) of ctr - control ctr: lower bound.';
COMMENT ON COLUMN ab_readout.ci_high IS '95% interval (unpooled standard error) of ctr - control ctr: upper bound.';

-- "today" is the server's, in the configured zone.
CREATE FUNCTION liandong_today() RETURNS DATE LANGUAGE SQL STABLE AS $$
    SELECT (now() AT TIME ZONE coalesce((SELECT value FROM liandong_settings WHERE key = 'timezone'), 'Asia/Shanghai'))::date
$$;

CREATE VIEW retention_repurchase_30d AS
    SELECT cohort_day, converted, repurchased, liandong_today() >= cohort_day + 31 AS mature
    FROM retention_repurchase_30d_counts;
COMMENT ON VIEW retention_repurchase_30d IS 'Linkage conversion cohorts by day(t0): 联动用户复购率 = repurchased / converted; t0 is the earliest paid time within 7 days after an OA-guided visit; repurchased = another order paid in (t0, t0 + 30 days].';

CREATE VIEW retention_follower_30d AS
    SELECT cohort_day, followers, retained, liandong_today() >= cohort_day + 31 AS mature
    FROM retention_follower_30d_counts;
COMMENT ON VIEW retention_follower_30d IS 'Follower cohorts by the day of the earliest oa.follow via mp_prompt (t0): 公众号粉丝留存率 = retained / followers; retained = latest follow/unfollow at or before t0 + 30 days is a follow.';

CREATE VIEW retention_weekly AS
    SELECT c.cohort_week, o.week_offset, c.active AS cohort_size, coalesce(a.active, 0) AS active
    FROM retention_weekly_counts c
    CROSS JOIN week_offsets o
    LEFT JOIN retention_weekly_counts a ON a.cohort_week = c.cohort_week AND a.week_offset = o.week_offset
    WHERE c.week_offset = 0 AND c.cohort_week + 7 * o.week_offset <= liandong_today();
COMMENT ON VIEW retention_weekly IS 'Weekly cohorts (Monday weeks of the earliest non-member.* event): active = cohort members with an activity event in week cohort_week + week_offset, for offsets 0..12 whose week has begun.';
