//! Fails fast while the database is down.
//!
//! When a request finds the database unreachable, the gate closes: every later API
//! request is answered at once with 503 and `Retry-After: 1` instead of waiting for a
//! connection that cannot come, so clients and load balancers learn of the outage in
//! milliseconds. A background probe pings the database a few times a second and opens
//! the gate again as soon as it answers; the connection pool reconnects by itself, so
//! the server recovers without a restart. Liveness, readiness and metrics stay open.
//! (The middleware that consults it is in `crate::http::metrics`.)

use promptos_store::Db;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How often the probe tries the database while the gate is closed.
const PROBE_EVERY: Duration = Duration::from_millis(250);
/// How long one probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

pub struct DbGate {
    db: Db,
    closed: AtomicBool,
    probing: AtomicBool,
}

impl DbGate {
    pub fn new(db: Db) -> Arc<Self> {
        Arc::new(Self { db, closed: AtomicBool::new(false), probing: AtomicBool::new(false) })
    }

    /// True while the database is known to be unreachable.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Records that the database was unreachable and starts the probe.
    pub fn close(self: &Arc<Self>) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            tracing::warn!("the database is unreachable; answering 503 until it is back");
        }
        if !self.probing.swap(true, Ordering::AcqRel) {
            tokio::spawn(probe(self.clone()));
        }
    }
}

async fn probe(gate: Arc<DbGate>) {
    loop {
        tokio::time::sleep(PROBE_EVERY).await;
        if let Ok(Ok(())) = tokio::time::timeout(PROBE_TIMEOUT, gate.db.ping()).await {
            gate.probing.store(false, Ordering::Release);
            gate.closed.store(false, Ordering::Release);
            tracing::info!("the database is reachable again");
            return;
        }
    }
}
