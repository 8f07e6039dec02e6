//! The fleet: what each running SDK instance last reported it serves, and since when.
//!
//! Telemetry, not audit: reports never enter the event log. They are kept in memory,
//! where a report is taken in at once, and written behind to `fleet_instances`
//! ([`promptos_store::fleet`]), all reports since the last write in one transaction,
//! every [`FLUSH_EVERY`], so that a
//! restart or a second server on the same database sees the same fleet (a second server
//! sees another's reports within that interval).
//!
//! Convergence is measured on the server's clock, which is also the clock of the log:
//! from the commit of a change to the arrival of the first report of each instance that
//! serves it. An instance's own clock is never compared with ours.

use crate::metrics::Metrics;
use promptos_core::fleet::{FleetReport, MISSED_HEARTBEATS};
use promptos_core::wire::ChangeMessage;
use promptos_store::fleet::{self as table, Recorded};
use promptos_store::Db;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often reports taken in are written to the table.
pub const FLUSH_EVERY: Duration = Duration::from_millis(250);
/// How long the table keeps an instance after it is gone (its id stays taken so long).
const FORGET_AFTER_MS: i64 = 10 * 60 * 1000;
/// Reports one instance may send in a burst, and per second after it.
const BURST: f64 = 40.0;
const PER_SECOND: f64 = 20.0;

/// Since when an instance serves what it serves, as the server saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    pub prompt: String,
    pub environment: String,
    pub version_string: String,
    pub experiment_id: Option<String>,
    /// Arrival (epoch ms) of the first report that showed this version served.
    pub since_ms: i64,
    /// The instance did not hold the prompt before (a first fetch, not an applied
    /// change): it says nothing about how fast a change reached it.
    pub first_load: bool,
}

/// What the table keeps per instance: the last report and the server's acknowledgements.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InstanceRecord {
    pub report: FleetReport,
    pub acks: Vec<Ack>,
    /// When the server first heard of the instance (epoch ms).
    pub first_seen_ms: i64,
}

/// One live instance, as the HTTP handlers read it.
#[derive(Debug, Clone)]
pub struct Instance {
    pub owner: String,
    pub record: InstanceRecord,
    pub last_seen_ms: i64,
    pub expires_at_ms: i64,
}

impl Instance {
    pub fn ack(&self, prompt: &str, environment: &str) -> Option<&Ack> {
        self.record.acks.iter().find(|a| a.prompt == prompt && a.environment == environment)
    }
}

/// Why a report was not taken.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("instance {0:?} is reported by another credential")]
    OwnedByAnother(String),
    #[error("this instance reports too often; retry in {0} seconds")]
    TooOften(u64),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

struct Tracked {
    instance: Instance,
    /// Report allowance (a token bucket) and when it was last topped up.
    tokens: f64,
    topped_at_ms: i64,
    /// Taken in since the last write to the table.
    dirty: bool,
}

/// The newest change to one (prompt, environment) this server has seen.
#[derive(Debug, Clone)]
struct LatestChange {
    version_string: Option<String>,
    at_ms: i64,
}

#[derive(Clone)]
pub struct Fleet(Arc<Shared>);

struct Shared {
    db: Db,
    metrics: Arc<Metrics>,
    instances: Mutex<HashMap<String, Tracked>>,
    latest: Mutex<HashMap<(String, String), LatestChange>>,
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Milliseconds since the epoch of an RFC 3339 time; None if it is not one.
pub fn epoch_ms(rfc3339: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(rfc3339).ok().map(|t| t.timestamp_millis())
}

/// An epoch-ms time as RFC 3339 with milliseconds.
pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Fleet {
    /// Starts the write-behind to the table and the watch on changes (for the
    /// convergence histogram).
    pub fn start(db: Db, metrics: Arc<Metrics>, changes: tokio::sync::broadcast::Receiver<Arc<ChangeMessage>>) -> Self {
        let fleet = Fleet(Arc::new(Shared {
            db,
            metrics,
            instances: Mutex::new(HashMap::new()),
            latest: Mutex::new(HashMap::new()),
        }));
        tokio::spawn(write_behind(Arc::downgrade(&fleet.0)));
        tokio::spawn(watch_changes(Arc::downgrade(&fleet.0), changes));
        fleet
    }

    /// Takes in a report sent by `owner` (the credential's actor, `api_key:<id>` or
    /// `user:<name>`), already validated and authorised.
    pub async fn report(&self, owner: String, report: FleetReport) -> Result<(), Refused> {
        let now = now_ms();
        let id = report.instance_id.clone();
        // Not in memory: the table may know it (a restart, or another server took its
        // earlier reports): its owner and acknowledgements carry over.
        let known = { self.0.instances.lock().expect("fleet lock").contains_key(&id) };
        let stored = if known { None } else { table::get(&self.0.db, &id).await? };
        let mut instances = self.0.instances.lock().expect("fleet lock");
        if let (false, Some(row)) = (instances.contains_key(&id), stored) {
            if let Ok(record) = serde_json::from_str::<InstanceRecord>(&row.report) {
                let instance = Instance {
                    owner: row.owner,
                    record,
                    last_seen_ms: row.last_seen_ms,
                    expires_at_ms: row.expires_at_ms,
                };
                instances.insert(id.clone(), Tracked { instance, tokens: BURST, topped_at_ms: now, dirty: false });
            }
        }
        let expires_at_ms = now + i64::from(report.heartbeat_seconds) * 1000 * i64::from(MISSED_HEARTBEATS);
        match instances.get_mut(&id) {
            Some(t) if t.instance.owner != owner => {
                return Err(Refused::OwnedByAnother(id));
            }
            Some(t) => {
                t.tokens = (t.tokens + (now - t.topped_at_ms) as f64 / 1000.0 * PER_SECOND).min(BURST);
                t.topped_at_ms = now;
                if t.tokens < 1.0 {
                    return Err(Refused::TooOften(1));
                }
                t.tokens -= 1.0;
                let previous = std::mem::take(&mut t.instance.record.acks);
                let acks = acknowledge(&previous, &report, now);
                self.observe_convergence(&acks, &previous, now);
                t.instance.owner = owner;
                t.instance.record.acks = acks;
                t.instance.record.report = report;
                t.instance.last_seen_ms = now;
                t.instance.expires_at_ms = expires_at_ms;
                t.dirty = true;
            }
            None => {
                let acks = acknowledge(&[], &report, now);
                let record = InstanceRecord { report, acks, first_seen_ms: now };
                let instance = Instance { owner, record, last_seen_ms: now, expires_at_ms };
                instances.insert(id, Tracked { instance, tokens: BURST - 1.0, topped_at_ms: now, dirty: true });
            }
        }
        Ok(())
    }

    /// Counts how long each newly applied change took to reach this instance.
    fn observe_convergence(&self, acks: &[Ack], previous: &[Ack], now: i64) {
        let latest = self.0.latest.lock().expect("fleet lock");
        for ack in acks.iter().filter(|a| a.since_ms == now && !a.first_load) {
            let Some(change) = latest.get(&(ack.prompt.clone(), ack.environment.clone())) else { continue };
            let was = previous.iter().find(|p| p.prompt == ack.prompt && p.environment == ack.environment);
            if change.version_string.as_deref() == Some(&ack.version_string) && was.is_some() {
                let ms = (now - change.at_ms).max(0);
                self.0.metrics.observe_convergence(ms as f64 / 1000.0);
            }
        }
    }

    /// Every live instance: this server's own reports, and those another server wrote
    /// to the table.
    pub async fn live(&self) -> Result<Vec<Instance>, sqlx::Error> {
        let now = now_ms();
        let rows = table::live(&self.0.db, now).await?;
        let instances = self.0.instances.lock().expect("fleet lock");
        let mut out: HashMap<String, Instance> = instances
            .iter()
            .filter(|(_, t)| t.instance.expires_at_ms > now)
            .map(|(id, t)| (id.clone(), t.instance.clone()))
            .collect();
        for row in rows {
            let newer = out.get(&row.instance_id).is_none_or(|mine| mine.last_seen_ms < row.last_seen_ms);
            if !newer || instances.get(&row.instance_id).is_some_and(|t| t.dirty) {
                continue;
            }
            let Ok(record) = serde_json::from_str::<InstanceRecord>(&row.report) else { continue };
            out.insert(
                row.instance_id,
                Instance { owner: row.owner, record, last_seen_ms: row.last_seen_ms, expires_at_ms: row.expires_at_ms },
            );
        }
        let mut out: Vec<Instance> = out.into_values().collect();
        out.sort_by(|a, b| {
            (a.record.report.app_name.as_deref(), &a.record.report.host, a.record.report.pid).cmp(&(
                b.record.report.app_name.as_deref(),
                &b.record.report.host,
                b.record.report.pid,
            ))
        });
        Ok(out)
    }

    /// Writes what was taken in since the last flush; forgets instances long gone.
    async fn flush(&self) -> Result<(), sqlx::Error> {
        let now = now_ms();
        let dirty: Vec<(String, Instance)> = {
            let mut instances = self.0.instances.lock().expect("fleet lock");
            instances.retain(|_, t| t.dirty || t.instance.expires_at_ms > now);
            instances
                .iter_mut()
                .filter(|(_, t)| t.dirty)
                .map(|(id, t)| {
                    t.dirty = false;
                    (id.clone(), t.instance.clone())
                })
                .collect()
        };
        if !dirty.is_empty() {
            let json: Vec<String> =
                dirty.iter().map(|(_, i)| serde_json::to_string(&i.record).expect("a record serializes")).collect();
            let reports: Vec<table::Report<'_>> = dirty
                .iter()
                .zip(&json)
                .map(|((id, i), report)| table::Report {
                    instance_id: id,
                    owner: &i.owner,
                    report,
                    last_seen_ms: i.last_seen_ms,
                    expires_at_ms: i.expires_at_ms,
                })
                .collect();
            match table::record_all(&self.0.db, &reports).await {
                Ok(outcomes) => {
                    for ((id, _), outcome) in dirty.iter().zip(outcomes) {
                        if outcome == Recorded::OwnedByAnother {
                            tracing::warn!(instance = %id, "another server took this instance id first; not stored");
                        }
                    }
                }
                Err(e) => {
                    // Written with the next flush (unless a newer report is already).
                    let mut instances = self.0.instances.lock().expect("fleet lock");
                    for (id, _) in &dirty {
                        if let Some(t) = instances.get_mut(id) {
                            t.dirty = true;
                        }
                    }
                    return Err(e);
                }
            }
        }
        table::forget_gone(&self.0.db, now - FORGET_AFTER_MS).await?;
        Ok(())
    }
}

/// What the instance serves now, each with the arrival of the first report that showed
/// it (carried over from `previous` while the version stays the same).
fn acknowledge(previous: &[Ack], report: &FleetReport, now: i64) -> Vec<Ack> {
    report
        .serving
        .iter()
        .map(|s| {
            let was = previous.iter().find(|p| p.prompt == s.prompt && p.environment == s.environment);
            match was {
                Some(p) if p.version_string == s.version_string && p.experiment_id == s.experiment_id => p.clone(),
                _ => Ack {
                    prompt: s.prompt.clone(),
                    environment: s.environment.clone(),
                    version_string: s.version_string.clone(),
                    experiment_id: s.experiment_id.clone(),
                    since_ms: now,
                    first_load: was.is_none(),
                },
            }
        })
        .collect()
}

async fn write_behind(fleet: std::sync::Weak<Shared>) {
    let mut tick = tokio::time::interval(FLUSH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(shared) = fleet.upgrade() else { return };
        if let Err(e) = Fleet(shared).flush().await {
            tracing::debug!(error = %e, "cannot write the fleet table; will retry");
        }
    }
}

async fn watch_changes(
    fleet: std::sync::Weak<Shared>,
    mut changes: tokio::sync::broadcast::Receiver<Arc<ChangeMessage>>,
) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        let change = match changes.recv().await {
            Ok(c) => c,
            Err(RecvError::Lagged(_)) => continue,
            Err(RecvError::Closed) => return,
        };
        // A change to an included prompt leaves the includer's version as it is.
        if change.event_type == "IncludeChanged" {
            continue;
        }
        let Some(shared) = fleet.upgrade() else { return };
        let at_ms = epoch_ms(&change.at).unwrap_or_else(now_ms);
        shared.latest.lock().expect("fleet lock").insert(
            (change.prompt.clone(), change.environment.clone()),
            LatestChange { version_string: change.version_string.clone(), at_ms },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use promptos_core::fleet::Serving;

    fn report(serving: &[(&str, &str)]) -> FleetReport {
        FleetReport {
            instance_id: "instance-1".into(),
            app_name: None,
            host: "h".into(),
            pid: 1,
            sdk: "rust".into(),
            sdk_version: "0".into(),
            started_at: "2026-12-05T12:00:00Z".into(),
            heartbeat_seconds: 15,
            applied_position: 1,
            stale: false,
            serving: serving
                .iter()
                .map(|(p, v)| Serving {
                    prompt: (*p).into(),
                    environment: "production".into(),
                    version_string: (*v).into(),
                    experiment_id: None,
                    applied_at: "2026-12-05T12:00:00Z".into(),
                })
                .collect(),
        }
    }

    #[test]
    fn an_acknowledgement_keeps_its_time_until_the_version_changes() {
        let first = acknowledge(&[], &report(&[("a", "v1"), ("b", "v1")]), 100);
        assert!(first.iter().all(|a| a.since_ms == 100 && a.first_load));
        let second = acknowledge(&first, &report(&[("a", "v1"), ("b", "v2"), ("c", "v1")]), 200);
        assert_eq!((second[0].since_ms, second[0].first_load), (100, true));
        assert_eq!((second[1].since_ms, second[1].first_load), (200, false), "b changed: an applied change");
        assert_eq!((second[2].since_ms, second[2].first_load), (200, true), "c is new: a first load");
    }
}
