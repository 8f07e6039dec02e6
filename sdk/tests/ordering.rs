//! Answers and change messages can arrive in any order; the SDK must end up with the
//! newest, and never let a late answer undo what a newer one or a change said. A
//! forwarding proxy in front of the real server holds one answer back to force each
//! order.

mod common;

use common::proxy::Proxy;
use common::*;
use minijinja::context;
use promptos_sdk::{Change, Error, Prompts};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const HOURS: Duration = Duration::from_secs(10 * 3600);
const DEADLINE: Duration = Duration::from_secs(10);

/// An SDK that reads through `proxy` and hears changes straight from NATS, with the
/// changes it heard.
async fn sdk(proxy: &Proxy, server: &Server, nats: &Nats) -> (Prompts, Arc<Mutex<Vec<Change>>>) {
    let key = server.api_key(&["production"]).await;
    let prompts = Prompts::connect(&proxy.url).api_key(key).nats_url(nats.url()).ttl(HOURS).build().await.unwrap();
    let heard = Arc::new(Mutex::new(Vec::new()));
    let sink = heard.clone();
    prompts.on_change(move |c| sink.lock().unwrap().push(c.clone()));
    (prompts, heard)
}

async fn heard(changes: &Arc<Mutex<Vec<Change>>>, what: &str, check: impl Fn(&Change) -> bool) {
    eventually(DEADLINE, what, || async { changes.lock().unwrap().iter().any(&check) }).await;
}

async fn get(prompts: &Prompts) -> Result<String, Error> {
    prompts.get("greeting", "production", context! { who => "Alex" }).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_announced_while_the_first_fetch_is_on_its_way_is_not_lost() {
    let nats = Nats::start();
    let server = Server::start(Some(nats.url())).await;
    server.prompt("greeting", "Hello {{ who }}", 2, &["production"]).await;
    let proxy = Proxy::start(&server.base).await;
    let (prompts, changes) = sdk(&proxy, &server, &nats).await;

    let mut held = proxy.hold_next("/prompts/greeting/deployed");
    let first = tokio::spawn({
        let prompts = prompts.clone();
        async move { get(&prompts).await }
    });
    held.arrived().await; // the server answered v1; the answer waits in the proxy
    let deployed = server.deploy("greeting", "production", "v2").await;
    let position = deployed["position"].as_i64().unwrap();
    heard(&changes, "the deploy of v2", |c| c.position >= position).await;
    held.release();

    assert_eq!(first.await.unwrap().unwrap(), "Hello Alex v2", "the late v1 answer was refreshed");
    assert_eq!(get(&prompts).await.unwrap(), "Hello Alex v2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_is_not_undone_by_an_older_answer_still_on_its_way() {
    let nats = Nats::start();
    let server = Server::start(Some(nats.url())).await;
    server.prompt("greeting", "Hello {{ who }}", 1, &["production"]).await;
    let proxy = Proxy::start(&server.base).await;
    let (prompts, changes) = sdk(&proxy, &server, &nats).await;

    let mut held = proxy.hold_next("/prompts/greeting/deployed");
    let first = tokio::spawn({
        let prompts = prompts.clone();
        async move { get(&prompts).await }
    });
    held.arrived().await;
    let r = server.http.delete(format!("{}/prompts/greeting", server.base)).bearer_auth(&server.token);
    ok(r.send().await.unwrap()).await;
    heard(&changes, "the delete", |c| c.event_type == "PromptDeleted").await;
    held.release();

    assert!(matches!(first.await.unwrap(), Err(Error::NotFound { .. })), "the deleted prompt came back");
    assert!(matches!(get(&prompts).await, Err(Error::NotFound { .. })), "the deleted prompt is cached");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_not_found_does_not_evict_a_newer_answer() {
    let nats = Nats::start();
    let server = Server::start(Some(nats.url())).await;
    server.prompt("greeting", "Hello {{ who }}", 1, &[]).await;
    let proxy = Proxy::start(&server.base).await;
    let (prompts, changes) = sdk(&proxy, &server, &nats).await;

    // Asked before the deploy: the server answers 404, held back.
    let mut held = proxy.hold_next("/prompts/greeting/deployed");
    let early = tokio::spawn({
        let prompts = prompts.clone();
        async move { get(&prompts).await }
    });
    held.arrived().await;
    let deployed = server.deploy("greeting", "production", "v1").await;
    let position = deployed["position"].as_i64().unwrap();
    heard(&changes, "the deploy", |c| c.position >= position).await;
    assert_eq!(get(&prompts).await.unwrap(), "Hello Alex v1");
    held.release();
    assert!(matches!(early.await.unwrap(), Err(Error::NotFound { .. })), "the early answer is what it was");

    // The late 404 left v1 in the cache: with the server unreachable it still serves.
    proxy.set_down(true);
    assert_eq!(get(&prompts).await.unwrap(), "Hello Alex v1");
}
