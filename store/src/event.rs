//! One event as the log stores it, and the hash chain that links each to the one before.

use chrono::Utc;
use promptos_core::events::{DecodeError, Event};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The hash the first event in the log points back to.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Who caused an event and in answer to which request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// `user:<name>`, `api_key:<id>`, `system` or `anonymous`.
    pub actor: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The change request whose apply produced the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_request: Option<String>,
    /// An admin changed an environment that needs a change request directly, with
    /// `force`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub forced: bool,
}

impl Metadata {
    pub fn new(actor: impl Into<String>) -> Self {
        Self { actor: actor.into(), request_id: None, change_request: None, forced: false }
    }
}

/// One row of the log, exactly as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct StoredEvent {
    pub position: i64,
    pub stream_id: String,
    pub stream_version: i64,
    pub event_id: String,
    pub event_type: String,
    pub payload: String,
    pub metadata: String,
    pub recorded_at: String,
    pub prev_hash: String,
    pub hash: String,
}

/// The log's columns, in the order [`StoredEvent`] has them.
pub const EVENT_COLUMNS: &str = "position, stream_id, stream_version, event_id, event_type, \
     payload, metadata, recorded_at, prev_hash, hash";

impl StoredEvent {
    pub fn decode(&self) -> Result<Event, DecodeError> {
        Event::decode(&self.event_type, &self.payload)
    }

    pub fn metadata(&self) -> Metadata {
        serde_json::from_str(&self.metadata).unwrap_or_else(|_| Metadata::new("unknown"))
    }

    /// The row's values in [`EVENT_COLUMNS`] order, for bulk inserts.
    pub fn cells(&self) -> Vec<crate::bulk::Cell> {
        use crate::bulk::Cell::*;
        vec![
            Int(self.position),
            Text(self.stream_id.clone()),
            Int(self.stream_version),
            Text(self.event_id.clone()),
            Text(self.event_type.clone()),
            Text(self.payload.clone()),
            Text(self.metadata.clone()),
            Text(self.recorded_at.clone()),
            Text(self.prev_hash.clone()),
            Text(self.hash.clone()),
        ]
    }

    /// The hash this row should carry, given its content and `prev_hash`.
    pub fn expected_hash(&self) -> String {
        chain_hash(
            &self.prev_hash,
            self.position,
            &self.stream_id,
            self.stream_version,
            &self.event_id,
            &self.event_type,
            &self.payload,
            &self.metadata,
            &self.recorded_at,
        )
    }
}

/// SHA-256 over the previous hash and every stored field, each length-prefixed so that
/// no two different rows hash the same bytes.
#[allow(clippy::too_many_arguments)]
pub fn chain_hash(
    prev_hash: &str,
    position: i64,
    stream_id: &str,
    stream_version: i64,
    event_id: &str,
    event_type: &str,
    payload: &str,
    metadata: &str,
    recorded_at: &str,
) -> String {
    let mut h = Sha256::new();
    let position = position.to_string();
    let stream_version = stream_version.to_string();
    for field in
        [prev_hash, &position, stream_id, &stream_version, event_id, event_type, payload, metadata, recorded_at]
    {
        h.update((field.len() as u64).to_le_bytes());
        h.update(field.as_bytes());
    }
    hex::encode(h.finalize())
}

/// Timestamps are stored as fixed-width UTC text so that they sort and compare the same
/// way on both databases (and hash the same bytes).
pub fn format_timestamp(t: chrono::DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}
