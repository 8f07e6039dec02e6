-- Which versions include which prompts, one row per include, so that finding the
-- prompts a deploy affects through their includes is an index lookup rather than a scan
-- of every deployed version. (`promptos rebuild` fills it for versions created before.)
CREATE TABLE rm_includes (
    prompt_id      TEXT NOT NULL,
    version_string TEXT NOT NULL,
    included       TEXT NOT NULL,
    PRIMARY KEY (prompt_id, version_string, included)
);
CREATE INDEX rm_includes_by_included ON rm_includes (included);
