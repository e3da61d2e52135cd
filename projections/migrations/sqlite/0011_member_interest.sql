-- member_interest (see the PostgreSQL migration of the same number).
CREATE TABLE member_interest (
    member_key    TEXT NOT NULL,
    category      TEXT NOT NULL,
    article_reads INTEGER NOT NULL,
    page_views    INTEGER NOT NULL,
    last_at       TEXT NOT NULL,
    PRIMARY KEY (member_key, category)
);
