use crate::helpers::*;
use promptos_testkit::both_backends;
use reqwest::StatusCode;
use serde_json::json;

both_backends!(seed_workflow_create_version_deploy_fetch_rollback_history, |backend| async move {
    let app = spawn_app(backend).await;
    let created = app.create_prompt("customer-support-agent").await;
    assert_eq!(created["name"], "customer-support-agent");
    assert_eq!(created["created_by"], "user:admin");

    let v1 = app.create_version("customer-support-agent", "v1.0", "Hello {{ customer_name }}!").await;
    assert_eq!(v1["variables"], json!(["customer_name"]));
    app.create_version("customer-support-agent", "v1.1", "Hi {{ customer_name }}, I am {{ agent }}.").await;

    let r = app.deploy("customer-support-agent", "production", "v1.0").await;
    let d = expect_status(r, StatusCode::OK).await;
    assert_eq!(d["previous_version_string"], json!(null));
    // Read-your-writes: the deployed endpoint answers the new version at once.
    assert_eq!(app.deployed_text("customer-support-agent", "production").await.unwrap(), "Hello {{ customer_name }}!");
    assert_eq!(app.deployed_text("customer-support-agent", "staging").await, None);

    let d = expect_status(app.deploy("customer-support-agent", "production", "v1.1").await, StatusCode::OK).await;
    assert_eq!(d["previous_version_string"], "v1.0");
    assert!(app.deployed_text("customer-support-agent", "production").await.unwrap().starts_with("Hi "));

    let r = app
        .post("/deployments/rollback", json!({"prompt_name": "customer-support-agent", "environment": "production"}))
        .await;
    let rb = expect_status(r, StatusCode::OK).await;
    assert_eq!((rb["action"].as_str(), rb["version_string"].as_str()), (Some("rollback"), Some("v1.0")));
    assert_eq!(app.deployed_text("customer-support-agent", "production").await.unwrap(), "Hello {{ customer_name }}!");

    let detail = expect_status(app.get("/prompts/customer-support-agent").await, StatusCode::OK).await;
    assert_eq!(detail["versions"].as_array().unwrap().len(), 2);
    assert_eq!(detail["deployments"]["production"]["version_string"], "v1.0");
    assert_eq!(detail["live"]["production"], "v1.0");

    let deployments =
        expect_status(app.get("/prompts/customer-support-agent/deployments/").await, StatusCode::OK).await;
    let actions: Vec<_> =
        deployments["history"].as_array().unwrap().iter().map(|h| h["action"].as_str().unwrap().to_owned()).collect();
    assert_eq!(actions, ["rollback", "deploy", "deploy"]);

    let history = expect_status(app.get("/prompts/customer-support-agent/history").await, StatusCode::OK).await;
    let types: Vec<_> =
        history["items"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap().to_owned()).collect();
    assert_eq!(
        types,
        [
            "PromptCreated",
            "VersionCreated",
            "VersionCreated",
            "VersionDeployed",
            "VersionDeployed",
            "DeploymentRolledBack"
        ]
    );
    assert!(history["items"].as_array().unwrap().iter().all(|e| e["actor"] == "user:admin"));

    let verify = expect_status(app.get("/audit/verify").await, StatusCode::OK).await;
    assert_eq!(verify["ok"], true, "{verify}");
});

both_backends!(time_travel_answers_what_was_live_at_a_moment, |backend| async move {
    let app = spawn_app(backend).await;
    app.create_prompt("p").await;
    app.create_version("p", "v1", "one").await;
    app.create_version("p", "v2", "two").await;
    let before_any = chrono::Utc::now();
    let d1 = expect_status(app.deploy("p", "production", "v1").await, StatusCode::OK).await;
    let events = expect_status(
        app.get(&format!("/events?after={}", d1["position"].as_i64().unwrap() - 1)).await,
        StatusCode::OK,
    )
    .await;
    let v1_time = events["items"][0]["recorded_at"].as_str().unwrap().to_owned();
    // Make sure the second deploy gets a later timestamp than the first.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string() <= v1_time {
        assert!(std::time::Instant::now() < deadline);
        tokio::task::yield_now().await;
    }
    expect_status(app.deploy("p", "production", "v2").await, StatusCode::OK).await;

    let at = |t: &str| format!("/prompts/p/deployed/?environment=production&as_of={t}");
    let then = expect_status(app.get(&at(&v1_time)).await, StatusCode::OK).await;
    assert_eq!(then["version_string"], "v1");
    let now = expect_status(
        app.get(&at(&chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true))).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(now["version_string"], "v2");
    let r = app.get(&at(&before_any.to_rfc3339_opts(chrono::SecondsFormat::Micros, true).replace("+00:00", "Z"))).await;
    expect_error(r, StatusCode::NOT_FOUND, "not_found").await;
});

both_backends!(etag_revalidation_answers_304_until_a_new_deploy, |backend| async move {
    let app = spawn_app(backend).await;
    app.create_prompt("p").await;
    app.create_version("p", "v1", "one").await;
    app.create_version("p", "v2", "two").await;
    expect_status(app.deploy("p", "staging", "v1").await, StatusCode::OK).await;
    let url = app.url("/prompts/p/deployed/?environment=staging");
    let first = app.http.get(&url).bearer_auth(&app.token).send().await.unwrap();
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    let again = app.http.get(&url).bearer_auth(&app.token).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    expect_status(app.deploy("p", "staging", "v2").await, StatusCode::OK).await;
    let changed = app.http.get(&url).bearer_auth(&app.token).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(changed.status(), StatusCode::OK);
    assert_ne!(changed.headers()["etag"].to_str().unwrap(), etag);
});

both_backends!(a_deleted_name_can_be_reused_and_both_histories_stay_apart, |backend| async move {
    let app = spawn_app(backend).await;
    let first = app.create_prompt("reused").await;
    app.create_version("reused", "v1", "old text").await;
    expect_status(app.deploy("reused", "production", "v1").await, StatusCode::OK).await;
    let r = app.http.delete(app.url("/prompts/reused")).bearer_auth(&app.token).send().await.unwrap();
    expect_status(r, StatusCode::OK).await;
    expect_error(app.get("/prompts/reused").await, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(app.deployed_text("reused", "production").await, None, "a deleted prompt serves nothing");
    let r = app.post("/prompts/reused/versions/", json!({"version_string": "v2", "text": "x"})).await;
    expect_error(r, StatusCode::NOT_FOUND, "not_found").await;

    let second = app.create_prompt("reused").await;
    assert_ne!(first["prompt_id"], second["prompt_id"]);
    // The new prompt may reuse the old version string: its history is its own.
    app.create_version("reused", "v1", "new text").await;
    let new_history = expect_status(app.get("/prompts/reused/history").await, StatusCode::OK).await;
    assert_eq!(new_history["items"].as_array().unwrap().len(), 2);
    let old = format!("/prompts/reused/history?prompt_id={}", first["prompt_id"].as_str().unwrap());
    let old_history = expect_status(app.get(&old).await, StatusCode::OK).await;
    let types: Vec<_> =
        old_history["items"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap().to_owned()).collect();
    assert_eq!(types, ["PromptCreated", "VersionCreated", "VersionDeployed", "PromptDeleted"]);
    let all = expect_status(app.get("/prompts/?include_deleted=true").await, StatusCode::OK).await;
    assert_eq!(all["items"].as_array().unwrap().len(), 2);
});

both_backends!(listing_filters_by_prefix_and_pages_with_a_cursor, |backend| async move {
    let app = spawn_app(backend).await;
    for name in ["alpha-1", "alpha-2", "alpha-3", "beta"] {
        app.create_prompt(name).await;
    }
    let page = expect_status(app.get("/prompts/?prefix=alpha&limit=2").await, StatusCode::OK).await;
    let names: Vec<_> =
        page["items"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap().to_owned()).collect();
    assert_eq!(names, ["alpha-1", "alpha-2"]);
    let cursor = page["next_cursor"].as_str().unwrap();
    let next =
        expect_status(app.get(&format!("/prompts?prefix=alpha&limit=2&cursor={cursor}")).await, StatusCode::OK).await;
    assert_eq!(next["items"][0]["name"], "alpha-3");
    assert_eq!(next["next_cursor"], json!(null));
    // The `_` in a prefix is matched literally, not as a wildcard.
    let none = expect_status(app.get("/prompts/?prefix=alpha_").await, StatusCode::OK).await;
    assert!(none["items"].as_array().unwrap().is_empty());
});

both_backends!(events_filter_by_type_environment_and_order, |backend| async move {
    let app = spawn_app(backend).await;
    app.create_prompt("p").await;
    app.create_version("p", "v1", "one").await;
    expect_status(app.deploy("p", "staging", "v1").await, StatusCode::OK).await;
    expect_status(app.deploy("p", "production", "v1").await, StatusCode::OK).await;
    let deploys = expect_status(app.get("/events?type=VersionDeployed&order=desc").await, StatusCode::OK).await;
    let envs: Vec<_> = deploys["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["payload"]["environment"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(envs, ["production", "staging"]);
    let staging = expect_status(app.get("/events?environment=staging").await, StatusCode::OK).await;
    assert_eq!(staging["items"].as_array().unwrap().len(), 1);
    let paged = expect_status(app.get("/events?limit=2").await, StatusCode::OK).await;
    let cursor = paged["next_cursor"].as_str().unwrap();
    let rest = expect_status(app.get(&format!("/events?limit=2&cursor={cursor}")).await, StatusCode::OK).await;
    assert_eq!(rest["items"][0]["position"], 3);
    let export = app.get("/events/export").await.text().await.unwrap();
    assert_eq!(export.lines().count() as i64, app.event_count().await);
    let first: serde_json::Value = serde_json::from_str(export.lines().next().unwrap()).unwrap();
    assert_eq!(first["position"], 1);
    assert!(first["hash"].as_str().unwrap().len() == 64);
});
