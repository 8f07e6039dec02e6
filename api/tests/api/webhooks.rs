//! Webhooks: signed deliveries to a receiver on this machine, retried, in order.

use crate::helpers::*;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use promptos_testkit::both_backends;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    id: String,
    timestamp: String,
    signature: String,
    body: String,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

/// A webhook receiver on 127.0.0.1: records every request, answers the scripted statuses
/// in turn (then 200), optionally with headers.
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<Vec<(u16, Vec<(String, String)>)>>>,
}

impl Receiver {
    async fn start(script: Vec<(u16, Vec<(String, String)>)>) -> (Self, String) {
        let receiver = Receiver { script: Arc::new(Mutex::new(script)), ..Default::default() };
        let r = receiver.clone();
        let app = axum::Router::new().fallback(move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
            let r = r.clone();
            async move {
                let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
                r.got.lock().unwrap().push(Received {
                    id: h("webhook-id"),
                    timestamp: h("webhook-timestamp"),
                    signature: h("webhook-signature"),
                    body: String::from_utf8_lossy(&body).into_owned(),
                });
                let (status, extra) = {
                    let mut script = r.script.lock().unwrap();
                    if script.is_empty() {
                        (200, vec![])
                    } else {
                        script.remove(0)
                    }
                };
                let mut response = axum::response::Response::builder().status(status);
                for (k, v) in extra {
                    response = response.header(k, v);
                }
                response.body(axum::body::Body::from("thanks")).unwrap()
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (receiver, url)
    }

    fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    async fn wait_for(&self, n: usize) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            assert!(Instant::now() < deadline, "the receiver got {} of {n} requests: {got:?}", got.len());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The Standard Webhooks check, written from the specification (not with the server's
/// code): one of the space-separated `v1,` signatures must be the HMAC-SHA256 of
/// `id.timestamp.body` under the secret, and the timestamp within five minutes.
fn verify(secret: &str, r: &Received) -> bool {
    let key = B64.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{}.{}.{}", r.id, r.timestamp, r.body).as_bytes());
    let expected = B64.encode(mac.finalize().into_bytes());
    let fresh = r.timestamp.parse::<i64>().is_ok_and(|t| (chrono::Utc::now().timestamp() - t).abs() <= 300);
    fresh && r.signature.split(' ').any(|s| s.strip_prefix("v1,") == Some(expected.as_str()))
}

fn private_allowed(args: &mut promptos_api::config::ServeArgs) {
    args.webhooks.webhook_allow_private = true;
    args.webhooks.webhook_retry_schedule = vec![Duration::from_millis(100)];
}

async fn subscribe(app: &TestApp, body: Value) -> (String, String) {
    let created = expect_status(app.post("/webhooks/", body).await, StatusCode::CREATED).await;
    (created["id"].as_str().unwrap().to_owned(), created["secret"].as_str().unwrap().to_owned())
}

both_backends!(a_production_deploy_reaches_the_receiver_signed_and_filtered, |backend| async move {
    let app = spawn_app_with(backend, private_allowed).await;
    let (receiver, url) = Receiver::start(vec![]).await;
    let (id, secret) = subscribe(
        &app,
        json!({"url": url, "description": "CI", "event_types": ["prompt.version.deployed"], "environments": ["production"]}),
    )
    .await;
    assert!(secret.starts_with("whsec_"), "{secret}");
    // The secret is nowhere in the log, nor in what the API shows afterwards.
    let log = expect_status(app.get("/events?limit=500").await, StatusCode::OK).await.to_string();
    assert!(!log.contains(&secret[6..]), "the secret leaked into /events");
    let shown = expect_status(app.get(&format!("/webhooks/{id}")).await, StatusCode::OK).await;
    assert!(shown.get("secret").is_none() && shown["enabled"] == true, "{shown}");

    app.create_prompt("bot").await;
    app.create_version("bot", "v1", "Hello").await;
    app.create_version("bot", "v2", "Hi").await;
    expect_status(app.deploy("bot", "staging", "v1").await, StatusCode::OK).await;
    expect_status(app.deploy("bot", "production", "v1").await, StatusCode::OK).await;
    expect_status(app.deploy("bot", "production", "v2").await, StatusCode::OK).await;
    let got = receiver.wait_for(2).await;
    assert!(got.iter().all(|r| verify(&secret, r)), "{got:?}");
    let bodies: Vec<Value> = got.iter().map(Received::json).collect();
    assert_eq!(bodies[0]["type"], "prompt.version.deployed");
    let data = &bodies[1]["data"];
    assert_eq!(
        (data["prompt"].as_str(), data["environment"].as_str(), data["version_string"].as_str()),
        (Some("bot"), Some("production"), Some("v2"))
    );
    assert_eq!((data["previous_version_string"].as_str(), data["actor"].as_str()), (Some("v1"), Some("user:admin")));
    assert!(bodies[0]["data"]["position"].as_i64() < data["position"].as_i64(), "in log order");
    // A tampered body, or the same request replayed much later, does not verify.
    let tampered = Received { body: got[1].body.replace("v2", "v9"), ..got[1].clone() };
    assert!(!verify(&secret, &tampered));
    let old = Received { timestamp: (chrono::Utc::now().timestamp() - 3600).to_string(), ..got[1].clone() };
    assert!(!verify(&secret, &old));
    // The delivery log (the attempt is recorded once the receiver has answered).
    let deadline = Instant::now() + Duration::from_secs(10);
    let deliveries = loop {
        let d = expect_status(app.get(&format!("/webhooks/{id}/deliveries")).await, StatusCode::OK).await;
        if d["items"].as_array().unwrap().iter().all(|i| i["status"] == "delivered") {
            break d;
        }
        assert!(Instant::now() < deadline, "deliveries not recorded as delivered: {d}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let newest = &deliveries["items"][0];
    assert_eq!((newest["status"].as_str(), newest["attempts"].as_i64()), (Some("delivered"), Some(1)), "{deliveries}");
    assert_eq!(newest["log"][0]["status_code"], 200);
    assert_eq!(newest["delivery_id"].as_str(), Some(got[1].id.as_str()));
});

both_backends!(a_failing_receiver_gets_retries_with_the_same_id_in_order, |backend| async move {
    let app = spawn_app_with(backend, private_allowed).await;
    let (receiver, url) = Receiver::start(vec![(500, vec![]), (500, vec![])]).await;
    let (_, secret) = subscribe(&app, json!({"url": url, "event_types": ["prompt.version.*"]})).await;
    app.create_prompt("bot").await;
    app.create_version("bot", "v1", "Hello").await;
    app.create_version("bot", "v2", "Hi").await;
    let got = receiver.wait_for(4).await;
    let ids: Vec<&str> = got.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids[0], ids[1]);
    assert_eq!(ids[1], ids[2]);
    assert_ne!(ids[2], ids[3]);
    let versions: Vec<String> =
        got.iter().map(|r| r.json()["data"]["version_string"].as_str().unwrap().to_owned()).collect();
    assert_eq!(versions, ["v1", "v1", "v1", "v2"], "the second waits for the first");
    assert!(got.iter().all(|r| verify(&secret, r)));
});

both_backends!(a_receiver_that_answers_gone_disables_its_webhook, |backend| async move {
    let app = spawn_app_with(backend, private_allowed).await;
    let (receiver, url) = Receiver::start(vec![(410, vec![])]).await;
    let (id, _) = subscribe(&app, json!({"url": url})).await;
    expect_status(app.post(&format!("/webhooks/{id}/test"), json!({})).await, StatusCode::ACCEPTED).await;
    receiver.wait_for(1).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let w = expect_status(app.get(&format!("/webhooks/{id}")).await, StatusCode::OK).await;
        if w["enabled"] == false {
            assert!(w["disabled_reason"].as_str().unwrap().contains("410"), "{w}");
            break;
        }
        assert!(Instant::now() < deadline, "the webhook stayed enabled: {w}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
});

both_backends!(rotating_the_secret_signs_with_both_during_the_overlap, |backend| async move {
    let app = spawn_app_with(backend, private_allowed).await;
    let (receiver, url) = Receiver::start(vec![]).await;
    // Prompt events only: the rotation itself (webhook.secret_rotated) is not sent.
    let (id, old) = subscribe(&app, json!({"url": url, "event_types": ["prompt.*"]})).await;
    let rotated =
        expect_status(app.post(&format!("/webhooks/{id}/rotate-secret"), json!({})).await, StatusCode::OK).await;
    let new = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    let ping = expect_status(app.post(&format!("/webhooks/{id}/test"), json!({})).await, StatusCode::ACCEPTED).await;
    let got = receiver.wait_for(1).await;
    assert_eq!(got[0].id, ping["delivery_id"].as_str().unwrap());
    assert_eq!(got[0].json()["type"], "webhook.test");
    assert_eq!(got[0].signature.split(' ').count(), 2, "{:?}", got[0]);
    assert!(verify(&old, &got[0]) && verify(&new, &got[0]));
    // A redelivery goes out with the same webhook-id.
    let path = format!("/webhooks/{id}/deliveries/{}/redeliver", got[0].id);
    expect_status(app.post(&path, json!({})).await, StatusCode::ACCEPTED).await;
    let again = receiver.wait_for(2).await;
    assert_eq!(again[1].id, got[0].id);
});

both_backends!(private_addresses_are_refused_and_redirects_elsewhere_not_followed, |backend| async move {
    let strict = spawn_app(backend).await;
    for url in [
        "https://127.0.0.1/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://localhost:8443/hook",
        "https://[::1]/hook",
        "http://hooks.example.com/hook",
    ] {
        let e = expect_error(
            strict.post("/webhooks/", json!({"url": url})).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        )
        .await;
        assert_eq!(e["field"], "url", "{url}: {e}");
    }
    let e = expect_error(
        strict
            .post("/webhooks/", json!({"url": "https://hooks.example.com/", "event_types": ["prompt.deployd"]}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_webhook",
    )
    .await;
    assert_eq!(e["field"], "event_types");

    // With private addresses allowed (a receiver on this machine): a redirect to
    // another host is not followed.
    let app = spawn_app_with(backend, private_allowed).await;
    let (elsewhere, target) = Receiver::start(vec![]).await;
    let target = target.replace("127.0.0.1", "localhost");
    let (redirector, url) = Receiver::start(vec![(307, vec![("location".into(), target)])]).await;
    let (id, _) = subscribe(&app, json!({"url": url})).await;
    expect_status(app.post(&format!("/webhooks/{id}/test"), json!({})).await, StatusCode::ACCEPTED).await;
    redirector.wait_for(2).await;
    assert!(elsewhere.received().is_empty(), "the redirect was followed");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let d = expect_status(app.get(&format!("/webhooks/{id}/deliveries")).await, StatusCode::OK).await;
        if d["items"][0]["log"][0]["status_code"] == 307 {
            break;
        }
        assert!(Instant::now() < deadline, "the redirect is not in the delivery log: {d}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
});

both_backends!(a_thousand_deploys_are_all_delivered_in_order_once, |backend| async move {
    let app = spawn_app_with(backend, private_allowed).await;
    let (receiver, url) = Receiver::start(vec![]).await;
    let (_, secret) =
        subscribe(&app, json!({"url": url, "event_types": ["prompt.version.deployed"], "format": "standard"})).await;
    app.create_prompt("bot").await;
    app.create_version("bot", "v1", "Hello").await;
    app.create_version("bot", "v2", "Hi").await;
    const DEPLOYS: usize = 1000;
    for i in 0..DEPLOYS {
        let v = if i % 2 == 0 { "v2" } else { "v1" };
        expect_status(app.deploy("bot", "production", v).await, StatusCode::OK).await;
    }
    let got = receiver.wait_for(DEPLOYS).await;
    let mut ids = std::collections::HashSet::new();
    let mut positions = Vec::new();
    for r in &got {
        if ids.insert(r.id.clone()) {
            positions.push(r.json()["data"]["position"].as_i64().unwrap());
        }
    }
    assert_eq!(ids.len(), DEPLOYS, "every deploy once, after de-duplicating by webhook-id");
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "in log order");
    assert!(got.iter().all(|r| verify(&secret, r)));
});

both_backends!(a_slack_webhook_gets_a_short_text, |backend| async move {
    let app = spawn_app_with(backend, private_allowed).await;
    let (receiver, url) = Receiver::start(vec![]).await;
    subscribe(&app, json!({"url": url, "format": "slack", "event_types": ["prompt.version.deployed"]})).await;
    app.create_prompt("bot").await;
    app.create_version("bot", "v1", "Hello").await;
    expect_status(app.deploy("bot", "production", "v1").await, StatusCode::OK).await;
    let got = receiver.wait_for(1).await;
    let text = got[0].json()["text"].as_str().unwrap().to_owned();
    assert_eq!(text, "PromptOS: prompt.version.deployed — bot v1 in production by user:admin");
});

/// `promptos serve` as a process with webhooks to private addresses allowed and quick retries.
async fn serve(scratch: &promptos_testkit::Scratch) -> (Child, TestApp) {
    serve_app(scratch, &["--webhook-allow-private", "true", "--webhook-retry-schedule", "300ms"]).await
}

#[tokio::test]
async fn a_delivery_pending_when_the_server_stops_is_delivered_after_the_restart() {
    let scratch = promptos_testkit::scratch(promptos_store::Backend::Sqlite).await;
    // The receiver fails until the server has been restarted.
    let (receiver, url) = Receiver::start((0..1000).map(|_| (503, vec![])).collect()).await;
    let (server, app) = serve(&scratch).await;
    let (_, secret) = subscribe(&app, json!({"url": url, "event_types": ["prompt.*"]})).await;
    app.create_prompt("bot").await;
    let first = receiver.wait_for(1).await[0].clone();
    drop(server);
    receiver.script.lock().unwrap().clear();
    let seen_before = receiver.received().len();
    let (_server, _app) = serve(&scratch).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = receiver.received();
        if got.len() > seen_before {
            let after = got.last().unwrap();
            assert_eq!(after.id, first.id, "the same delivery, with the same webhook-id");
            assert!(verify(&secret, after));
            break;
        }
        assert!(Instant::now() < deadline, "nothing was delivered after the restart");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn two_servers_on_postgres_deliver_each_event_once() {
    let scratch = promptos_testkit::scratch(promptos_store::Backend::Postgres).await;
    let (receiver, url) = Receiver::start(vec![]).await;
    let (_a, app) = serve(&scratch).await;
    let (_b, other) = serve(&scratch).await;
    subscribe(&app, json!({"url": url, "event_types": ["prompt.version.deployed"]})).await;
    app.create_prompt("bot").await;
    app.create_version("bot", "v1", "Hello").await;
    app.create_version("bot", "v2", "Hi").await;
    for i in 0..20 {
        let server = if i % 2 == 0 { &app } else { &other };
        expect_status(server.deploy("bot", "staging", if i % 2 == 0 { "v2" } else { "v1" }).await, StatusCode::OK)
            .await;
    }
    let got = receiver.wait_for(20).await;
    let ids: std::collections::HashSet<&str> = got.iter().map(|r| r.id.as_str()).collect();
    assert_eq!((got.len(), ids.len()), (20, 20), "one delivery per deploy, none twice");
}
