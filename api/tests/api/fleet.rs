//! The fleet view: real SDK clients report what they serve; the server shows each
//! instance, and how the latest deploy of a prompt reached them.

use crate::helpers::*;
use promptos_sdk::Prompts;
use promptos_testkit::both_backends;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Polls `GET path` (as the admin) until `done` holds for the answer; panics with the
/// last answer after the deadline.
async fn until(app: &TestApp, path: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let body = expect_status(app.get(path).await, StatusCode::OK).await;
        if done(&body) {
            return body;
        }
        assert!(Instant::now() < deadline, "{what}: never came true; last answer {body:#}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn client(app: &TestApp, key: &str, app_name: &str) -> Prompts {
    Prompts::connect(&app.base)
        .api_key(key)
        .app_name(app_name)
        .heartbeat(Duration::from_secs(1))
        .build()
        .await
        .expect("client builds")
}

fn report(instance_id: &str, serving: Value) -> Value {
    json!({
        "instance_id": instance_id, "app_name": "tester", "host": "h", "pid": 1, "sdk": "rust",
        "sdk_version": "0", "started_at": "2026-12-05T12:00:00Z", "heartbeat_seconds": 15,
        "applied_position": 0, "stale": false, "serving": serving,
    })
}

fn serving(prompt: &str, env: &str, version: &str) -> Value {
    json!({"prompt": prompt, "environment": env, "version_string": version, "applied_at": "2026-12-05T12:00:00Z"})
}

both_backends!(a_deploy_is_seen_reaching_every_instance_with_its_convergence_time, |backend| async move {
    let app = spawn_app(backend).await;
    let (_, key) = app.api_key(&["production"]).await;
    app.create_prompt("greeting").await;
    app.create_version("greeting", "v1", "Hello {{ who }}").await;
    app.create_version("greeting", "v2", "Hi {{ who }}").await;
    expect_status(app.deploy("greeting", "production", "v1").await, StatusCode::OK).await;

    let mut clients = Vec::new();
    for _ in 0..3 {
        let c = client(&app, &key, "support-chatbot").await;
        assert_eq!(c.get("greeting", "production", json!({"who": "Ann"})).await.unwrap(), "Hello Ann");
        clients.push(c);
    }
    // One more that hears of no change (no feed, a long TTL): it stays behind.
    let deaf = Prompts::connect(&app.base)
        .api_key(&key)
        .app_name("batch-job")
        .heartbeat(Duration::from_secs(1))
        .without_change_feed()
        .ttl(Duration::from_secs(3600))
        .build()
        .await
        .unwrap();
    deaf.get("greeting", "production", json!({"who": "Ann"})).await.unwrap();

    let fleet = until(&app, "/fleet?environment=production", "four instances serve v1", |f| {
        f["instances"].as_array().unwrap().len() == 4
            && f["instances"].as_array().unwrap().iter().all(|i| i["serving"][0]["version_string"] == "v1")
    })
    .await;
    let mine =
        fleet["instances"].as_array().unwrap().iter().find(|i| i["instance_id"] == clients[0].instance_id().unwrap());
    let mine = mine.expect("the client is listed under its instance id");
    assert_eq!(
        (mine["app_name"].as_str(), mine["sdk"].as_str(), mine["status"].as_str()),
        (Some("support-chatbot"), Some("rust"), Some("current"))
    );
    assert_eq!(mine["pid"], std::process::id());
    assert!(mine["reported_by"].as_str().unwrap().starts_with("api_key:"), "{mine}");
    let apps: Vec<(&str, u64)> = fleet["applications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["app_name"].as_str().unwrap(), a["instances"].as_u64().unwrap()))
        .collect();
    assert_eq!(apps, [("batch-job", 1), ("support-chatbot", 3)]);

    expect_status(app.deploy("greeting", "production", "v2").await, StatusCode::OK).await;
    let rollout = until(&app, "/prompts/greeting/rollout?environment=production", "three of four serve v2", |r| {
        r["serving"] == 3
    })
    .await;
    assert_eq!((rollout["holding"].as_u64(), rollout["converged"].as_bool()), (Some(4), Some(false)));
    assert_eq!(rollout["target"]["version_string"], "v2");
    assert_eq!(rollout["target"]["event_type"], "VersionDeployed");
    let convergence = &rollout["convergence"];
    assert_eq!(convergence["instances"], 3, "{rollout:#}");
    assert!(convergence["max_ms"].as_i64().unwrap() < 10_000, "{rollout:#}");
    assert!(convergence["p50_ms"].as_i64().unwrap() <= convergence["max_ms"].as_i64().unwrap());
    let behind = &rollout["instances"][0];
    assert_eq!((behind["status"].as_str(), behind["app_name"].as_str()), (Some("behind"), Some("batch-job")));
    assert_eq!(behind["version_string"], "v1");
    assert!(behind["positions_behind"].as_i64().unwrap() >= 1, "{behind}");
    let chatbot =
        rollout["applications"].as_array().unwrap().iter().find(|a| a["app_name"] == "support-chatbot").unwrap();
    assert_eq!((chatbot["holding"].as_u64(), chatbot["serving"].as_u64()), (Some(3), Some(3)));
    assert!(chatbot["slowest_ms"].is_i64(), "{chatbot}");

    // The instance behind catches up when it revalidates; the rollout converges.
    deaf.prefetch("production").await.unwrap();
    let rollout = until(&app, "/prompts/greeting/rollout?environment=production", "all four serve v2", |r| {
        r["converged"] == true
    })
    .await;
    assert_eq!(rollout["serving"], 4);

    // The operator's figures: instances per environment and application, and the
    // convergence histogram.
    let metrics = app.send(Method::GET, "/metrics", Some(&key), None).await.text().await.unwrap();
    let line = |name: &str, labels: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(name) && l.contains(labels))
            .map(|l| l.rsplit(' ').next().unwrap().to_owned())
    };
    assert_eq!(
        line("promptos_fleet_instances{", r#"app="support-chatbot",environment="production""#).as_deref(),
        Some("3"),
        "{metrics}"
    );
    assert_eq!(line("promptos_fleet_instances_behind{", r#"app="support-chatbot""#).as_deref(), Some("0"));
    let observed: f64 = line("promptos_fleet_convergence_seconds_count", "").unwrap().parse().unwrap();
    assert!(observed >= 3.0, "{observed}");

    // An instance that stops reporting is gone after three missed heartbeats.
    let gone = clients.pop().unwrap().instance_id().unwrap().to_owned();
    drop(clients);
    let started = Instant::now();
    until(&app, "/fleet", "the stopped instances are gone", |f| {
        f["instances"].as_array().unwrap().iter().all(|i| i["instance_id"] != gone.as_str())
    })
    .await;
    assert!(started.elapsed() >= Duration::from_millis(1500), "gone only after missed heartbeats");
    drop(deaf);
});

both_backends!(reports_are_refused_outside_the_keys_environments_when_too_large_or_taken, |backend| async move {
    let app = spawn_app(backend).await;
    let (_, staging) = app.api_key(&["staging"]).await;
    let (_, other) = app.api_key(&["staging"]).await;
    let post = |credential: Option<&str>, body: Value| {
        let credential = credential.map(str::to_owned);
        let app = &app;
        async move { app.send(Method::POST, "/fleet/reports", credential.as_deref(), Some(body)).await }
    };

    // A staging key may report for staging, not for production.
    let ok = post(Some(&staging), report("instance-0001", json!([serving("faq", "staging", "v1")]))).await;
    assert_eq!(ok.status(), StatusCode::NO_CONTENT);
    let body = expect_error(
        post(
            Some(&staging),
            report("instance-0002", json!([serving("faq", "staging", "v1"), serving("faq", "production", "v1")])),
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    assert!(body["message"].as_str().unwrap().contains("serving[1].environment"), "{body}");
    expect_error(post(None, report("instance-0003", json!([]))).await, StatusCode::UNAUTHORIZED, "unauthorized").await;

    // A report of 10,000 prompts is refused, and says why.
    let many: Vec<Value> = (0..10_000).map(|i| serving(&format!("p{i}"), "staging", "v1")).collect();
    let r = post(Some(&staging), report("instance-0004", Value::Array(many))).await;
    assert!(matches!(r.status(), StatusCode::PAYLOAD_TOO_LARGE | StatusCode::UNPROCESSABLE_ENTITY), "{}", r.status());
    let many: Vec<Value> = (0..2_001).map(|i| serving(&format!("p{i}"), "staging", "v1")).collect();
    let body = expect_error(
        post(Some(&staging), report("instance-0004", Value::Array(many))).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_input",
    )
    .await;
    assert_eq!(body["field"], "serving", "{body}");

    // A mistake is named with its place in the report.
    let body = expect_error(
        post(Some(&staging), report("instance-0005", json!([serving("faq", "staging", "v1"), {"prompt": "faq", "environment": "staging", "version_string": "v1", "applied_at": "soon"}]))).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_input",
    )
    .await;
    assert_eq!(body["field"], "serving[1].applied_at");
    let body = expect_error(
        post(Some(&staging), report("x", json!([]))).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_input",
    )
    .await;
    assert_eq!(body["field"], "instance_id");

    // Another key cannot take an instance over, and changes nothing by trying.
    let taken = post(Some(&other), report("instance-0001", json!([serving("faq", "staging", "v9")]))).await;
    expect_error(taken, StatusCode::CONFLICT, "instance_taken").await;
    let fleet = expect_status(app.get("/fleet").await, StatusCode::OK).await;
    assert_eq!(fleet["instances"][0]["serving"][0]["version_string"], "v1", "{fleet}");

    // An instance that reports far too often is told to slow down.
    let mut statuses = Vec::new();
    for _ in 0..60 {
        statuses.push(post(Some(&staging), report("instance-0006", json!([]))).await.status());
    }
    assert!(statuses.contains(&StatusCode::TOO_MANY_REQUESTS), "{statuses:?}");
    let r = post(Some(&staging), report("instance-0006", json!([]))).await;
    if r.status() == StatusCode::TOO_MANY_REQUESTS {
        assert!(r.headers().contains_key("retry-after"));
    }

    // People read the fleet; applications (API keys) only report to it.
    expect_error(app.send(Method::GET, "/fleet", Some(&staging), None).await, StatusCode::FORBIDDEN, "forbidden").await;
    expect_error(app.get("/prompts/faq/rollout?environment=staging").await, StatusCode::NOT_FOUND, "not_found").await;
});

both_backends!(a_second_server_sees_the_fleet_and_keeps_each_instance_with_its_key, |backend| async move {
    let app = spawn_app(backend).await;
    let (_, key) = app.api_key(&["staging"]).await;
    let r = app
        .send(
            Method::POST,
            "/fleet/reports",
            Some(&key),
            Some(report("instance-0001", json!([serving("faq", "staging", "v1")]))),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    // Another server on the same database (as on PostgreSQL behind a load balancer).
    let mut args = promptos_api::config::ServeArgs::for_database(&app.scratch.url);
    args.jwt_secret = Some(JWT_SECRET.into());
    args.no_projector = true;
    let (second, _) = promptos_api::startup::Application::build(&args).await.expect("second server starts");
    let second_base = format!("http://{}", second.local_addr());
    tokio::spawn(second.run_until(std::future::pending()));
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let fleet: Value = http
            .get(format!("{second_base}/fleet"))
            .bearer_auth(&app.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if fleet["instances"].as_array().is_some_and(|i| i.len() == 1) {
            assert_eq!(fleet["instances"][0]["instance_id"], "instance-0001");
            break;
        }
        assert!(Instant::now() < deadline, "the second server never saw the instance: {fleet}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The instance id stays with its key on the second server too.
    let (_, other) = app.api_key(&["staging"]).await;
    let taken = http
        .post(format!("{second_base}/fleet/reports"))
        .bearer_auth(&other)
        .json(&report("instance-0001", json!([])))
        .send()
        .await
        .unwrap();
    expect_error(taken, StatusCode::CONFLICT, "instance_taken").await;
});
