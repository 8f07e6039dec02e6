-- A/B experiments: the latest experiment per prompt and environment. `running` is 1
-- while it splits traffic; a stopped one stays so that the answer's position (and
-- ETag) never goes back. `variants` is JSON [{version_string, weight}], `buckets`
-- JSON of 100 variant indexes.
CREATE TABLE rm_experiments (
    prompt_id     TEXT   NOT NULL,
    environment   TEXT   NOT NULL,
    experiment_id TEXT   NOT NULL,
    running       INTEGER   NOT NULL,
    variants      TEXT   NOT NULL,
    buckets       TEXT   NOT NULL,
    previous_version_string TEXT,
    started_at    TEXT   NOT NULL,
    started_by    TEXT   NOT NULL,
    position      INTEGER   NOT NULL,
    PRIMARY KEY (prompt_id, environment)
);
