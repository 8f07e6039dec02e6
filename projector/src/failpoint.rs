//! Crash points for fault tests.
//!
//! `PROMPTOS_FAILPOINT=<name>` makes the process abort (no unwinding, no cleanup, as a
//! crash or `kill -9` would) the first time it reaches the point called `<name>`;
//! `<name>:<n>` aborts on the n-th time. Unset, a point costs one relaxed load. This is
//! for tests of crash recovery only and is not part of the documented configuration.
//!
//! Points:
//! - `projector.after_commit`: the read models and their checkpoint are committed, the
//!   change feed for that batch is not yet published.
//! - `publisher.after_flush`: NATS has the batch's change messages, the feed's
//!   checkpoint has not moved yet.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

static CONFIG: OnceLock<Option<(String, u64)>> = OnceLock::new();
static HITS: AtomicU64 = AtomicU64::new(0);

fn config() -> &'static Option<(String, u64)> {
    CONFIG.get_or_init(|| {
        let value = std::env::var("PROMPTOS_FAILPOINT").ok()?;
        let (name, nth) = match value.split_once(':') {
            Some((name, n)) => (name.to_owned(), n.parse().unwrap_or(1)),
            None => (value, 1),
        };
        Some((name, nth.max(1)))
    })
}

/// Aborts the process if the failpoint `name` is armed and due.
pub fn hit(name: &str) {
    if let Some((armed, nth)) = config() {
        if armed == name && HITS.fetch_add(1, Ordering::Relaxed) + 1 == *nth {
            eprintln!("failpoint {name} reached: aborting");
            std::process::abort();
        }
    }
}
