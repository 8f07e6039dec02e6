//! The playground's cost guard: runs change nothing and are not audit events, but each
//! costs money, so every user has a number of runs per minute and a token budget per
//! hour (kept in this process's memory; a restart forgives).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

/// Why a run may not start now, and when it may.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "you started {0} playground runs in the last minute, the most allowed (PROMPTOS_PLAYGROUND_RUNS_PER_MINUTE)"
    )]
    TooManyRuns(u32, u64),
    #[error(
        "your playground runs used {0} tokens in the last hour, the most allowed (PROMPTOS_PLAYGROUND_TOKENS_PER_HOUR)"
    )]
    TokenBudget(u64, u64),
}

impl Refusal {
    /// Seconds until a run may start.
    pub fn retry_after(&self) -> u64 {
        match self {
            Refusal::TooManyRuns(_, s) | Refusal::TokenBudget(_, s) => *s,
        }
    }
}

#[derive(Default)]
struct Usage {
    runs: VecDeque<Instant>,
    tokens: VecDeque<(Instant, u64)>,
}

pub struct Limiter {
    runs_per_minute: u32,
    tokens_per_hour: u64,
    users: Mutex<HashMap<String, Usage>>,
}

impl Limiter {
    pub fn new(runs_per_minute: u32, tokens_per_hour: u64) -> Self {
        Self { runs_per_minute, tokens_per_hour, users: Mutex::default() }
    }

    /// Counts a run for `user` at `now`, or says why it may not start.
    pub fn start(&self, user: &str, now: Instant) -> Result<(), Refusal> {
        let mut users = self.users.lock().expect("limiter lock");
        let usage = users.entry(user.to_owned()).or_default();
        while usage.runs.front().is_some_and(|t| now.duration_since(*t) >= MINUTE) {
            usage.runs.pop_front();
        }
        while usage.tokens.front().is_some_and(|(t, _)| now.duration_since(*t) >= HOUR) {
            usage.tokens.pop_front();
        }
        let used: u64 = usage.tokens.iter().map(|(_, n)| n).sum();
        if used >= self.tokens_per_hour {
            let oldest = usage.tokens.front().map(|(t, _)| *t).unwrap_or(now);
            let wait = HOUR.saturating_sub(now.duration_since(oldest)).as_secs().max(1);
            return Err(Refusal::TokenBudget(used, wait));
        }
        if usage.runs.len() as u32 >= self.runs_per_minute {
            let oldest = usage.runs.front().copied().unwrap_or(now);
            let wait = MINUTE.saturating_sub(now.duration_since(oldest)).as_secs().max(1);
            return Err(Refusal::TooManyRuns(usage.runs.len() as u32, wait));
        }
        usage.runs.push_back(now);
        Ok(())
    }

    /// Records the tokens a finished run used.
    pub fn spent(&self, user: &str, tokens: u64, now: Instant) {
        let mut users = self.users.lock().expect("limiter lock");
        users.entry(user.to_owned()).or_default().tokens.push_back((now, tokens));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_limited_per_minute_and_tokens_per_hour_each_user_apart() {
        let limiter = Limiter::new(2, 1_000);
        let t0 = Instant::now();
        assert!(limiter.start("ada", t0).is_ok());
        assert!(limiter.start("ada", t0).is_ok());
        let refused = limiter.start("ada", t0 + Duration::from_secs(10)).unwrap_err();
        assert_eq!(refused, Refusal::TooManyRuns(2, 50));
        assert!(limiter.start("bob", t0).is_ok(), "another user has their own allowance");
        assert!(limiter.start("ada", t0 + MINUTE).is_ok(), "a minute later the first runs no longer count");
        limiter.spent("bob", 1_200, t0);
        assert!(matches!(limiter.start("bob", t0 + MINUTE), Err(Refusal::TokenBudget(1_200, _))));
        assert!(limiter.start("bob", t0 + HOUR).is_ok());
    }
}
