//! `/metrics`: the operator's figures in the Prometheus text format, behind a credential
//! on the API's address and open on `--metrics-bind`.

use crate::helpers::*;
use promptos_store::Backend;
use promptos_testkit::both_backends;
use promptos_testkit::scratch;
use reqwest::{Method, StatusCode};
use std::time::{Duration, Instant};

/// The value of the series `name` whose labels include all of `labels`.
fn value(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.split(['{', ' ']).next() == Some(name))
        .find(|l| labels.iter().all(|want| l.contains(want)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

async fn scrape(app: &TestApp, key: &str) -> String {
    let r = app.send(Method::GET, "/metrics", Some(key), None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let kind = r.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
    r.text().await.unwrap()
}

both_backends!(metrics_count_requests_cache_hits_lag_and_sse_clients, |backend| async move {
    let app = spawn_app(backend).await;
    // Like every endpoint but health, docs and login, it needs a credential.
    expect_error(app.send(Method::GET, "/metrics", None, None).await, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let (_, key) = app.api_key(&["production"]).await;

    app.create_prompt("faq").await;
    app.create_version("faq", "v1", "Hello {{ who }}").await;
    expect_status(app.deploy("faq", "production", "v1").await, StatusCode::OK).await;
    let before = scrape(&app, &key).await;
    let route = r#"route="/prompts/{name}/deployed/""#;
    let reads_before = value(&before, "promptos_http_requests_total", &[route, r#"status="200""#]).unwrap_or(0.0);
    let hits_before = value(&before, "promptos_read_cache_hits_total", &[]).unwrap();
    for _ in 0..3 {
        let r = app.send(Method::GET, "/prompts/faq/deployed/?environment=production", Some(&key), None).await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    let r = app.send(Method::GET, "/prompts/nope/deployed/?environment=production", Some(&key), None).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    let text = scrape(&app, &key).await;
    // Counted per route template, not per prompt name.
    assert_eq!(
        value(&text, "promptos_http_requests_total", &[route, r#"status="200""#, r#"method="GET""#]),
        Some(reads_before + 3.0)
    );
    assert_eq!(value(&text, "promptos_http_requests_total", &[route, r#"status="404""#]), Some(1.0));
    assert!(!text.contains("nope"), "prompt names never become labels");
    let count = value(&text, "promptos_http_request_duration_seconds_count", &[route]).unwrap();
    assert!(count >= reads_before + 4.0, "{count}");
    // The first read of faq filled the cache; the next two were hits.
    assert_eq!(value(&text, "promptos_read_cache_hits_total", &[]), Some(hits_before + 2.0));
    let ratio = value(&text, "promptos_read_cache_hit_ratio", &[]).unwrap();
    assert!(ratio > 0.0 && ratio < 1.0, "{ratio}");
    // Writes settle before they answer, so the read models are caught up.
    let head = app.event_count().await as f64;
    assert_eq!(value(&text, "promptos_log_head_position", &[]), Some(head));
    assert_eq!(value(&text, "promptos_projector_position", &[]), Some(head));
    assert_eq!(value(&text, "promptos_projector_lag_events", &[]), Some(0.0));
    assert_eq!(value(&text, "promptos_projector_lag_seconds", &[]), Some(0.0));
    assert_eq!(value(&text, "promptos_change_feed_publish_failures_total", &[]), Some(0.0));
    assert!(value(&text, "promptos_resident_memory_bytes", &[]).unwrap() > 1_000_000.0);

    // Connected change-feed clients come and go.
    assert_eq!(value(&text, "promptos_sse_clients", &[]), Some(0.0));
    let stream = app.send(Method::GET, "/changes/stream?environment=production", Some(&key), None).await;
    assert_eq!(stream.status(), StatusCode::OK);
    let deadline = Instant::now() + Duration::from_secs(10);
    while value(&scrape(&app, &key).await, "promptos_sse_clients", &[]) != Some(1.0) {
        assert!(Instant::now() < deadline, "the SSE client was never counted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(stream);
    while value(&scrape(&app, &key).await, "promptos_sse_clients", &[]) != Some(0.0) {
        assert!(Instant::now() < deadline, "the closed SSE client was still counted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
});

#[tokio::test]
async fn metrics_bind_serves_metrics_without_a_credential_and_nothing_else() {
    let scratch = scratch(Backend::Sqlite).await;
    let port = || std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (api, open) = (port(), port());
    let _server = promptos_process(
        &scratch.url,
        &["serve", "--bind", &format!("127.0.0.1:{api}"), "--metrics-bind", &format!("127.0.0.1:{open}")],
    );
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let text = loop {
        if let Ok(r) = http.get(format!("http://127.0.0.1:{open}/metrics")).send().await {
            assert_eq!(r.status(), StatusCode::OK);
            break r.text().await.unwrap();
        }
        assert!(Instant::now() < deadline, "the metrics address never answered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(text.contains("# TYPE promptos_read_cache_hits_total counter"), "{text}");
    assert!(value(&text, "promptos_log_head_position", &[]).is_some());
    // Only /metrics is open there; the API stays behind its credential on its own address.
    let r = http.get(format!("http://127.0.0.1:{open}/prompts/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = http.get(format!("http://127.0.0.1:{api}/metrics")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}
