//! Crash points for fault tests, compiled only with the `failpoints` feature (the tests
//! turn it on; release builds leave it off, and then every point is an empty inline
//! function).
//!
//! `PROMPTOS_FAILPOINT=<name>` makes the process abort (no unwinding, no cleanup, as a
//! crash or `kill -9` would) the first time it reaches the point called `<name>`;
//! `<name>:<n>` aborts on the n-th time. Unset, a point costs one relaxed load. This is
//! for tests of crash recovery only and is not part of the documented configuration.
//!
//! `PROMPTOS_FAILPOINT=<name>:while:<path>` instead makes the point report a failure
//! (see [`fails`]) for as long as the file `<path>` exists, for tests of what a passing
//! error does.
//!
//! Points:
//! - `projector.after_commit`: the read models and their checkpoint are committed, the
//!   change feed for that batch is not yet published.
//! - `publisher.after_flush`: NATS has the batch's change messages, the feed's
//!   checkpoint has not moved yet.
//! - `follower.changes` (`while`): computing a batch's change messages fails.

#[cfg(feature = "failpoints")]
mod armed {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;

    enum Armed {
        /// Abort on the n-th hit.
        Abort(u64),
        /// Report a failure while this file exists.
        While(std::path::PathBuf),
    }

    static CONFIG: OnceLock<Option<(String, Armed)>> = OnceLock::new();
    static HITS: AtomicU64 = AtomicU64::new(0);

    fn config() -> &'static Option<(String, Armed)> {
        CONFIG.get_or_init(|| {
            let value = std::env::var("PROMPTOS_FAILPOINT").ok()?;
            Some(match value.split_once(':') {
                Some((name, rest)) => match rest.strip_prefix("while:") {
                    Some(path) => (name.to_owned(), Armed::While(path.into())),
                    None => (name.to_owned(), Armed::Abort(rest.parse().unwrap_or(1).max(1))),
                },
                None => (value, Armed::Abort(1)),
            })
        })
    }

    /// Aborts the process if the failpoint `name` is armed and due.
    pub fn hit(name: &str) {
        if let Some((armed, Armed::Abort(nth))) = config() {
            if armed == name && HITS.fetch_add(1, Ordering::Relaxed) + 1 == *nth {
                eprintln!("failpoint {name} reached: aborting");
                std::process::abort();
            }
        }
    }

    /// Whether the failpoint `name` asks its caller to fail now.
    pub fn fails(name: &str) -> bool {
        match config() {
            Some((armed, Armed::While(path))) if armed == name => path.exists(),
            _ => false,
        }
    }
}

#[cfg(feature = "failpoints")]
pub use armed::{fails, hit};

/// Aborts the process if the failpoint `name` is armed and due (never, in this build).
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn hit(_name: &str) {}

/// Whether the failpoint `name` asks its caller to fail now (never, in this build).
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn fails(_name: &str) -> bool {
    false
}
