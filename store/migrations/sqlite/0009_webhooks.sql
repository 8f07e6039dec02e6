-- Webhook subscriptions (a read model, rebuilt from the log like the others; the
-- signing secret is in the log only sealed, and not here at all).
CREATE TABLE rm_webhooks (
    webhook_id      TEXT PRIMARY KEY,
    url             TEXT    NOT NULL,
    description     TEXT    NOT NULL,
    format          TEXT    NOT NULL,
    -- JSON {event_types, environments, prompts, tags}.
    filter          TEXT    NOT NULL,
    enabled         INTEGER NOT NULL,
    disabled_reason TEXT,
    deleted         INTEGER NOT NULL,
    created_at      TEXT    NOT NULL,
    created_by      TEXT    NOT NULL,
    -- Events from here on are delivered to it.
    created_position INTEGER NOT NULL,
    last_position   INTEGER NOT NULL
);

-- The outbox: one row per event per matching webhook, written by the active projector
-- in the same transaction as the read models, so an event is enqueued exactly once.
-- Beside the log, not in it: never exported, never rebuilt. Times are milliseconds
-- since the Unix epoch.
CREATE TABLE webhook_deliveries (
    -- The `webhook-id` header: the same on every attempt, so receivers de-duplicate.
    delivery_id     TEXT PRIMARY KEY,
    webhook_id      TEXT    NOT NULL,
    -- The event's position (the log's head for a test ping); deliveries to one webhook
    -- go out in this order.
    position        INTEGER NOT NULL,
    event_type      TEXT    NOT NULL,
    body            TEXT    NOT NULL,
    -- pending, delivered or failed.
    status          TEXT    NOT NULL,
    attempts        INTEGER NOT NULL,
    created_ms      INTEGER NOT NULL,
    next_attempt_ms INTEGER NOT NULL,
    finished_ms     INTEGER,
    last_status     INTEGER,
    last_error      TEXT
);
CREATE INDEX webhook_deliveries_queue ON webhook_deliveries (status, webhook_id, position);
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook_id, position);

-- Every attempt, for the delivery log.
CREATE TABLE webhook_attempts (
    delivery_id TEXT    NOT NULL,
    attempt     INTEGER NOT NULL,
    at_ms       INTEGER NOT NULL,
    status_code INTEGER,
    latency_ms  INTEGER NOT NULL,
    error       TEXT,
    -- The start of the response body (at most 1 KB).
    response    TEXT,
    PRIMARY KEY (delivery_id, attempt)
);
