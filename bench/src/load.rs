//! A closed-loop load generator: `connections` keep-alive HTTP/1.1 connections, each
//! sending its next request as soon as the last one answered, for `duration`. Every
//! latency goes into an HDR histogram (microsecond resolution).

use anyhow::Result;
use hdrhistogram::Histogram;
use std::future::Future;
use std::time::{Duration, Instant};

pub struct Load {
    pub ok: u64,
    pub failed: u64,
    /// The first failure, to show why.
    pub first_failure: Option<String>,
    pub elapsed: Duration,
    pub latency: Histogram<u64>,
}

impl Load {
    pub fn per_second(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }

    /// The `q` quantile of latency, in milliseconds.
    pub fn ms(&self, q: f64) -> f64 {
        self.latency.value_at_quantile(q) as f64 / 1000.0
    }
}

/// One client per connection, so that each connection is its own keep-alive socket.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder().pool_max_idle_per_host(1).http1_only().build().expect("a reqwest client")
}

/// Runs the load. `connection(c)` makes connection `c`'s request function, which sends
/// its request number `i` and says whether it succeeded (`Err` carries the reason).
pub async fn run<F, G, Fut>(connections: usize, duration: Duration, connection: F) -> Result<Load>
where
    F: Fn(usize) -> G,
    G: FnMut(u64) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), String>> + Send,
{
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::new();
    for c in 0..connections {
        let mut request = connection(c);
        tasks.push(tokio::spawn(async move {
            let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds");
            let (mut ok, mut failed, mut first_failure) = (0u64, 0u64, None);
            let mut i = 0;
            while Instant::now() < deadline {
                let t0 = Instant::now();
                match request(i).await {
                    Ok(()) => {
                        ok += 1;
                        h.saturating_record(t0.elapsed().as_micros() as u64);
                    }
                    Err(e) => {
                        failed += 1;
                        first_failure.get_or_insert(e);
                    }
                }
                i += 1;
            }
            (h, ok, failed, first_failure)
        }));
    }
    let mut load = Load {
        ok: 0,
        failed: 0,
        first_failure: None,
        elapsed: Duration::ZERO,
        latency: Histogram::new_with_bounds(1, 60_000_000, 3)?,
    };
    for t in tasks {
        let (h, ok, failed, first_failure) = t.await?;
        load.latency.add(h)?;
        load.ok += ok;
        load.failed += failed;
        if load.first_failure.is_none() {
            load.first_failure = first_failure;
        }
    }
    load.elapsed = start.elapsed();
    Ok(load)
}

/// A small, fast random number generator for choosing keys (xorshift64*).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n as u64) as usize
    }
}

/// Percentile of sorted samples.
pub fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * q).round() as usize]
}
