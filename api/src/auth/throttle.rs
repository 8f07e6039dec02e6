//! Slows down password guessing, without letting a stranger lock an account's owner out.
//!
//! Every password check is counted as an attempt *before* the password is checked, in
//! one step with the check of whether the caller must wait: a burst of parallel guesses
//! cannot all slip through before the first failure is recorded. A success takes its
//! attempt back. Attempts are counted per (username, address) and per address: after
//! a few failures a further attempt must wait, twice as long each time. A stranger's
//! failures for `admin` from one address therefore never delay `admin` logging in from
//! another, and one address cannot guess many accounts quickly either. The same rule
//! applies whether or not the user exists, and guards the current-password check of a
//! password change.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures allowed for one username from one address before waits begin.
const FREE_FAILURES_PER_USER_AND_ADDRESS: u32 = 5;
/// Failures allowed from one address, whatever the usernames, before waits begin.
const FREE_FAILURES_PER_ADDRESS: u32 = 20;
const MAX_DELAY: Duration = Duration::from_secs(300);

#[derive(Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

pub struct LoginThrottle {
    /// Check-and-count happens under this lock, so that it is one step.
    failures: Mutex<moka::sync::Cache<String, Failures>>,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        Self {
            failures: Mutex::new(
                moka::sync::Cache::builder().max_capacity(100_000).time_to_idle(Duration::from_secs(15 * 60)).build(),
            ),
        }
    }
}

/// A counted attempt: give it back with [`LoginThrottle::succeeded`] when the password
/// was right; dropped otherwise, it stays counted as a failure.
#[must_use]
pub struct Attempt {
    keys: [String; 2],
}

fn keys(username: &str, address: &str) -> [(String, u32); 2] {
    [
        (format!("user:{username}\naddr:{address}"), FREE_FAILURES_PER_USER_AND_ADDRESS),
        (format!("addr:{address}"), FREE_FAILURES_PER_ADDRESS),
    ]
}

impl LoginThrottle {
    /// Counts an attempt for `username` from `address`, or says how long the caller
    /// must still wait (and counts nothing).
    pub fn begin(&self, username: &str, address: &str) -> Result<Attempt, Duration> {
        let now = Instant::now();
        let failures = self.failures.lock().expect("throttle lock");
        let keys = keys(username, address);
        let wait = keys
            .iter()
            .filter_map(|(key, free)| {
                let f = failures.get(key)?;
                let over = f.count.checked_sub(*free)?;
                let delay = Duration::from_secs(1u64 << over.min(16)).min(MAX_DELAY);
                delay.checked_sub(now.duration_since(f.last)).filter(|d| !d.is_zero())
            })
            .max();
        if let Some(wait) = wait {
            return Err(wait);
        }
        for (key, _) in &keys {
            let count = failures.get(key).map_or(0, |f| f.count);
            failures.insert(key.clone(), Failures { count: count + 1, last: now });
        }
        Ok(Attempt { keys: keys.map(|(key, _)| key) })
    }

    /// The password was right: the pair's failures are forgotten, and the attempt no
    /// longer counts against the address.
    pub fn succeeded(&self, attempt: Attempt) {
        let failures = self.failures.lock().expect("throttle lock");
        let [pair, address] = attempt.keys;
        failures.invalidate(&pair);
        if let Some(f) = failures.get(&address) {
            failures.insert(address, Failures { count: f.count.saturating_sub(1), ..f });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_beyond_the_free_ones_impose_a_growing_wait() {
        let t = LoginThrottle::default();
        for _ in 0..FREE_FAILURES_PER_USER_AND_ADDRESS {
            drop(t.begin("bob", "1.2.3.4").expect("the first failures are free"));
        }
        let wait = t.begin("bob", "1.2.3.4").err().expect("throttled after the free failures");
        assert!(wait <= Duration::from_secs(1) && wait > Duration::ZERO);
        assert!(t.begin("carol", "1.2.3.4").is_ok(), "another user from the same address is not delayed yet");
        assert!(t.begin("bob", "5.6.7.8").is_ok(), "the same user from another address is not delayed");
    }

    #[test]
    fn a_success_forgets_the_failures_of_its_pair() {
        let t = LoginThrottle::default();
        for _ in 0..FREE_FAILURES_PER_USER_AND_ADDRESS - 1 {
            drop(t.begin("bob", "1.2.3.4").unwrap());
        }
        t.succeeded(t.begin("bob", "1.2.3.4").unwrap());
        for _ in 0..FREE_FAILURES_PER_USER_AND_ADDRESS {
            drop(t.begin("bob", "1.2.3.4").expect("free again after a success"));
        }
    }

    #[test]
    fn one_address_cannot_guess_many_accounts_quickly() {
        let t = LoginThrottle::default();
        for i in 0..FREE_FAILURES_PER_ADDRESS {
            drop(t.begin(&format!("user{i}"), "6.6.6.6").unwrap());
        }
        assert!(t.begin("someone-else", "6.6.6.6").is_err());
        assert!(t.begin("someone-else", "7.7.7.7").is_ok());
    }
}
