//! Slows down password guessing: after a few failures for a username (or from an
//! address), each further attempt must wait, twice as long each time. The same rule
//! applies whether or not the user exists.

use std::sync::Mutex;
use std::time::{Duration, Instant};

const FREE_FAILURES_PER_USER: u32 = 5;
const FREE_FAILURES_PER_ADDRESS: u32 = 20;
const MAX_DELAY: Duration = Duration::from_secs(300);

#[derive(Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

pub struct LoginThrottle {
    failures: moka::sync::Cache<String, std::sync::Arc<Mutex<Failures>>>,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        Self {
            failures: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_idle(Duration::from_secs(15 * 60))
                .build(),
        }
    }
}

fn keys(username: &str, address: &str) -> [(String, u32); 2] {
    [(format!("user:{username}"), FREE_FAILURES_PER_USER), (format!("addr:{address}"), FREE_FAILURES_PER_ADDRESS)]
}

impl LoginThrottle {
    /// How long the caller must still wait before trying again, if at all.
    pub fn wait(&self, username: &str, address: &str) -> Option<Duration> {
        let now = Instant::now();
        keys(username, address)
            .into_iter()
            .filter_map(|(key, free)| {
                let f = *self.failures.get(&key)?.lock().expect("throttle lock");
                let over = f.count.checked_sub(free)?;
                let delay = Duration::from_secs(1u64 << over.min(16)).min(MAX_DELAY);
                delay.checked_sub(now.duration_since(f.last)).filter(|d| !d.is_zero())
            })
            .max()
    }

    pub fn failed(&self, username: &str, address: &str) {
        for (key, _) in keys(username, address) {
            let entry = self
                .failures
                .get_with(key, || std::sync::Arc::new(Mutex::new(Failures { count: 0, last: Instant::now() })));
            let mut f = entry.lock().expect("throttle lock");
            f.count += 1;
            f.last = Instant::now();
        }
    }

    pub fn succeeded(&self, username: &str) {
        self.failures.invalidate(&format!("user:{username}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_beyond_the_free_ones_impose_a_growing_wait() {
        let t = LoginThrottle::default();
        for _ in 0..FREE_FAILURES_PER_USER {
            assert_eq!(t.wait("bob", "1.2.3.4"), None, "the first failures are free");
            t.failed("bob", "1.2.3.4");
        }
        let wait = t.wait("bob", "1.2.3.4").expect("throttled after the free failures");
        assert!(wait <= Duration::from_secs(1) && wait > Duration::ZERO);
        t.failed("bob", "1.2.3.4");
        let wait = t.wait("bob", "1.2.3.4").expect("throttled");
        assert!(wait > Duration::from_secs(1) && wait <= Duration::from_secs(2), "the wait doubles");
        assert_eq!(t.wait("carol", "5.6.7.8"), None, "other users and addresses are not affected");
        t.succeeded("bob");
        assert_eq!(t.wait("bob", "9.9.9.9"), None);
    }
}
