-- The indicator system (METRICS.md), embedded store (see the PostgreSQL twin for the column comments): traffic, linkage, retention and A/B read models, and the
-- per-member facts they are folded from. A late event or binding refolds only the facts of the
-- members it touches, then recounts only the days, cohorts and experiments those facts move.

CREATE TABLE liandong_settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);

CREATE TABLE metric_menu_entry_daily (
    day TEXT NOT NULL, entry TEXT NOT NULL, variant TEXT NOT NULL,
    exposures INTEGER NOT NULL, clicks INTEGER NOT NULL,
    PRIMARY KEY (day, entry, variant)
);

CREATE TABLE metric_article_daily (
    day TEXT NOT NULL, article_id TEXT NOT NULL, reads INTEGER NOT NULL, clicks INTEGER NOT NULL,
    PRIMARY KEY (day, article_id)
);

CREATE TABLE fact_member_day (
    member_key TEXT NOT NULL, day TEXT NOT NULL,
    mp_visit INTEGER NOT NULL, oa_guided INTEGER NOT NULL, prompt_follow INTEGER NOT NULL,
    core_user INTEGER NOT NULL, guided_order INTEGER NOT NULL, guided_converted_7d INTEGER NOT NULL,
    PRIMARY KEY (member_key, day)
);
CREATE INDEX fact_member_day_day ON fact_member_day (day);

CREATE TABLE metric_linkage_daily (
    day TEXT PRIMARY KEY,
    mp_users INTEGER NOT NULL, oa_guided_users INTEGER NOT NULL, prompt_follows INTEGER NOT NULL,
    core_users INTEGER NOT NULL, guided_order_users INTEGER NOT NULL, guided_converted_7d INTEGER NOT NULL
);

CREATE TABLE fact_conversion (
    member_key TEXT PRIMARY KEY, t0 TEXT NOT NULL, cohort_day TEXT NOT NULL, repurchased INTEGER NOT NULL
);
CREATE INDEX fact_conversion_cohort ON fact_conversion (cohort_day);
CREATE TABLE retention_repurchase_30d_counts (
    cohort_day TEXT PRIMARY KEY, converted INTEGER NOT NULL, repurchased INTEGER NOT NULL
);

CREATE TABLE fact_follower (
    member_key TEXT PRIMARY KEY, t0 TEXT NOT NULL, cohort_day TEXT NOT NULL, retained INTEGER NOT NULL
);
CREATE INDEX fact_follower_cohort ON fact_follower (cohort_day);
CREATE TABLE retention_follower_30d_counts (
    cohort_day TEXT PRIMARY KEY, followers INTEGER NOT NULL, retained INTEGER NOT NULL
);

CREATE TABLE fact_member_week (
    member_key TEXT NOT NULL, cohort_week TEXT NOT NULL, week_offset INTEGER NOT NULL,
    PRIMARY KEY (member_key, week_offset)
);
CREATE INDEX fact_member_week_cohort ON fact_member_week (cohort_week);
CREATE TABLE retention_weekly_counts (
    cohort_week TEXT NOT NULL, week_offset INTEGER NOT NULL, active INTEGER NOT NULL,
    PRIMARY KEY (cohort_week, week_offset)
);
CREATE TABLE week_offsets (week_offset INTEGER PRIMARY KEY);
INSERT INTO week_offsets VALUES (0),(1),(2),(3),(4),(5),(6),(7),(8),(9),(10),(11),(12);

CREATE TABLE fact_experiment (
    member_key TEXT NOT NULL, experiment TEXT NOT NULL,
    variant TEXT, first_exposed_at TEXT, clicked INTEGER NOT NULL,
    PRIMARY KEY (member_key, experiment)
);
CREATE INDEX fact_experiment_experiment ON fact_experiment (experiment);

CREATE TABLE ab_readout (
    experiment TEXT NOT NULL, variant TEXT NOT NULL,
    exposed_users INTEGER NOT NULL, clicked_users INTEGER NOT NULL,
    ctr REAL, lift REAL, p_value REAL,
    ci_low REAL, ci_high REAL,
    PRIMARY KEY (experiment, variant)
);

-- "today" is the server's, in the configured zone: SQLite has no zone database, so the process
-- keeps the zone's current UTC offset in liandong_settings ('utc_offset', e.g. '+28800 seconds').
CREATE VIEW liandong_today AS
    SELECT date('now', coalesce((SELECT value FROM liandong_settings WHERE key = 'utc_offset'), '+28800 seconds')) AS today;

CREATE VIEW retention_repurchase_30d AS
    SELECT cohort_day, converted, repurchased, (SELECT today FROM liandong_today) >= date(cohort_day, '+31 days') AS mature
    FROM retention_repurchase_30d_counts;

CREATE VIEW retention_follower_30d AS
    SELECT cohort_day, followers, retained, (SELECT today FROM liandong_today) >= date(cohort_day, '+31 days') AS mature
    FROM retention_follower_30d_counts;

CREATE VIEW retention_weekly AS
    SELECT c.cohort_week, o.week_offset, c.active AS cohort_size, coalesce(a.active, 0) AS active
    FROM retention_weekly_counts c
    CROSS JOIN week_offsets o
    LEFT JOIN retention_weekly_counts a ON a.cohort_week = c.cohort_week AND a.week_offset = o.week_offset
    WHERE c.week_offset = 0 AND date(c.cohort_week, '+' || (7 * o.week_offset) || ' days') <= (SELECT today FROM liandong_today);
