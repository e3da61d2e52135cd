-- member_interest (METRICS.md, "Interests"): each member's article reads and MP page views per
-- content category, and the latest of them. Part of the projection `core`.
CREATE TABLE member_interest (
    member_key    TEXT NOT NULL,
    category      TEXT NOT NULL,
    article_reads BIGINT NOT NULL,
    page_views    BIGINT NOT NULL,
    last_at       TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (member_key, category)
);
COMMENT ON TABLE member_interest IS 'Per member and content category: oa.article.read and mp.page_view counts, latest time. Holds member keys: not analyst-safe.';
