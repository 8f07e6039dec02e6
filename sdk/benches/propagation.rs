//! Propagation: time from a deploy's HTTP response to the moment a subscribed SDK
//! returns the new text, over NATS and over SSE. Target: p99 ≤ 10 ms on loopback.
//! `PROMPTOS_BENCH_DEPLOYS` sets the number of deploys (default 1000).

#[path = "../tests/common/mod.rs"]
mod common;

use promptos_sdk::{minijinja::context, Prompts};
use std::time::{Duration, Instant};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "propagation over {name:<4}: n={} p50={:.2} ms p99={:.2} ms max={:.2} ms",
        samples.len(),
        ms(percentile(&samples, 0.50)),
        ms(percentile(&samples, 0.99)),
        ms(*samples.last().unwrap())
    );
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let deploys: usize = std::env::var("PROMPTOS_BENCH_DEPLOYS").ok().and_then(|v| v.parse().ok()).unwrap_or(1000);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async move {
        let nats = common::Nats::start();
        let server = common::Server::start(Some(nats.url())).await;
        server.prompt("bench", "Hello {{ who }}", 2, &["production"]).await;
        let key = server.api_key(&["production"]).await;
        let ttl = Duration::from_secs(10 * 3600);
        let over_nats =
            Prompts::connect(&server.base).api_key(&key).nats_url(nats.url()).ttl(ttl).build().await.unwrap();
        let over_sse = Prompts::connect(&server.base).api_key(&key).ttl(ttl).build().await.unwrap();
        // on_change fires once the client's cache holds the new version: timestamp there
        // instead of busy-polling, which would steal a core from the server.
        let (nats_tx, mut nats_seen) = tokio::sync::mpsc::unbounded_channel();
        let (sse_tx, mut sse_seen) = tokio::sync::mpsc::unbounded_channel();
        over_nats.on_change(move |c| {
            let _ = nats_tx.send((Instant::now(), c.position));
        });
        over_sse.on_change(move |c| {
            let _ = sse_tx.send((Instant::now(), c.position));
        });
        for p in [&over_nats, &over_sse] {
            p.get("bench", "production", context! { who => "x" }).await.unwrap();
        }
        // Let both subscriptions settle before measuring.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (mut nats_samples, mut sse_samples) = (Vec::new(), Vec::new());
        for i in 0..deploys {
            let version = if i % 2 == 0 { "v2" } else { "v1" };
            let expected = format!("Hello x {version}");
            let deployed = server.deploy("bench", "production", version).await;
            let sent = Instant::now();
            let position = deployed["position"].as_i64().unwrap();
            for (seen, samples) in [(&mut nats_seen, &mut nats_samples), (&mut sse_seen, &mut sse_samples)] {
                loop {
                    let (at, p) = tokio::time::timeout(Duration::from_secs(10), seen.recv())
                        .await
                        .unwrap_or_else(|_| panic!("deploy {i} did not propagate"))
                        .unwrap();
                    if p == position {
                        samples.push(at.saturating_duration_since(sent));
                        break;
                    }
                }
            }
            for p in [&over_nats, &over_sse] {
                assert_eq!(p.get("bench", "production", context! { who => "x" }).await.unwrap(), expected);
            }
        }
        report("NATS", nats_samples);
        report("SSE", sse_samples);
    });
}
