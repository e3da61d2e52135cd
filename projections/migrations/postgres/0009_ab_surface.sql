-- A/B tests on the five surfaces (METRICS.md, "A/B tests"): every experiment table is keyed by
-- (surface, experiment). The rows kept so far are menu experiments, the one surface there was.
-- The tables are made again, not altered, so that `surface` stands before `experiment`.
DROP VIEW analyst_fact_experiment;

ALTER TABLE fact_experiment RENAME TO fact_experiment_v8;
CREATE TABLE fact_experiment (
    member_key TEXT NOT NULL, surface TEXT NOT NULL, experiment TEXT NOT NULL,
    variant TEXT, first_exposed_at TIMESTAMPTZ, clicked BOOLEAN NOT NULL,
    PRIMARY KEY (member_key, surface, experiment)
);
INSERT INTO fact_experiment
    SELECT member_key, 'menu', experiment, variant, first_exposed_at, clicked FROM fact_experiment_v8;
DROP TABLE fact_experiment_v8;
CREATE INDEX fact_experiment_experiment ON fact_experiment (surface, experiment);
COMMENT ON COLUMN fact_experiment.surface IS 'The surface (menu, article, template, follow_prompt, notify) whose exposure and click types measure the experiment.';
COMMENT ON COLUMN fact_experiment.variant IS 'The one variant the member was exposed to; null when exposed to several (excluded).';

ALTER TABLE ab_counts RENAME TO ab_counts_v8;
CREATE TABLE ab_counts (
    surface TEXT NOT NULL, experiment TEXT NOT NULL, variant TEXT NOT NULL,
    exposed BIGINT NOT NULL, clicked BIGINT NOT NULL,
    PRIMARY KEY (surface, experiment, variant)
);
INSERT INTO ab_counts SELECT 'menu', experiment, variant, exposed, clicked FROM ab_counts_v8;
DROP TABLE ab_counts_v8;
COMMENT ON TABLE ab_counts IS 'Per surface, experiment and variant: members exposed to that one variant, and of them those who clicked it (the surface''s click type) at or after their first exposure (what ab_readout tests).';

ALTER TABLE ab_readout RENAME TO ab_readout_v8;
CREATE TABLE ab_readout (
    surface TEXT NOT NULL, experiment TEXT NOT NULL, variant TEXT NOT NULL,
    exposed_users BIGINT NOT NULL, clicked_users BIGINT NOT NULL,
    ctr DOUBLE PRECISION, lift DOUBLE PRECISION, p_value DOUBLE PRECISION,
    ci_low DOUBLE PRECISION, ci_high DOUBLE PRECISION,
    PRIMARY KEY (surface, experiment, variant)
);
INSERT INTO ab_readout
    SELECT 'menu', experiment, variant, exposed_users, clicked_users, ctr, lift, p_value, ci_low, ci_high
    FROM ab_readout_v8;
DROP TABLE ab_readout_v8;
COMMENT ON TABLE ab_readout IS 'A/B tests on five surfaces (menu, article, template, follow_prompt, notify): distinct members exposed to exactly one variant, who clicked that variant (the surface''s click type) at or after their first exposure; the control is the variant named control, else the alphabetically first.';
COMMENT ON COLUMN ab_readout.surface IS 'menu (oa.menu.exposure/click), article (oa.article.read/click), template (oa.template.sent/click), follow_prompt (mp.follow_prompt.shown/click) or notify (mp.notify.sent/click).';
COMMENT ON COLUMN ab_readout.ctr IS 'clicked_users / exposed_users.';
COMMENT ON COLUMN ab_readout.lift IS 'ctr / control ctr - 1; null for the control and when a denominator is zero.';
COMMENT ON COLUMN ab_readout.p_value IS 'Two-sided pooled two-proportion z-test against the control.';
COMMENT ON COLUMN ab_readout.ci_low IS '95% interval (unpooled standard error) of ctr - control ctr: lower bound.';
COMMENT ON COLUMN ab_readout.ci_high IS '95% interval (unpooled standard error) of ctr - control ctr: upper bound.';

CREATE VIEW analyst_fact_experiment AS
    SELECT p.pseudonym AS member_ref, f.surface, f.experiment, f.variant, f.first_exposed_at, f.clicked
    FROM fact_experiment f JOIN member_pseudonym p ON p.member_key = f.member_key;
COMMENT ON VIEW analyst_fact_experiment IS 'fact_experiment with member_ref instead of member_key.';
