//! #8 the fleet view: with many SDK instances subscribed, how long from a deploy's
//! commit until the server knows every instance has applied it (each instance's report
//! of serving the new version has arrived), as `GET /prompts/{name}/rollout` tells it.

use crate::database::Database;
use crate::load::percentile;
use crate::procs::{Nats, Server};
use crate::table::{row, Row, Sizes};
use anyhow::{bail, Context, Result};
use promptos_store::Backend;
use serde_json::json;
use std::time::{Duration, Instant};

pub async fn fleet(s: &Sizes) -> Result<Vec<Row>> {
    let nats = Nats::start().await?;
    let database = Database::create(Backend::Sqlite, "").await?;
    let server = Server::start(&database.url, Some(&nats.url)).await?;
    server.prompt("fleet-rollout", 2, &["production"]).await?;
    let key = server.api_key(&["production"]).await?;
    let mut instances = Vec::with_capacity(s.fleet_instances);
    for _ in 0..s.fleet_instances {
        let sdk = promptos_sdk::Prompts::connect(&server.base)
            .api_key(&key)
            .nats_url(&nats.url)
            .app_name("bench-app")
            .ttl(Duration::from_secs(3600))
            .build()
            .await?;
        sdk.get("fleet-rollout", "production", json!({"customer_name": "Ada", "topic": "refunds"})).await?;
        instances.push(sdk);
    }
    let rollout_path = "/prompts/fleet-rollout/rollout?environment=production";
    let all_hold = |r: &serde_json::Value| r["holding"] == s.fleet_instances && r["converged"] == true;
    wait_for(&server, rollout_path, Duration::from_secs(60), all_hold).await.context("instances to report")?;

    let (mut known, mut observed) = (Vec::new(), Vec::new());
    for i in 0..s.fleet_deploys {
        // An instance reports at most every 50 ms (a burst of deploys is one report), so
        // deploys are spaced as a team makes them, not back to back: a deploy right on
        // the heels of the previous one would measure that floor, not the path.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let version = if i % 2 == 0 { "v2" } else { "v1" };
        let sent = Instant::now();
        let answer = server.deploy("fleet-rollout", "production", version).await?;
        let position = answer["position"].as_i64().context("a position")?;
        let done = |r: &serde_json::Value| r["target"]["position"] == position && all_hold(r);
        let r = wait_for(&server, rollout_path, Duration::from_secs(30), done)
            .await
            .with_context(|| format!("deploy {i} to converge"))?;
        observed.push(sent.elapsed());
        let measured = r["convergence"]["instances"].as_u64().unwrap_or(0);
        if measured != s.fleet_instances as u64 {
            bail!("deploy {i}: convergence measured for {measured} of {} instances", s.fleet_instances);
        }
        let max_ms = r["convergence"]["max_ms"].as_u64().context("a convergence time")?;
        known.push(Duration::from_millis(max_ms));
    }
    known.sort();
    observed.sort();
    drop(instances);
    drop(server);
    database.remove().await;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let p99 = percentile(&known, 0.99);
    Ok(vec![row(
        s,
        "8",
        format!(
            "fleet: deploy commit → the server knows all {} SDK instances (NATS) applied it, {} deploys",
            s.fleet_instances, s.fleet_deploys
        ),
        format!(
            "p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms (server's clock; seen by polling the rollout: p99 {:.0} ms)",
            ms(percentile(&known, 0.5)),
            ms(p99),
            ms(*known.last().unwrap_or(&Duration::ZERO)),
            ms(percentile(&observed, 0.99)),
        ),
        "p99 ≤ 100 ms",
        p99 <= Duration::from_millis(100),
    )])
}

/// Polls `GET path` until `done` holds; the last answer.
async fn wait_for(
    server: &Server,
    path: &str,
    within: Duration,
    done: impl Fn(&serde_json::Value) -> bool,
) -> Result<serde_json::Value> {
    let deadline = Instant::now() + within;
    loop {
        let r = server.get(path).await?;
        if done(&r) {
            return Ok(r);
        }
        if Instant::now() > deadline {
            bail!("not within {within:?}; last answer {r}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
