-- A/B tests on the five surfaces (METRICS.md, "A/B tests"): every experiment table is keyed by
-- (surface, experiment). The rows kept so far are menu experiments, the one surface there was.
DROP VIEW analyst_fact_experiment;

ALTER TABLE fact_experiment RENAME TO fact_experiment_v8;
CREATE TABLE fact_experiment (
    member_key TEXT NOT NULL, surface TEXT NOT NULL, experiment TEXT NOT NULL,
    variant TEXT, first_exposed_at TEXT, clicked INTEGER NOT NULL,
    PRIMARY KEY (member_key, surface, experiment)
);
INSERT INTO fact_experiment
    SELECT member_key, 'menu', experiment, variant, first_exposed_at, clicked FROM fact_experiment_v8;
DROP TABLE fact_experiment_v8;
CREATE INDEX fact_experiment_experiment ON fact_experiment (surface, experiment);

ALTER TABLE ab_counts RENAME TO ab_counts_v8;
CREATE TABLE ab_counts (
    surface TEXT NOT NULL, experiment TEXT NOT NULL, variant TEXT NOT NULL,
    exposed INTEGER NOT NULL, clicked INTEGER NOT NULL,
    PRIMARY KEY (surface, experiment, variant)
);
INSERT INTO ab_counts SELECT 'menu', experiment, variant, exposed, clicked FROM ab_counts_v8;
DROP TABLE ab_counts_v8;

ALTER TABLE ab_readout RENAME TO ab_readout_v8;
CREATE TABLE ab_readout (
    surface TEXT NOT NULL, experiment TEXT NOT NULL, variant TEXT NOT NULL,
    exposed_users INTEGER NOT NULL, clicked_users INTEGER NOT NULL,
    ctr REAL, lift REAL, p_value REAL,
    ci_low REAL, ci_high REAL,
    PRIMARY KEY (surface, experiment, variant)
);
INSERT INTO ab_readout
    SELECT 'menu', experiment, variant, exposed_users, clicked_users, ctr, lift, p_value, ci_low, ci_high
    FROM ab_readout_v8;
DROP TABLE ab_readout_v8;

CREATE VIEW analyst_fact_experiment AS
    SELECT p.pseudonym AS member_ref, f.surface, f.experiment, f.variant, f.first_exposed_at, f.clicked
    FROM fact_experiment f JOIN member_pseudonym p ON p.member_key = f.member_key;
