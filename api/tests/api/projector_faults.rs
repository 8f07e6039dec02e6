//! Projector crashes around the change feed: between committing a batch and publishing
//! it, and between publishing it and recording that it was published. The read models
//! stay exact and every change message reaches a subscriber at least once.
//!
//! The projector runs as its own `promptos projector` process and is crashed (abort, as
//! `kill -9` would) at a named failpoint (`PROMPTOS_FAILPOINT`).

use crate::helpers::*;
use futures::StreamExt;
use promptos_testkit::both_backends;
use promptos_testkit::{scratch, NatsServer as Nats};
use reqwest::StatusCode;
use serde_json::Value;
use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PROMPTS: usize = 5;

fn projector(database_url: &str, nats_url: &str, failpoint: Option<&str>) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_promptos"));
    command
        .args(["projector", "--nats-url", nats_url])
        .env("PROMPTOS_DATABASE_URL", database_url)
        .env("PROMPTOS_LOG", "error")
        .env_remove("PROMPTOS_FAILPOINT")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(point) = failpoint {
        command.env("PROMPTOS_FAILPOINT", point);
    }
    Child(command.spawn().expect("start promptos projector"))
}

/// Change messages seen by a subscriber, counted per log position.
struct Received {
    counts: HashMap<i64, usize>,
    subscriber: async_nats::Subscriber,
}

impl Received {
    /// Reads messages until every position in `expected` has arrived at least `times`
    /// times; fails after a deadline.
    async fn until(&mut self, expected: &[i64], times: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while !expected.iter().all(|p| self.counts.get(p).copied().unwrap_or(0) >= times) {
            let next = tokio::time::timeout_at(deadline, self.subscriber.next()).await;
            let message = next
                .unwrap_or_else(|_| {
                    panic!("change messages missing: wanted {expected:?} x{times}, got {:?}", self.counts)
                })
                .expect("subscription open");
            let change: Value = serde_json::from_slice(&message.payload).unwrap();
            *self.counts.entry(change["position"].as_i64().unwrap()).or_default() += 1;
        }
    }
}

async fn wait_for_crash(child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            assert!(!status.success(), "the projector ended without crashing: {status}");
            return;
        }
        assert!(Instant::now() < deadline, "the projector did not reach its failpoint");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Writes a few deploys with no projector running; returns their log positions.
async fn deploys(app: &TestApp) -> Vec<i64> {
    let mut positions = Vec::new();
    for p in 0..PROMPTS {
        let name = format!("feed-{p}");
        expect_status(app.post("/prompts/", serde_json::json!({"name": name})).await, StatusCode::CREATED).await;
        app.create_version(&name, "v1", "Hello {{ who }}").await;
        for env in ["development", "staging"] {
            let deployed = expect_status(app.deploy(&name, env, "v1").await, StatusCode::OK).await;
            positions.push(deployed["position"].as_i64().unwrap());
        }
    }
    positions
}

/// The read models' and the change feed's checkpoints.
async fn checkpoints(database_url: &str) -> (i64, i64) {
    use promptos_projector::checkpoints::load;
    let db = promptos_store::Db::connect(database_url).await.unwrap();
    let projected = load(&db, "read_models").await.unwrap();
    let published = load(&db, "change_feed").await.unwrap();
    db.close().await;
    (projected, published)
}

async fn verify(database_url: &str) {
    let out = Command::new(env!("CARGO_BIN_EXE_promptos"))
        .arg("verify")
        .env("PROMPTOS_DATABASE_URL", database_url)
        .env("PROMPTOS_LOG", "error")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}

async fn setup(backend: promptos_store::Backend) -> (TestApp, String, Nats, Received) {
    let scratch = scratch(backend).await;
    let url = scratch.url.clone();
    let nats = Nats::start();
    let client = async_nats::connect(nats.url()).await.unwrap();
    let subscriber = client.subscribe("promptos.changes.>").await.unwrap();
    client.flush().await.unwrap();
    // A projector with the feed projects the first admin, then stops, so that nothing
    // projects the writes the test makes next.
    promptos_store::Db::connect_and_migrate(&url).await.unwrap();
    let first = projector(&url, &nats.url(), None);
    let app = spawn_app_on(scratch, |a| {
        a.no_projector = true;
        // The writes must not wait long for a projection that is not coming.
        a.consistency_timeout_ms = 10;
    })
    .await;
    drop(first);
    (app, url, nats, Received { counts: HashMap::new(), subscriber })
}

both_backends!(a_crash_between_projecting_and_publishing_loses_no_change_message, |backend| async move {
    let (app, url, nats, mut received) = setup(backend).await;
    let positions = deploys(&app).await;

    // The batch and its checkpoint are committed; then the process dies before the
    // change feed for that batch goes out.
    let mut crashed = projector(&url, &nats.url(), Some("projector.after_commit"));
    wait_for_crash(&mut crashed).await;
    let (projected, published) = checkpoints(&url).await;
    assert!(projected >= *positions.last().unwrap(), "the batch was committed ({projected})");
    assert!(published < positions[0], "and not published ({published})");

    let _projector = projector(&url, &nats.url(), None);
    received.until(&positions, 1).await;
    for p in 0..PROMPTS {
        assert_eq!(app.deployed_text(&format!("feed-{p}"), "staging").await.as_deref(), Some("Hello {{ who }}"));
    }
    verify(&url).await;
});

both_backends!(a_crash_between_publishing_and_checkpointing_publishes_again, |backend| async move {
    let (app, url, nats, mut received) = setup(backend).await;
    let positions = deploys(&app).await;

    // NATS has the batch; the process dies before the feed's checkpoint moves.
    let mut crashed = projector(&url, &nats.url(), Some("publisher.after_flush"));
    wait_for_crash(&mut crashed).await;
    received.until(&positions, 1).await;
    let (_, published) = checkpoints(&url).await;
    assert!(published < positions[0], "the feed's checkpoint did not move ({published})");

    // At least once: the restarted projector sends the batch again rather than skip it.
    let _projector = projector(&url, &nats.url(), None);
    received.until(&positions, 2).await;
    for p in 0..PROMPTS {
        assert_eq!(app.deployed_text(&format!("feed-{p}"), "development").await.as_deref(), Some("Hello {{ who }}"));
    }
    verify(&url).await;
});
