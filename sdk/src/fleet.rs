//! Telling the server what this instance serves (`POST /fleet/reports`), so that the
//! fleet view shows which version each running application holds and how fast a
//! deployment reached it. On start, right after applied changes (a burst of them sends
//! one report), and as a jittered heartbeat. A failed report never affects `get`; the
//! next heartbeat or change tries again.

use crate::cache::Inner;
use promptos_core::fleet::{FleetReport, Serving, MAX_SERVING};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};
use tokio::sync::Notify;
use tokio::time::Instant;

/// How long after a change the report waits for more changes of the same burst.
const COALESCE: Duration = Duration::from_millis(10);
/// Least time between two reports (the server accepts bursts of 40, then 20 a second).
const MIN_INTERVAL: Duration = Duration::from_millis(50);

/// Who this process is, as the fleet view shows it.
pub(crate) struct Identity {
    pub instance_id: String,
    pub app_name: Option<String>,
    pub host: String,
    pub pid: u32,
    pub sdk: String,
    pub sdk_version: String,
    pub started_at: String,
    pub heartbeat: Duration,
}

impl Identity {
    pub(crate) fn new(app_name: Option<String>, sdk: (String, String), heartbeat: Duration) -> Self {
        Self {
            instance_id: uuid::Uuid::new_v4().to_string(),
            app_name,
            host: host_name(),
            pid: std::process::id(),
            sdk: sdk.0,
            sdk_version: sdk.1,
            started_at: rfc3339(SystemTime::now()),
            heartbeat,
        }
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .filter(|h| !h.is_empty())
        .map(|h| h.chars().filter(|c| !c.is_control()).take(255).collect())
        .unwrap_or_else(|| "unknown".into())
}

pub(crate) fn rfc3339(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The report as of now.
pub(crate) fn report(inner: &Inner, identity: &Identity) -> FleetReport {
    let mut serving = Vec::new();
    let mut position = inner.last_position.load(Ordering::Relaxed);
    let mut stale = inner.stale.load(Ordering::Relaxed);
    for (_, entry) in inner.cache.iter() {
        let t = &entry.compiled.template;
        position = position.max(t.position);
        stale |= entry.is_stale();
        serving.push(Serving {
            prompt: t.prompt_name.clone(),
            environment: t.environment.clone(),
            version_string: t.version_string.clone(),
            experiment_id: t.experiment.as_ref().map(|x| x.experiment_id.clone()),
            applied_at: rfc3339(entry.applied_at()),
        });
    }
    // The server takes at most MAX_SERVING entries; a bigger cache reports a part.
    serving.sort_by(|a, b| (&a.environment, &a.prompt).cmp(&(&b.environment, &b.prompt)));
    serving.truncate(MAX_SERVING);
    FleetReport {
        instance_id: identity.instance_id.clone(),
        app_name: identity.app_name.clone(),
        host: identity.host.clone(),
        pid: identity.pid,
        sdk: identity.sdk.clone(),
        sdk_version: identity.sdk_version.clone(),
        started_at: identity.started_at.clone(),
        heartbeat_seconds: identity.heartbeat.as_secs().clamp(1, 3_600) as u32,
        applied_position: position,
        stale,
        serving,
    }
}

/// Reports on start, after changes (the cache wakes it through `wake`) and on every
/// heartbeat, until the client is dropped.
pub(crate) async fn keep_reporting(weak: Weak<Inner>, identity: Identity, wake: Arc<Notify>) {
    let mut jitter = Jitter::new();
    let mut warned = false;
    let mut next_heartbeat = Instant::now();
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(next_heartbeat) => {}
            _ = wake.notified() => {
                // Let the rest of a burst of changes arrive, then report them at once.
                tokio::time::sleep(COALESCE).await;
                let _ = futures::FutureExt::now_or_never(wake.notified());
            }
        }
        let Some(inner) = weak.upgrade() else { return };
        let report = report(&inner, &identity);
        let heartbeat = identity.heartbeat;
        let request = inner.http.post(format!("{}/fleet/reports", inner.base)).json(&report);
        drop(inner);
        let sent = Instant::now();
        match request.send().await {
            Ok(r) if r.status().is_success() => {}
            Ok(r) if r.status().is_client_error() && r.status() != reqwest::StatusCode::TOO_MANY_REQUESTS => {
                let status = r.status();
                let body = r.text().await.unwrap_or_default();
                if !warned {
                    warned = true;
                    tracing::warn!(%status, %body, "the server refused this instance's fleet report; `get` is not affected");
                }
            }
            Ok(r) => tracing::debug!(status = %r.status(), "fleet report not taken; retrying with the next heartbeat"),
            Err(e) => tracing::debug!(error = %e, "cannot send the fleet report; retrying with the next heartbeat"),
        }
        next_heartbeat = Instant::now() + jitter.shorten(heartbeat);
        tokio::time::sleep_until(sent + MIN_INTERVAL).await;
    }
}

/// Heartbeats between 80 % and 100 % of the configured interval, so that instances
/// started together do not report together (and never later than announced).
struct Jitter(u64);

impl Jitter {
    fn new() -> Self {
        let seed = uuid::Uuid::new_v4().as_u64_pair().0;
        Self(seed | 1)
    }

    fn shorten(&mut self, d: Duration) -> Duration {
        // xorshift64: plenty for spreading heartbeats.
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        let fraction = 0.8 + 0.2 * (self.0 % 10_000) as f64 / 10_000.0;
        d.mul_f64(fraction)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeats_are_shortened_by_at_most_a_fifth() {
        let mut j = Jitter::new();
        let d = Duration::from_secs(15);
        let all: Vec<Duration> = (0..1000).map(|_| j.shorten(d)).collect();
        assert!(all.iter().all(|x| *x >= d.mul_f64(0.8) && *x <= d));
        assert!(all.iter().any(|x| *x < d.mul_f64(0.9)) && all.iter().any(|x| *x > d.mul_f64(0.9)));
    }

    #[test]
    fn an_identity_names_this_process() {
        let id = Identity::new(Some("chatbot".into()), ("rust".into(), "0.1.0".into()), Duration::from_secs(15));
        assert_eq!(id.pid, std::process::id());
        assert_eq!(id.instance_id.len(), 36);
        assert!(!id.host.is_empty());
        assert!(chrono::DateTime::parse_from_rfc3339(&id.started_at).is_ok());
    }
}
