//! The change feed as Server-Sent Events.

use crate::helpers::*;
use futures::StreamExt;
use promptos_projector::both_backends;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::time::Duration;

/// Reads SSE `data:` payloads until `n` change messages arrived (or a deadline passed).
async fn read_changes(response: reqwest::Response, n: usize) -> Vec<Value> {
    let mut body = response.bytes_stream();
    let mut buffer = String::new();
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while out.len() < n {
        let chunk = tokio::time::timeout_at(deadline, body.next()).await.expect("changes arrive in time");
        buffer.push_str(std::str::from_utf8(&chunk.unwrap().unwrap()).unwrap());
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            if let Some(data) = event.lines().find_map(|l| l.strip_prefix("data:")) {
                out.push(serde_json::from_str(data.trim()).unwrap());
            }
        }
    }
    out
}

both_backends!(the_sse_feed_streams_deploys_and_resumes_after_last_event_id, |backend| async move {
    let app = spawn_app(backend).await;
    app.create_prompt("p").await;
    for v in ["v1", "v2", "v3"] {
        app.create_version("p", v, v).await;
    }
    let first = expect_status(app.deploy("p", "production", "v1").await, StatusCode::OK).await;
    expect_status(app.deploy("p", "staging", "v1").await, StatusCode::OK).await;
    expect_status(app.deploy("p", "production", "v2").await, StatusCode::OK).await;

    // Resume after the first deploy: the missed production change is replayed.
    let r = app
        .http
        .get(app.url("/changes/stream?environment=production"))
        .bearer_auth(&app.token)
        .header("Last-Event-ID", first["position"].to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let live = tokio::spawn(read_changes(r, 2));
    expect_status(app.deploy("p", "production", "v3").await, StatusCode::OK).await;
    let changes = live.await.unwrap();
    let versions: Vec<_> = changes.iter().map(|c| c["version_string"].as_str().unwrap().to_owned()).collect();
    assert_eq!(versions, ["v2", "v3"], "replayed, then live; staging filtered out");
    assert!(changes
        .iter()
        .all(|c| c["environment"] == "production" && c["prompt"] == "p" && c["type"] == "VersionDeployed"));
    assert!(changes[0]["position"].as_i64() < changes[1]["position"].as_i64());
});

both_backends!(the_sse_feed_is_authenticated_and_scoped, |backend| async move {
    let app = spawn_app(backend).await;
    let (_, staging_key) = app.api_key(&["staging"]).await;
    let r = app.send(Method::GET, "/changes/stream?environment=staging", None, None).await;
    expect_error(r, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let r = app.send(Method::GET, "/changes/stream?environment=production", Some(&staging_key), None).await;
    expect_error(r, StatusCode::FORBIDDEN, "forbidden").await;
    let r = app.send(Method::GET, "/deployed/?environment=production", Some(&staging_key), None).await;
    expect_error(r, StatusCode::FORBIDDEN, "forbidden").await;
    let r = app.send(Method::GET, "/changes/stream?environment=staging", Some(&staging_key), None).await;
    assert_eq!(r.status(), StatusCode::OK);
});

both_backends!(deployed_lists_every_prompt_of_an_environment, |backend| async move {
    let app = spawn_app(backend).await;
    for name in ["b", "a", "c"] {
        app.create_prompt(name).await;
        app.create_version(name, "v1", &format!("text of {name}")).await;
    }
    expect_status(app.deploy("a", "production", "v1").await, StatusCode::OK).await;
    expect_status(app.deploy("b", "production", "v1").await, StatusCode::OK).await;
    expect_status(app.deploy("c", "staging", "v1").await, StatusCode::OK).await;
    let (_, key) = app.api_key(&["production"]).await;
    let r = app.send(Method::GET, "/deployed/?environment=production", Some(&key), None).await;
    let list = expect_status(r, StatusCode::OK).await;
    let names: Vec<_> =
        list["items"].as_array().unwrap().iter().map(|i| i["prompt_name"].as_str().unwrap().to_owned()).collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(list["items"][0]["prompt_text"], "text of a");
    assert!(list["position"].as_i64().unwrap() >= list["items"][1]["position"].as_i64().unwrap());
});
