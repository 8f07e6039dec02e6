//! Every kind of bad input gets a clear 4xx in the shared shape, and appends nothing.

use crate::helpers::*;
use promptos_testkit::both_backends;
use reqwest::StatusCode;
use serde_json::json;

both_backends!(bad_input_is_refused_clearly_and_appends_nothing, |backend| async move {
    let app = spawn_app_with(backend, |a| a.max_body_bytes = 64 * 1024).await;
    app.create_prompt("p").await;
    app.create_version("p", "v1", "Hello {{ name }}").await;
    let before = app.event_count().await;

    let raw = |path: &str, body: &str| {
        app.http
            .post(app.url(path))
            .bearer_auth(&app.token)
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
    };

    // Malformed JSON.
    expect_error(raw("/prompts/", "{\"name\": ").await.unwrap(), StatusCode::BAD_REQUEST, "malformed_json").await;
    // Missing field, wrong type, unknown field: 422 naming the field.
    let e = expect_error(
        app.post("/prompts/p/versions/", json!({"text": "x"})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_body",
    )
    .await;
    assert_eq!(e["field"], "version_string");
    let e = expect_error(
        app.post("/prompts/", json!({"name": 42})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_body",
    )
    .await;
    assert_eq!(e["field"], "name");
    let e = expect_error(
        app.post("/prompts/", json!({"name": "x", "colour": "red"})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_body",
    )
    .await;
    assert!(e["message"].as_str().unwrap().contains("colour"), "{e}");
    // Invalid names and oversized descriptions.
    let e = expect_error(
        app.post("/prompts/", json!({"name": "Has Spaces"})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_input",
    )
    .await;
    assert_eq!(e["field"], "name");
    let long = "d".repeat(5000);
    let e = expect_error(
        app.post("/prompts/", json!({"name": "ok", "description": long})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_input",
    )
    .await;
    assert_eq!(e["field"], "description");
    let e = expect_error(
        app.post("/prompts/p/versions/", json!({"version_string": "v 2", "text": "x"})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_input",
    )
    .await;
    assert_eq!(e["field"], "version_string");
    // A template syntax error names line and column.
    let r =
        app.post("/prompts/p/versions/", json!({"version_string": "v2", "text": "line one\nHello {{ name }"})).await;
    let e = expect_error(r, StatusCode::UNPROCESSABLE_ENTITY, "template_syntax").await;
    assert_eq!((e["field"].as_str(), e["line"].as_i64()), (Some("text"), Some(2)));
    assert!(e["column"].as_i64().unwrap() > 1);
    // Too many variables is refused the same way.
    let many: String = (0..101).map(|i| format!("{{{{ v{i} }}}}")).collect();
    let r = app.post("/prompts/p/versions/", json!({"version_string": "v2", "text": many})).await;
    let too_many = expect_error(r, StatusCode::UNPROCESSABLE_ENTITY, "template_syntax").await;
    assert!(too_many["message"].as_str().unwrap().contains("101 variables; the limit is 100"), "{too_many}");
    // Conflicts with the current state.
    expect_error(app.post("/prompts/", json!({"name": "p"})).await, StatusCode::CONFLICT, "prompt_exists").await;
    let r = app.post("/prompts/p/versions/", json!({"version_string": "v1", "text": "again"})).await;
    expect_error(r, StatusCode::CONFLICT, "version_exists").await;
    let e = expect_error(app.deploy("p", "production", "v9").await, StatusCode::NOT_FOUND, "version_not_found").await;
    assert_eq!(e["field"], "version_string");
    let e = expect_error(app.deploy("p", "moon", "v1").await, StatusCode::UNPROCESSABLE_ENTITY, "unknown_environment")
        .await;
    assert!(e["message"].as_str().unwrap().contains("production"), "lists the known environments: {e}");
    expect_error(app.deploy("nope", "production", "v1").await, StatusCode::NOT_FOUND, "not_found").await;
    let r = app.post("/deployments/rollback", json!({"prompt_name": "p", "environment": "production"})).await;
    expect_error(r, StatusCode::CONFLICT, "not_deployed").await;
    // Size and shape limits.
    let huge = json!({"version_string": "v3", "text": "x".repeat(100 * 1024)});
    expect_error(app.post("/prompts/p/versions/", huge).await, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
        .await;
    let deep = "[".repeat(200) + &"]".repeat(200);
    expect_error(raw("/prompts/", &deep).await.unwrap(), StatusCode::BAD_REQUEST, "too_deeply_nested").await;
    let r = app.http.post(app.url("/prompts/")).bearer_auth(&app.token).body("{\"name\": \"x\"}").send().await.unwrap();
    expect_error(r, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type").await;
    // Queries.
    let e = expect_error(app.get("/prompts/?limit=100000").await, StatusCode::BAD_REQUEST, "invalid_query").await;
    assert_eq!(e["field"], "limit");
    let e = expect_error(app.get("/prompts/p/deployed/").await, StatusCode::BAD_REQUEST, "invalid_query").await;
    assert_eq!(e["field"], "environment");
    let e = expect_error(
        app.get("/prompts/p/deployed/?environment=production&as_of=yesterday").await,
        StatusCode::BAD_REQUEST,
        "invalid_query",
    )
    .await;
    assert_eq!(e["field"], "as_of");
    expect_error(app.get("/events?order=sideways").await, StatusCode::BAD_REQUEST, "invalid_query").await;
    expect_error(app.get("/events?limit=abc").await, StatusCode::BAD_REQUEST, "invalid_query").await;
    // The change stream checks its resume position and environment before it starts
    // (schemathesis found a panic on a very negative position).
    let min = i64::MIN;
    let e = expect_error(
        app.get(&format!("/changes/stream?last_event_id={min}")).await,
        StatusCode::BAD_REQUEST,
        "invalid_query",
    )
    .await;
    assert_eq!(e["field"], "last_event_id");
    let r = app.http.get(app.url("/changes/stream")).bearer_auth(&app.token).header("Last-Event-ID", "-1").send().await;
    expect_error(r.unwrap(), StatusCode::BAD_REQUEST, "invalid_query").await;
    let e = expect_error(
        app.get("/changes/stream?environment=moon").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown_environment",
    )
    .await;
    assert_eq!(e["field"], "environment");
    // Unknown routes and methods.
    expect_error(app.get("/no/such/thing").await, StatusCode::NOT_FOUND, "not_found").await;
    let r = app.http.put(app.url("/prompts/")).bearer_auth(&app.token).send().await.unwrap();
    expect_error(r, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
    expect_error(app.get("/prompts/UPPER").await, StatusCode::NOT_FOUND, "not_found").await;

    assert_eq!(app.event_count().await, before, "refused requests append nothing");
    let verify = expect_status(app.get("/audit/verify").await, StatusCode::OK).await;
    assert_eq!(verify["ok"], true);
});

both_backends!(paths_answer_with_and_without_trailing_slash, |backend| async move {
    let app = spawn_app(backend).await;
    expect_status(app.post("/prompts", json!({"name": "a"})).await, StatusCode::CREATED).await;
    expect_status(app.get("/prompts").await, StatusCode::OK).await;
    expect_status(app.get("/prompts/").await, StatusCode::OK).await;
    expect_status(app.get("/prompts/a/").await, StatusCode::OK).await;
    expect_status(app.get("/prompts/a/versions").await, StatusCode::OK).await;
    expect_status(app.get("/prompts/a/deployments").await, StatusCode::OK).await;
    let docs = app.get("/openapi.json").await;
    let spec = expect_status(docs, StatusCode::OK).await;
    assert!(spec["paths"]["/prompts/{name}/deployed/"].is_object());
    let page = app.get("/docs/").await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("swagger"), "docs page is served locally");
});
