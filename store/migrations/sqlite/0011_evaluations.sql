-- Test cases and evaluation runs (read models, rebuilt from the log like the others).
CREATE TABLE rm_test_cases (
    case_id       TEXT PRIMARY KEY,
    prompt_id     TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    -- JSON of the whole case: variables, messages, expectations.
    body          TEXT    NOT NULL,
    created_at    TEXT    NOT NULL,
    created_by    TEXT    NOT NULL,
    updated_at    TEXT    NOT NULL,
    updated_by    TEXT    NOT NULL,
    last_position INTEGER NOT NULL
);
CREATE INDEX rm_test_cases_prompt ON rm_test_cases (prompt_id, name);

CREATE TABLE rm_evaluations (
    evaluation_id    TEXT PRIMARY KEY,
    prompt_id        TEXT    NOT NULL,
    version_string   TEXT    NOT NULL,
    version_hash     TEXT    NOT NULL,
    suite_revision   INTEGER NOT NULL,
    provider         TEXT    NOT NULL,
    model            TEXT    NOT NULL,
    environment      TEXT    NOT NULL,
    cases            INTEGER NOT NULL,
    -- running or completed
    status           TEXT    NOT NULL,
    passed           INTEGER,
    total            INTEGER,
    input_tokens     INTEGER,
    output_tokens    INTEGER,
    duration_ms      INTEGER,
    stopped          TEXT,
    -- JSON array of the per-case outcomes, once completed.
    outcomes         TEXT,
    started_at       TEXT    NOT NULL,
    started_by       TEXT    NOT NULL,
    completed_at     TEXT,
    started_position INTEGER NOT NULL,
    last_position    INTEGER NOT NULL
);
CREATE INDEX rm_evaluations_prompt ON rm_evaluations (prompt_id, started_position);
