//! #6 fan-out (SSE clients and NATS SDKs) and #7 SDK propagation: how fast a deploy
//! reaches everyone subscribed.

use crate::database::Database;
use crate::load::{self, percentile};
use crate::procs::{Nats, Server};
use crate::table::{row, Row, Sizes};
use anyhow::{bail, Context, Result};
use futures::StreamExt;
use promptos_store::Backend;
use serde_json::json;
use std::time::{Duration, Instant};

/// Where observers report: (observer, position, when seen).
type Seen = tokio::sync::mpsc::UnboundedSender<(usize, i64, Instant)>;

async fn sse_observer(id: usize, url: String, key: String, seen: Seen, connected: Seen) -> Result<()> {
    let client = load::client();
    let r = client.get(url).header("X-API-Key", key).send().await?.error_for_status()?;
    let _ = connected.send((id, 0, Instant::now()));
    let mut events = eventsource_stream::Eventsource::eventsource(r.bytes_stream());
    while let Some(event) = events.next().await {
        let event = event?;
        if let Ok(position) = event.id.parse::<i64>() {
            let _ = seen.send((id, position, Instant::now()));
        }
    }
    Ok(())
}

/// Deploys `deploys` times, switching between v1 and v2 (`v1_live` says which is live
/// now); after each, waits until all `observers` saw its position. Returns the delays
/// from sending each deploy to each observer seeing it.
async fn deploy_and_observe(
    server: &Server,
    name: &str,
    deploys: usize,
    observers: usize,
    seen: &mut tokio::sync::mpsc::UnboundedReceiver<(usize, i64, Instant)>,
    v1_live: &mut bool,
) -> Result<Vec<Duration>> {
    let mut samples = Vec::with_capacity(deploys * observers);
    for i in 0..deploys {
        let version = if *v1_live { "v2" } else { "v1" };
        *v1_live = !*v1_live;
        let start = Instant::now();
        let answer = server.deploy(name, "production", version).await?;
        let position = answer["position"].as_i64().context("a position")?;
        let mut waiting: std::collections::HashSet<usize> = (0..observers).collect();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !waiting.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(Some((id, p, at))) = tokio::time::timeout(left, seen.recv()).await else {
                bail!("deploy {i}: {} observer(s) never saw position {position}", waiting.len());
            };
            if p == position && waiting.remove(&id) {
                samples.push(at.saturating_duration_since(start));
            }
        }
    }
    samples.sort();
    Ok(samples)
}

fn latency_summary(samples: &[Duration]) -> String {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    format!(
        "p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} observations)",
        ms(percentile(samples, 0.5)),
        ms(percentile(samples, 0.99)),
        ms(*samples.last().unwrap_or(&Duration::ZERO)),
        samples.len()
    )
}

pub async fn fanout(s: &Sizes) -> Result<Vec<Row>> {
    let nats = Nats::start().await?;
    let database = Database::create(Backend::Sqlite, "").await?;
    let server = Server::start(&database.url, Some(&nats.url)).await?;
    server.prompt("fanout", 2, &["production"]).await?;
    let key = server.api_key(&["production"]).await?;
    let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
    let (connected_tx, mut connected) = tokio::sync::mpsc::unbounded_channel();
    let url = format!("{}/changes/stream?environment=production", server.base);
    let mut tasks = Vec::new();
    for id in 0..s.sse_subscribers {
        tasks.push(tokio::spawn(sse_observer(id, url.clone(), key.clone(), seen_tx.clone(), connected_tx.clone())));
    }
    for _ in 0..s.sse_subscribers {
        tokio::time::timeout(Duration::from_secs(60), connected.recv()).await?.context("an SSE subscriber")?;
    }
    let ttl = Duration::from_secs(3600);
    let mut sdks = Vec::new();
    for i in 0..s.sdk_subscribers {
        let id = s.sse_subscribers + i;
        let sdk =
            promptos_sdk::Prompts::connect(&server.base).api_key(&key).nats_url(&nats.url).ttl(ttl).build().await?;
        let tx = seen_tx.clone();
        sdk.on_change(move |c| {
            let _ = tx.send((id, c.position, Instant::now()));
        });
        sdk.get("fanout", "production", json!({"customer_name": "Ada", "topic": "refunds"})).await?;
        sdks.push(sdk);
    }
    let observers = s.sse_subscribers + s.sdk_subscribers;
    // One deploy everyone must see first: proves every subscription is live.
    let mut v1_live = true;
    deploy_and_observe(&server, "fanout", 1, observers, &mut seen, &mut v1_live).await?;
    let samples = deploy_and_observe(&server, "fanout", s.fanout_deploys, observers, &mut seen, &mut v1_live).await?;
    let p99 = percentile(&samples, 0.99);
    for t in tasks {
        t.abort();
    }
    drop(sdks);
    drop(server);
    database.remove().await;
    Ok(vec![row(
        s,
        "6",
        format!(
            "fan-out: {} SSE subscribers + {} NATS-subscribed SDKs, {} deploys, from sending the deploy",
            s.sse_subscribers, s.sdk_subscribers, s.fanout_deploys
        ),
        latency_summary(&samples),
        "p99 ≤ 50 ms",
        p99 <= Duration::from_millis(50),
    )])
}

pub async fn sdk(s: &Sizes) -> Result<Vec<Row>> {
    let nats = Nats::start().await?;
    let database = Database::create(Backend::Sqlite, "").await?;
    let server = Server::start(&database.url, Some(&nats.url)).await?;
    // The SDK's criterion bench's template: 1 KB with three variables.
    let filler = "Answer politely, concisely and in the customer's language. ".repeat(16);
    let text = format!("Hello {{{{ customer_name }}}}, I am {{{{ agent }}}} from {{{{ team }}}}. {filler}");
    server.post("/prompts/", json!({"name": "sdk-get"})).await?;
    server.post("/prompts/sdk-get/versions/", json!({"version_string": "v1", "text": text})).await?;
    server.deploy("sdk-get", "production", "v1").await?;
    server.prompt("sdk-propagation", 2, &["production"]).await?;
    let key = server.api_key(&["production"]).await?;
    let ttl = Duration::from_secs(3600);
    let over_nats =
        promptos_sdk::Prompts::connect(&server.base).api_key(&key).nats_url(&nats.url).ttl(ttl).build().await?;
    let over_sse = promptos_sdk::Prompts::connect(&server.base).api_key(&key).ttl(ttl).build().await?;

    use promptos_sdk::minijinja::context;
    over_nats
        .get("sdk-get", "production", context! { customer_name => "Alex", agent => "Robin", team => "Support" })
        .await?;
    let t = Instant::now();
    for _ in 0..s.sdk_gets {
        let text = over_nats
            .get("sdk-get", "production", context! { customer_name => "Alex", agent => "Robin", team => "Support" })
            .await?;
        std::hint::black_box(text);
    }
    let per_call = t.elapsed().as_secs_f64() * 1e6 / s.sdk_gets as f64;

    let (tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
    for (id, sdk) in [&over_nats, &over_sse].into_iter().enumerate() {
        let tx = tx.clone();
        sdk.on_change(move |c| {
            let _ = tx.send((id, c.position, Instant::now()));
        });
        sdk.get("sdk-propagation", "production", json!({"customer_name": "Ada", "topic": "refunds"})).await?;
    }
    // v1 was live; this makes v2 live and proves both subscriptions work.
    deploy_and_observe(&server, "sdk-propagation", 1, 2, &mut seen, &mut true).await?;
    // Each deploy's two observations, split by feed.
    let (mut nats_samples, mut sse_samples) = (Vec::new(), Vec::new());
    for i in 0..s.sdk_deploys {
        let version = if i % 2 == 0 { "v1" } else { "v2" };
        for (id, d) in deploy_and_observe_split(&server, version, &mut seen).await? {
            if id == 0 {
                nats_samples.push(d)
            } else {
                sse_samples.push(d)
            }
        }
    }
    nats_samples.sort();
    sse_samples.sort();
    drop((over_nats, over_sse));
    drop(server);
    database.remove().await;
    Ok(vec![
        row(
            s,
            "7",
            "SDK: cached `get`, ~1 KB template, 3 variables, rendering included".into(),
            format!("{per_call:.2} µs per call ({} calls)", s.sdk_gets),
            "≤ 1 µs",
            per_call <= 1.0,
        ),
        row(
            s,
            "7",
            format!("SDK: deploy response → subscribed SDK has the new version, {} deploys, over NATS", s.sdk_deploys),
            latency_summary(&nats_samples),
            "p99 ≤ 5 ms",
            percentile(&nats_samples, 0.99) <= Duration::from_millis(5),
        ),
        row(
            s,
            "7",
            format!("the same over SSE, {} deploys", s.sdk_deploys),
            latency_summary(&sse_samples),
            "p99 ≤ 5 ms",
            percentile(&sse_samples, 0.99) <= Duration::from_millis(5),
        ),
    ])
}

/// One deploy of `sdk-propagation`, timed from its response to each of two SDKs.
async fn deploy_and_observe_split(
    server: &Server,
    version: &str,
    seen: &mut tokio::sync::mpsc::UnboundedReceiver<(usize, i64, Instant)>,
) -> Result<Vec<(usize, Duration)>> {
    let answer = server.deploy("sdk-propagation", "production", version).await?;
    let answered = Instant::now();
    let position = answer["position"].as_i64().context("a position")?;
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while out.len() < 2 {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(Some((id, p, at))) = tokio::time::timeout(left, seen.recv()).await else {
            bail!("an SDK never saw position {position}");
        };
        if p == position && !out.iter().any(|(i, _)| *i == id) {
            out.push((id, at.saturating_duration_since(answered)));
        }
    }
    Ok(out)
}
