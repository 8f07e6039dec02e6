//! Change requests: four-eyes approval and scheduled changes for environments with a
//! policy (`PROMPTOS_APPROVALS`).

use crate::helpers::*;
use promptos_core::names::EnvironmentName;
use promptos_testkit::both_backends;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn production_needs(approvals: u8) -> impl FnOnce(&mut promptos_api::config::ServeArgs) {
    move |args| args.approvals = vec![(EnvironmentName::parse("production").unwrap(), approvals)]
}

/// `bot` with v1 (live in production, forced in by the admin), v2 and v3.
async fn bot(app: &TestApp) {
    app.create_prompt("bot").await;
    for v in ["v1", "v2", "v3"] {
        app.create_version("bot", v, &format!("Hello from {v}")).await;
    }
    let r = app
        .post(
            "/deployments/",
            json!({"prompt_name": "bot", "environment": "production", "version_string": "v1", "force": true}),
        )
        .await;
    expect_status(r, StatusCode::OK).await;
}

async fn call(app: &TestApp, token: &str, path: &str, body: Value) -> reqwest::Response {
    app.send(Method::POST, path, Some(token), Some(body)).await
}

/// Opens a request to deploy `version` of bot to production; returns its id.
async fn request_deploy(app: &TestApp, token: &str, version: &str) -> String {
    let body = json!({
        "environment": "production",
        "title": format!("Ship {version}"),
        "description": "Friendlier wording",
        "changes": [{"action": "deploy", "prompt_name": "bot", "version_string": version}],
    });
    let r = expect_status(call(app, token, "/change-requests/", body).await, StatusCode::CREATED).await;
    assert_eq!(r["status"], "open", "{r}");
    r["id"].as_str().unwrap().to_owned()
}

async fn action(app: &TestApp, token: &str, id: &str, what: &str) -> reqwest::Response {
    call(app, token, &format!("/change-requests/{id}/{what}"), json!({})).await
}

async fn detail(app: &TestApp, id: &str) -> Value {
    expect_status(app.get(&format!("/change-requests/{id}")).await, StatusCode::OK).await
}

/// Events of the given types, in log order, as (type, actor, payload, whole event).
async fn events_of(app: &TestApp, types: &[&str]) -> Vec<Value> {
    let page = expect_status(app.get("/events?limit=500").await, StatusCode::OK).await;
    let events = page["items"].as_array().expect("events").clone();
    events.into_iter().filter(|e| types.contains(&e["type"].as_str().unwrap())).collect()
}

async fn wait_for_status(app: &TestApp, id: &str, status: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let d = detail(app, id).await;
        if d["status"] == status {
            return d;
        }
        assert!(Instant::now() < deadline, "request {id} did not become {status}: {d}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

both_backends!(an_editor_requests_an_admin_approves_and_the_version_goes_live, |backend| async move {
    let app = spawn_app_with(backend, production_needs(1)).await;
    bot(&app).await;
    let ed = app.user_token("ed", "editor").await;
    let id = request_deploy(&app, &ed, "v2").await;

    // The reviewer sees the change against what is live, with its diff.
    let d = detail(&app, &id).await;
    assert_eq!((d["author"].as_str(), d["ready"].as_bool()), (Some("user:ed"), Some(false)), "{d}");
    let change = &d["changes"][0];
    assert_eq!(
        (change["live"]["version_string"].as_str(), change["version_string"].as_str()),
        (Some("v1"), Some("v2"))
    );
    let unified = change["diff"]["unified"].as_str().unwrap();
    assert!(unified.contains("-Hello from v1") && unified.contains("+Hello from v2"), "{unified}");
    // Nothing is live before it is applied; an unapproved request does not apply.
    expect_error(action(&app, &ed, &id, "apply").await, StatusCode::CONFLICT, "approvals_missing").await;
    assert_eq!(app.deployed_text("bot", "production").await.as_deref(), Some("Hello from v1"));

    let approved = expect_status(
        call(&app, &app.token, &format!("/change-requests/{id}/approve"), json!({"comment": "Reads well"})).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!((approved["approvals_current"].as_u64(), approved["ready"].as_bool()), (Some(1), Some(true)));
    assert_eq!(approved["approvals"][0]["comment"], "Reads well");

    // Running SDKs are told about the deploy, and only about it.
    let feed = app
        .http
        .get(app.url("/changes/stream?environment=production"))
        .bearer_auth(&app.token)
        .header("Last-Event-ID", approved["position"].to_string())
        .send()
        .await
        .unwrap();
    let feed = tokio::spawn(crate::changes::read_changes(feed, 2));
    let applied = expect_status(action(&app, &ed, &id, "apply").await, StatusCode::OK).await;
    assert_eq!(applied["status"], "applied", "{applied}");
    assert_eq!(app.deployed_text("bot", "production").await.as_deref(), Some("Hello from v2"));

    // The whole exchange is in the log, in order, with its actors; the deploy names
    // the request that produced it.
    let types = ["ChangeRequestOpened", "ChangeRequestApproved", "VersionDeployed", "ChangeRequestApplied"];
    let log: Vec<(String, String)> = events_of(&app, &types)
        .await
        .iter()
        .filter(|e| e["type"] != "VersionDeployed" || e["change_request"] == id.as_str())
        .map(|e| (e["type"].as_str().unwrap().to_owned(), e["actor"].as_str().unwrap().to_owned()))
        .collect();
    let expected = [
        ("ChangeRequestOpened", "user:ed"),
        ("ChangeRequestApproved", "user:admin"),
        ("VersionDeployed", "user:ed"),
        ("ChangeRequestApplied", "user:ed"),
    ];
    assert_eq!(log, expected.map(|(t, a)| (t.to_owned(), a.to_owned())));
    let filtered = expect_status(app.get("/events?type=ChangeRequestApplied").await, StatusCode::OK).await;
    assert_eq!(filtered["items"].as_array().unwrap().len(), 1);
    let verify = expect_status(app.get("/audit/verify").await, StatusCode::OK).await;
    assert_eq!(verify["ok"], true, "{verify}");
    let r = app
        .post(
            "/deployments/",
            json!({"prompt_name": "bot", "environment": "production", "version_string": "v3", "force": true}),
        )
        .await;
    expect_status(r, StatusCode::OK).await;
    let changes = feed.await.unwrap();
    let seen: Vec<(&str, &str)> =
        changes.iter().map(|c| (c["type"].as_str().unwrap(), c["version_string"].as_str().unwrap())).collect();
    assert_eq!(seen, [("VersionDeployed", "v2"), ("VersionDeployed", "v3")]);
    // Time travel: just after the approval, it was still open.
    let approved_at = approved["approvals"][0]["at"].as_str().unwrap();
    let then =
        expect_status(app.get(&format!("/change-requests/?prompt=bot&as_of={approved_at}")).await, StatusCode::OK)
            .await;
    assert_eq!(
        (then["items"][0]["id"].as_str(), then["items"][0]["status"].as_str()),
        (Some(id.as_str()), Some("open"))
    );
    // The prompt's page finds the request.
    let listed = expect_status(app.get("/change-requests/?prompt=bot&state=applied").await, StatusCode::OK).await;
    assert_eq!(listed["items"][0]["id"], id.as_str());
});

both_backends!(the_author_cannot_approve_and_closed_requests_cannot_be_applied, |backend| async move {
    let app = spawn_app_with(backend, production_needs(2)).await;
    bot(&app).await;
    let ada = app.user_token("ada", "admin").await;
    let bo = app.user_token("bo", "admin").await;
    // An admin's own request needs two other admins.
    let id = request_deploy(&app, &app.token, "v2").await;
    expect_error(action(&app, &app.token, &id, "approve").await, StatusCode::FORBIDDEN, "own_change_request").await;
    expect_status(action(&app, &ada, &id, "approve").await, StatusCode::OK).await;
    // Approving twice is one approval.
    let d = expect_status(action(&app, &ada, &id, "approve").await, StatusCode::OK).await;
    assert_eq!((d["approvals_current"].as_u64(), d["ready"].as_bool()), (Some(1), Some(false)), "{d}");
    expect_error(action(&app, &app.token, &id, "apply").await, StatusCode::CONFLICT, "approvals_missing").await;
    expect_status(action(&app, &bo, &id, "reject").await, StatusCode::OK).await;
    expect_error(action(&app, &app.token, &id, "apply").await, StatusCode::CONFLICT, "change_request_closed").await;
    expect_error(action(&app, &bo, &id, "approve").await, StatusCode::CONFLICT, "change_request_closed").await;

    // Withdrawn: only the author or an admin may withdraw, and then nobody applies it.
    let ed = app.user_token("ed", "editor").await;
    let eve = app.user_token("eve", "editor").await;
    let id = request_deploy(&app, &ed, "v3").await;
    expect_error(action(&app, &eve, &id, "withdraw").await, StatusCode::FORBIDDEN, "forbidden").await;
    expect_status(action(&app, &ed, &id, "withdraw").await, StatusCode::OK).await;
    expect_error(action(&app, &app.token, &id, "apply").await, StatusCode::CONFLICT, "change_request_closed").await;
    assert_eq!(app.deployed_text("bot", "production").await.as_deref(), Some("Hello from v1"));
});

both_backends!(an_expired_request_cannot_be_applied, |backend| async move {
    let app = spawn_app_with(backend, |args| {
        production_needs(1)(args);
        args.change_request_ttl = Duration::from_secs(2);
    })
    .await;
    bot(&app).await;
    let ed = app.user_token("ed", "editor").await;
    let id = request_deploy(&app, &ed, "v2").await;
    expect_status(action(&app, &app.token, &id, "approve").await, StatusCode::OK).await;
    let expired = wait_for_status(&app, &id, "expired", Duration::from_secs(15)).await;
    assert_eq!(expired["activity"].as_array().unwrap().last().unwrap()["actor"], "system");
    expect_error(action(&app, &ed, &id, "apply").await, StatusCode::CONFLICT, "change_request_closed").await;
    assert_eq!(app.deployed_text("bot", "production").await.as_deref(), Some("Hello from v1"));
});

both_backends!(a_request_overtaken_by_another_deploy_needs_a_fresh_approval, |backend| async move {
    let app = spawn_app_with(backend, production_needs(1)).await;
    bot(&app).await;
    let ed = app.user_token("ed", "editor").await;
    let id = request_deploy(&app, &ed, "v2").await;
    expect_status(action(&app, &app.token, &id, "approve").await, StatusCode::OK).await;
    // Someone else puts v3 live in the meantime.
    let r = app
        .post(
            "/deployments/",
            json!({"prompt_name": "bot", "environment": "production", "version_string": "v3", "force": true}),
        )
        .await;
    expect_status(r, StatusCode::OK).await;
    let d = detail(&app, &id).await;
    assert_eq!((d["outdated"].as_bool(), d["ready"].as_bool()), (Some(true), Some(false)), "{d}");
    assert_eq!(d["moved"][0], "bot: v1 → v3");
    assert_eq!(d["approvals"][0]["current"], false);
    let e = expect_error(action(&app, &ed, &id, "apply").await, StatusCode::CONFLICT, "change_request_outdated").await;
    assert!(e["message"].as_str().unwrap().contains("v1 → v3"), "{e}");
    assert_eq!(app.deployed_text("bot", "production").await.as_deref(), Some("Hello from v3"));
    // A fresh look, a fresh approval: now it applies over v3.
    expect_status(action(&app, &app.token, &id, "approve").await, StatusCode::OK).await;
    expect_status(action(&app, &ed, &id, "apply").await, StatusCode::OK).await;
    assert_eq!(app.deployed_text("bot", "production").await.as_deref(), Some("Hello from v2"));
});

both_backends!(two_servers_applying_at_once_apply_once, |backend| async move {
    let app = spawn_app_with(backend, production_needs(1)).await;
    let other = spawn_app_on(app.scratch.beside(), production_needs(1)).await;
    bot(&app).await;
    let ed = app.user_token("ed", "editor").await;
    for round in ["v2", "v3"] {
        let id = request_deploy(&app, &ed, round).await;
        expect_status(action(&app, &app.token, &id, "approve").await, StatusCode::OK).await;
        // The same process twice, then two processes: exactly one apply succeeds.
        let second = if round == "v2" { &app } else { &other };
        let (a, b) = tokio::join!(action(&app, &ed, &id, "apply"), action(second, &ed, &id, "apply"));
        let mut statuses = [a.status(), b.status()];
        statuses.sort();
        assert_eq!(statuses, [StatusCode::OK, StatusCode::CONFLICT], "round {round}");
        let loser = if a.status() == StatusCode::CONFLICT { a } else { b };
        expect_error(loser, StatusCode::CONFLICT, "change_request_closed").await;
        let applied = events_of(&app, &["ChangeRequestApplied"]).await;
        assert_eq!(applied.iter().filter(|e| e["payload"]["request_id"] == id.as_str()).count(), 1);
        let deploys = events_of(&app, &["VersionDeployed"]).await;
        assert_eq!(deploys.iter().filter(|e| e["change_request"] == id.as_str()).count(), 1);
    }
    assert_eq!(app.deployed_text("bot", "production").await.as_deref(), Some("Hello from v3"));
});

both_backends!(a_scheduled_request_is_applied_once_at_its_time, |backend| async move {
    let app = spawn_app_with(backend, production_needs(1)).await;
    bot(&app).await;
    let ed = app.user_token("ed", "editor").await;
    let id = request_deploy(&app, &ed, "v2").await;
    expect_status(action(&app, &app.token, &id, "approve").await, StatusCode::OK).await;
    let at = chrono::Utc::now() + chrono::Duration::seconds(2);
    let r = call(&app, &ed, &format!("/change-requests/{id}/apply"), json!({"at": at.to_rfc3339()})).await;
    let scheduled = expect_status(r, StatusCode::OK).await;
    assert_eq!(scheduled["status"], "open");
    assert!(scheduled["scheduled_at"].is_string(), "{scheduled}");
    assert_eq!(app.deployed_text("bot", "production").await.as_deref(), Some("Hello from v1"));
    let applied = wait_for_status(&app, &id, "applied", Duration::from_secs(20)).await;
    assert_eq!(app.deployed_text("bot", "production").await.as_deref(), Some("Hello from v2"));
    let step = applied["activity"].as_array().unwrap().iter().find(|a| a["kind"] == "applied").unwrap().clone();
    assert_eq!(step["actor"], "system");
    assert!(step["detail"]["delay_ms"].as_i64().unwrap() >= 0, "{step}");
    let closed_at = chrono::DateTime::parse_from_rfc3339(applied["closed_at"].as_str().unwrap()).unwrap();
    assert!(closed_at >= at, "applied at {closed_at}, before its time {at}");
    assert_eq!(events_of(&app, &["ChangeRequestApplied"]).await.len(), 1);
});

both_backends!(direct_changes_where_a_policy_applies_need_a_request_or_force, |backend| async move {
    let app = spawn_app_with(backend, |args| {
        args.approvals = vec![(EnvironmentName::parse("staging").unwrap(), 1)];
    })
    .await;
    app.create_prompt("bot").await;
    app.create_version("bot", "v1", "Hello").await;
    let ed = app.user_token("ed", "editor").await;
    let deploy = json!({"prompt_name": "bot", "environment": "staging", "version_string": "v1"});
    let e = expect_error(
        call(&app, &ed, "/deployments/", deploy.clone()).await,
        StatusCode::CONFLICT,
        "change_request_required",
    )
    .await;
    assert!(e["message"].as_str().unwrap().contains("POST /change-requests/"), "{e}");
    expect_error(app.post("/deployments/", deploy.clone()).await, StatusCode::CONFLICT, "change_request_required")
        .await;
    let split =
        json!({"prompt_name": "bot", "environment": "staging", "variants": [{"version_string": "v1", "weight": 100}]});
    expect_error(call(&app, &ed, "/deployments/split", split).await, StatusCode::CONFLICT, "change_request_required")
        .await;
    let mut forced = deploy.clone();
    forced["force"] = json!(true);
    expect_error(
        call(&app, &ed, "/deployments/", forced.clone()).await,
        StatusCode::CONFLICT,
        "change_request_required",
    )
    .await;
    // Elsewhere nothing changed.
    let dev = json!({"prompt_name": "bot", "environment": "development", "version_string": "v1"});
    expect_status(call(&app, &ed, "/deployments/", dev).await, StatusCode::OK).await;
    // An admin's force goes through and says so in the log.
    expect_status(app.post("/deployments/", forced.clone()).await, StatusCode::OK).await;
    let deploys = events_of(&app, &["VersionDeployed"]).await;
    let staging = deploys.iter().find(|e| e["payload"]["environment"] == "staging").unwrap();
    assert_eq!((staging["forced"].as_bool(), staging["actor"].as_str()), (Some(true), Some("user:admin")), "{staging}");
    assert!(deploys.iter().find(|e| e["payload"]["environment"] == "development").unwrap().get("forced").is_none());

    // A server that forbids forcing refuses it too.
    let strict = spawn_app_with(backend, |args| {
        args.approvals = vec![(EnvironmentName::parse("staging").unwrap(), 1)];
        args.approvals_allow_force = false;
    })
    .await;
    strict.create_prompt("bot").await;
    strict.create_version("bot", "v1", "Hello").await;
    let e =
        expect_error(strict.post("/deployments/", forced).await, StatusCode::CONFLICT, "change_request_required").await;
    assert!(e["message"].as_str().unwrap().contains("PROMPTOS_APPROVALS_ALLOW_FORCE"), "{e}");
    let envs = expect_status(app.get("/environments").await, StatusCode::OK).await;
    let staging = envs["items"].as_array().unwrap().iter().find(|e| e["name"] == "staging").unwrap().clone();
    assert_eq!(staging["approvals_required"], 1, "{envs}");
});

both_backends!(a_request_that_does_not_apply_is_refused_with_what_is_wrong, |backend| async move {
    let app = spawn_app_with(backend, production_needs(1)).await;
    bot(&app).await;
    let open = |changes: Value| json!({"environment": "production", "title": "t", "changes": changes});
    let cases = [
        (
            open(json!([{"action": "deploy", "prompt_name": "bot", "version_string": "v9"}])),
            StatusCode::NOT_FOUND,
            "version_not_found",
            "changes",
        ),
        (
            open(json!([{"action": "deploy", "prompt_name": "nope", "version_string": "v1"}])),
            StatusCode::NOT_FOUND,
            "not_found",
            "changes",
        ),
        (
            open(json!([{"action": "deploy", "prompt_name": "bot", "version_string": "v1"}])),
            StatusCode::CONFLICT,
            "already_live",
            "changes",
        ),
        (open(json!([])), StatusCode::UNPROCESSABLE_ENTITY, "invalid_change_request", "changes"),
        (
            open(
                json!([{"action": "deploy", "prompt_name": "bot", "version_string": "v2"}, {"action": "deploy", "prompt_name": "bot", "version_string": "v3"}]),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_change_request",
            "changes",
        ),
        (
            open(json!([{"action": "deploy", "prompt_name": "Bot!", "version_string": "v2"}])),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
            "changes[0].prompt_name",
        ),
        (
            open(json!([{"action": "launch", "prompt_name": "bot"}])),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            "changes[0]",
        ),
        (
            json!({"environment": "production", "title": "", "changes": []}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
            "title",
        ),
        (
            json!({"environment": "moon", "title": "t", "changes": [{"action": "deploy", "prompt_name": "bot", "version_string": "v2"}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_environment",
            "environment",
        ),
        (
            json!({"environment": "production", "title": "t", "apply_at": "2001-01-01T00:00:00Z",
            "changes": [{"action": "deploy", "prompt_name": "bot", "version_string": "v2"}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
            "apply_at",
        ),
    ];
    let before = app.event_count().await;
    for (body, status, code, field) in cases {
        let e = expect_error(app.post("/change-requests/", body.clone()).await, status, code).await;
        assert!(e["field"].as_str().is_some_and(|f| f.starts_with(field)), "{body} → {e}");
    }
    assert_eq!(app.event_count().await, before, "a refused request writes nothing");
    let unknown = app.get("/change-requests/00000000-0000-0000-0000-000000000000").await;
    expect_error(unknown, StatusCode::NOT_FOUND, "change_request_not_found").await;
    let viewer = app.user_token("vi", "viewer").await;
    let body = open(json!([{"action": "deploy", "prompt_name": "bot", "version_string": "v2"}]));
    expect_error(call(&app, &viewer, "/change-requests/", body).await, StatusCode::FORBIDDEN, "forbidden").await;
});

/// `promptos serve` as a process with production under a one-approval policy.
async fn serve(scratch: &promptos_testkit::Scratch) -> (Child, TestApp) {
    serve_app(scratch, &["--approvals", "production:1"]).await
}

/// Opens and approves a request to deploy v2 of bot, scheduled `secs` from now.
async fn scheduled_request(app: &TestApp, secs: i64) -> (String, chrono::DateTime<chrono::Utc>) {
    bot(app).await;
    let ed = app.user_token("ed", "editor").await;
    let id = request_deploy(app, &ed, "v2").await;
    expect_status(action(app, &app.token, &id, "approve").await, StatusCode::OK).await;
    let at = chrono::Utc::now() + chrono::Duration::seconds(secs);
    let r = call(app, &ed, &format!("/change-requests/{id}/apply"), json!({"at": at.to_rfc3339()})).await;
    expect_status(r, StatusCode::OK).await;
    (id, at)
}

#[tokio::test]
async fn a_schedule_missed_while_the_server_was_down_is_applied_on_start_with_its_delay() {
    let scratch = promptos_testkit::scratch(promptos_store::Backend::Sqlite).await;
    let (server, app) = serve(&scratch).await;
    let (id, at) = scheduled_request(&app, 2).await;
    drop(server);
    // The time passes while no server runs (waiting for the clock, not for a condition).
    let missed_by = chrono::Duration::seconds(2);
    let until = (at + missed_by - chrono::Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(until).await;
    let (_server, app) = serve(&scratch).await;
    let applied = wait_for_status(&app, &id, "applied", Duration::from_secs(20)).await;
    let step = applied["activity"].as_array().unwrap().iter().find(|a| a["kind"] == "applied").unwrap().clone();
    assert!(step["detail"]["delay_ms"].as_i64().unwrap() >= missed_by.num_milliseconds(), "{step}");
    assert_eq!(events_of(&app, &["ChangeRequestApplied"]).await.len(), 1);
    assert_eq!(app.deployed_text("bot", "production").await.as_deref(), Some("Hello from v2"));
}

#[tokio::test]
async fn two_servers_on_postgres_apply_a_schedule_once() {
    let scratch = promptos_testkit::scratch(promptos_store::Backend::Postgres).await;
    let (_a, app) = serve(&scratch).await;
    let (_b, other) = serve(&scratch).await;
    let (id, _) = scheduled_request(&app, 2).await;
    wait_for_status(&other, &id, "applied", Duration::from_secs(20)).await;
    assert_eq!(other.deployed_text("bot", "production").await.as_deref(), Some("Hello from v2"));
    // Both servers kept looking after it was applied; still exactly one of each.
    let settle_after = Instant::now() + Duration::from_secs(2);
    while Instant::now() < settle_after {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(events_of(&app, &["ChangeRequestApplied"]).await.len(), 1);
    let deploys = events_of(&app, &["VersionDeployed"]).await;
    assert_eq!(deploys.iter().filter(|e| e["change_request"] == id.as_str()).count(), 1);
}
