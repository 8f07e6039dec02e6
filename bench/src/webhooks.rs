//! #9 webhooks: from a deploy's commit until a receiver on this machine has the signed
//! delivery, one deploy at a time.

use crate::database::Database;
use crate::load::percentile;
use crate::procs::Server;
use crate::table::{row, Row, Sizes};
use anyhow::{Context, Result};
use promptos_store::Backend;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// When each delivery (by the event's position) arrived, on the wall clock.
type Arrivals = Arc<Mutex<HashMap<i64, chrono::DateTime<chrono::Utc>>>>;

async fn receiver() -> Result<(Arrivals, String)> {
    let arrivals: Arrivals = Arc::default();
    let seen = arrivals.clone();
    let app = axum::Router::new().fallback(move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
        let seen = seen.clone();
        async move {
            let now = chrono::Utc::now();
            let signed = headers.get("webhook-signature").is_some_and(|s| s.as_bytes().starts_with(b"v1,"));
            let position =
                serde_json::from_slice::<serde_json::Value>(&body).ok().and_then(|b| b["data"]["position"].as_i64());
            if let (true, Some(p)) = (signed, position) {
                seen.lock().expect("not poisoned").insert(p, now);
            }
            axum::http::StatusCode::NO_CONTENT
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((arrivals, url))
}

pub async fn webhooks(s: &Sizes) -> Result<Vec<Row>> {
    let database = Database::create(Backend::Sqlite, "").await?;
    let server = Server::start_with(&database.url, None, &[("PROMPTOS_WEBHOOK_ALLOW_PRIVATE", "true")]).await?;
    server.prompt("hooked", 2, &["production"]).await?;
    let (arrivals, url) = receiver().await?;
    server.post("/webhooks/", json!({"url": url, "event_types": ["prompt.version.deployed"]})).await?;

    let mut latencies = Vec::with_capacity(s.webhook_deploys);
    for i in 0..s.webhook_deploys {
        let version = if i % 2 == 0 { "v2" } else { "v1" };
        let answer = server.deploy("hooked", "production", version).await?;
        let position = answer["position"].as_i64().context("a position")?;
        let deadline = Instant::now() + Duration::from_secs(30);
        let arrived = loop {
            if let Some(at) = arrivals.lock().expect("not poisoned").get(&position).copied() {
                break at;
            }
            anyhow::ensure!(Instant::now() < deadline, "deploy {i} was not delivered within 30 s");
            tokio::time::sleep(Duration::from_micros(200)).await;
        };
        // The commit's time as the log records it (this machine's clock, as the
        // receiver's).
        let events = server.get(&format!("/events?after={}&limit=1", position - 1)).await?;
        let recorded = events["items"][0]["recorded_at"].as_str().context("the event's time")?;
        let committed = chrono::DateTime::parse_from_rfc3339(recorded)?.with_timezone(&chrono::Utc);
        latencies.push((arrived - committed).to_std().unwrap_or_default());
    }
    latencies.sort();
    drop(server);
    database.remove().await;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let p99 = percentile(&latencies, 0.99);
    Ok(vec![row(
        s,
        "9",
        format!("webhooks: deploy commit → a local receiver has the signed delivery, {} deploys", s.webhook_deploys),
        format!(
            "p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            ms(percentile(&latencies, 0.5)),
            ms(p99),
            ms(*latencies.last().unwrap_or(&Duration::ZERO))
        ),
        "p99 ≤ 50 ms",
        p99 <= Duration::from_millis(50),
    )])
}
