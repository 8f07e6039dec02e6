-- Users and API keys, projected from their own event streams.
CREATE TABLE rm_users (
    username          TEXT   PRIMARY KEY,
    role              TEXT   NOT NULL,
    disabled          BIGINT NOT NULL,
    password_hash     TEXT   NOT NULL,
    -- Position of the event that set the password: tokens issued before it are void.
    password_position BIGINT NOT NULL,
    created_at        TEXT   NOT NULL,
    created_by        TEXT   NOT NULL,
    updated_at        TEXT   NOT NULL,
    updated_by        TEXT   NOT NULL,
    last_position     BIGINT NOT NULL
);

CREATE TABLE rm_api_keys (
    key_id        TEXT   PRIMARY KEY,
    name          TEXT   NOT NULL,
    environments  TEXT   NOT NULL,  -- JSON array
    key_hash      TEXT   NOT NULL,
    created_at    TEXT   NOT NULL,
    created_by    TEXT   NOT NULL,
    revoked_at    TEXT,
    revoked_by    TEXT,
    last_position BIGINT NOT NULL
);

-- Server secrets that must survive restarts but never enter the event log (the JWT
-- signing key when PROMPTOS_JWT_SECRET is not set). Not derived from the log.
CREATE TABLE server_secrets (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
