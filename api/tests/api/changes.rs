//! The change feed as Server-Sent Events.

use crate::helpers::*;
use futures::StreamExt;
use promptos_testkit::both_backends;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::time::Duration;

/// Reads SSE `data:` payloads until `n` change messages arrived (or a deadline passed).
pub async fn read_changes(response: reqwest::Response, n: usize) -> Vec<Value> {
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

/// Waits until the server ends the stream (or fails after a deadline).
async fn ends(response: reqwest::Response) {
    let mut body = response.bytes_stream();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, body.next()).await.expect("the stream ends in time") {
            None | Some(Err(_)) => return,
            Some(Ok(_)) => continue,
        }
    }
}

both_backends!(an_open_stream_ends_when_its_credential_stops_being_good, |backend| async move {
    let app = spawn_app(backend).await;
    let open = |credential: String| {
        let http = app.http.clone();
        let url = app.url("/changes/stream?environment=staging");
        async move {
            let r = http.get(url).bearer_auth(credential).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            r
        }
    };
    let (key_id, key) = app.api_key(&["staging"]).await;
    let by_key = open(key).await;
    let r = app.send(Method::DELETE, &format!("/api-keys/{key_id}"), Some(&app.token.clone()), None).await;
    expect_status(r, StatusCode::OK).await;
    ends(by_key).await;

    let disabled = open(app.user_token("dora", "viewer").await).await;
    let r = app.post("/users/dora/disable", serde_json::json!({})).await;
    expect_status(r, StatusCode::OK).await;
    ends(disabled).await;

    let rotated = open(app.user_token("pete", "viewer").await).await;
    let r = app.post("/users/pete/password", serde_json::json!({"password": "a-brand-new-password-1"})).await;
    expect_status(r, StatusCode::OK).await;
    ends(rotated).await;

    // A stream whose credential stays good stays open.
    let kept = open(app.token.clone()).await;
    let feed = tokio::spawn(read_changes(kept, 1));
    app.create_prompt("still-here").await;
    app.create_version("still-here", "v1", "x").await;
    expect_status(app.deploy("still-here", "staging", "v1").await, StatusCode::OK).await;
    assert_eq!(feed.await.unwrap()[0]["prompt"], "still-here");
});

both_backends!(a_replay_from_an_old_position_streams_every_missed_change_in_order, |backend| async move {
    let app = spawn_app(backend).await;
    // More changes than one page of the replay (1,000 events).
    const PROMPTS: usize = 10;
    const DEPLOYS: usize = 110;
    for p in 0..PROMPTS {
        app.create_prompt(&format!("p{p}")).await;
        app.create_version(&format!("p{p}"), "v1", "one").await;
        app.create_version(&format!("p{p}"), "v2", "two").await;
    }
    let start = app.event_count().await;
    let writers = (0..PROMPTS).map(|p| {
        let app = &app;
        async move {
            for i in 0..DEPLOYS {
                let v = if i % 2 == 0 { "v1" } else { "v2" };
                expect_status(app.deploy(&format!("p{p}"), "staging", v).await, StatusCode::OK).await;
            }
        }
    });
    futures::future::join_all(writers).await;
    let r = app
        .http
        .get(app.url("/changes/stream?environment=staging"))
        .bearer_auth(&app.token)
        .header("Last-Event-ID", start.to_string())
        .send()
        .await
        .unwrap();
    let changes = read_changes(r, PROMPTS * DEPLOYS).await;
    let positions: Vec<i64> = changes.iter().map(|c| c["position"].as_i64().unwrap()).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "in log order, each once");
    assert_eq!(positions.len(), PROMPTS * DEPLOYS);
    assert_eq!(*positions.last().unwrap(), app.event_count().await);
});
