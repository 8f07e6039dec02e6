-- The event log: the only source of truth. Rows are appended, never updated or deleted.
-- `position` is assigned max+1 while the append lock is held, so positions commit in
-- order and a reader following them never skips one (see projector/src/writer.rs).
CREATE TABLE events (
    position       BIGINT  PRIMARY KEY,
    stream_id      TEXT    NOT NULL,
    stream_version BIGINT  NOT NULL,
    event_id       TEXT    NOT NULL UNIQUE,
    event_type     TEXT    NOT NULL,
    payload        TEXT    NOT NULL,  -- JSON, stored as text so its hash is byte-stable
    metadata       TEXT    NOT NULL,  -- JSON: actor, request_id
    recorded_at    TEXT    NOT NULL,  -- RFC 3339 UTC, microseconds, never decreasing
    prev_hash      TEXT    NOT NULL,  -- SHA-256 of the previous event (zeros for the first)
    hash           TEXT    NOT NULL,
    UNIQUE (stream_id, stream_version)
);
CREATE INDEX events_by_type ON events (event_type, position);
CREATE INDEX events_by_time ON events (recorded_at, position);

CREATE FUNCTION promptos_refuse_event_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the event log is append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER events_are_append_only BEFORE UPDATE OR DELETE ON events
FOR EACH ROW EXECUTE FUNCTION promptos_refuse_event_change();
CREATE TRIGGER events_are_never_truncated BEFORE TRUNCATE ON events
FOR EACH STATEMENT EXECUTE FUNCTION promptos_refuse_event_change();

-- Everything below is derived from the log by the projector and can be rebuilt.
CREATE TABLE projector_checkpoints (
    name     TEXT   PRIMARY KEY,
    position BIGINT NOT NULL
);
INSERT INTO projector_checkpoints (name, position) VALUES ('read_models', 0);

CREATE TABLE rm_prompts (
    prompt_id      TEXT   PRIMARY KEY,
    name           TEXT   NOT NULL,
    description    TEXT   NOT NULL,
    created_at     TEXT   NOT NULL,
    created_by     TEXT   NOT NULL,
    updated_at     TEXT   NOT NULL,
    updated_by     TEXT   NOT NULL,
    deleted_at     TEXT,
    deleted_by     TEXT,
    latest_version TEXT,
    version_count  BIGINT NOT NULL,
    first_position BIGINT NOT NULL,
    last_position  BIGINT NOT NULL
);
CREATE UNIQUE INDEX rm_prompts_live_name ON rm_prompts (name) WHERE deleted_at IS NULL;
CREATE INDEX rm_prompts_by_name ON rm_prompts (name, first_position);

CREATE TABLE rm_versions (
    prompt_id      TEXT   NOT NULL,
    version_string TEXT   NOT NULL,
    text           TEXT   NOT NULL,
    variables      TEXT   NOT NULL,  -- JSON array of names
    commit_message TEXT,
    author         TEXT   NOT NULL,
    created_at     TEXT   NOT NULL,
    position       BIGINT NOT NULL,
    PRIMARY KEY (prompt_id, version_string)
);
CREATE INDEX rm_versions_by_position ON rm_versions (prompt_id, position);

CREATE TABLE rm_deployments (
    prompt_id      TEXT   NOT NULL,
    environment    TEXT   NOT NULL,
    prompt_name    TEXT   NOT NULL,
    version_string TEXT   NOT NULL,
    deployed_by    TEXT   NOT NULL,
    deployed_at    TEXT   NOT NULL,
    position       BIGINT NOT NULL,
    PRIMARY KEY (prompt_id, environment)
);

CREATE TABLE rm_deployment_history (
    position                BIGINT PRIMARY KEY,
    prompt_id               TEXT   NOT NULL,
    prompt_name             TEXT   NOT NULL,
    environment             TEXT   NOT NULL,
    action                  TEXT   NOT NULL,  -- deploy | rollback
    version_string          TEXT   NOT NULL,
    previous_version_string TEXT,
    actor                   TEXT   NOT NULL,
    at                      TEXT   NOT NULL
);
CREATE INDEX rm_deployment_history_by_prompt ON rm_deployment_history (prompt_id, environment, position);

-- What the audit filters need that lives inside payloads and metadata.
CREATE TABLE rm_event_index (
    position    BIGINT PRIMARY KEY,
    prompt_name TEXT,
    prompt_id   TEXT,
    environment TEXT,
    actor       TEXT   NOT NULL
);
CREATE INDEX rm_event_index_by_prompt ON rm_event_index (prompt_name, position);
CREATE INDEX rm_event_index_by_environment ON rm_event_index (environment, position);
CREATE INDEX rm_event_index_by_actor ON rm_event_index (actor, position);
