-- What each running SDK instance last reported it serves (POST /fleet/reports).
-- Telemetry beside the log, not in it: never exported, never part of a rebuild. Times
-- are milliseconds since the Unix epoch, so both databases compare them alike.
CREATE TABLE fleet_instances (
    instance_id   TEXT PRIMARY KEY,
    -- Who first reported as this instance (API key id or user); nobody else may.
    owner         TEXT NOT NULL,
    report        TEXT NOT NULL,
    last_seen_ms  BIGINT NOT NULL,
    -- After this the instance has missed its heartbeats and is gone.
    expires_at_ms BIGINT NOT NULL
);
CREATE INDEX fleet_instances_expiry ON fleet_instances (expires_at_ms);
