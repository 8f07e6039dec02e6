-- Change requests (read models, rebuilt from the log like the others). One row per
-- request with its state; its timeline (opened, approved, commented, scheduled,
-- applied, …) one row per event; and which prompts each request changes. Times are
-- fixed-width UTC text, so they compare as text on both databases.
CREATE TABLE rm_change_requests (
    request_id         TEXT PRIMARY KEY,
    environment        TEXT    NOT NULL,
    title              TEXT    NOT NULL,
    description        TEXT    NOT NULL,
    author             TEXT    NOT NULL,
    status             TEXT    NOT NULL,
    approvals_required INTEGER NOT NULL,
    changes            TEXT    NOT NULL,
    opened_at          TEXT    NOT NULL,
    opened_position    INTEGER NOT NULL,
    expires_at         TEXT    NOT NULL,
    scheduled_at       TEXT,
    closed_at          TEXT,
    closed_by          TEXT,
    closed_position    INTEGER,
    last_position      INTEGER NOT NULL
);
CREATE INDEX rm_change_requests_status ON rm_change_requests (status, environment);

CREATE TABLE rm_change_request_activity (
    position   INTEGER PRIMARY KEY,
    request_id TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    actor      TEXT    NOT NULL,
    at         TEXT    NOT NULL,
    comment    TEXT,
    detail     TEXT
);
CREATE INDEX rm_change_request_activity_request ON rm_change_request_activity (request_id, position);

CREATE TABLE rm_change_request_prompts (
    request_id  TEXT NOT NULL,
    prompt_name TEXT NOT NULL,
    PRIMARY KEY (request_id, prompt_name)
);
CREATE INDEX rm_change_request_prompts_prompt ON rm_change_request_prompts (prompt_name);
