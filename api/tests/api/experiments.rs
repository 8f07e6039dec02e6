//! A/B experiments through the HTTP API: start, re-weight, stop, the errors, and how a
//! plain deploy ends an experiment, on both databases.

use crate::helpers::*;
use promptos_testkit::both_backends;
use reqwest::StatusCode;
use serde_json::{json, Value};

fn split(name: &str, env: &str, variants: &[(&str, u8)]) -> Value {
    let variants: Vec<Value> = variants.iter().map(|(v, w)| json!({"version_string": v, "weight": w})).collect();
    json!({"prompt_name": name, "environment": env, "variants": variants})
}

async fn deployed(app: &TestApp, name: &str, env: &str) -> Value {
    expect_status(app.get(&format!("/prompts/{name}/deployed/?environment={env}")).await, StatusCode::OK).await
}

both_backends!(an_experiment_runs_from_start_to_promotion_with_an_audit_trail, |backend| async move {
    let app = spawn_app(backend).await;
    app.create_prompt("checkout").await;
    for v in ["v1", "v2", "v3"] {
        app.create_version("checkout", v, &format!("Buy now ({v}), {{{{ who }}}}")).await;
    }
    expect_status(app.deploy("checkout", "production", "v1").await, StatusCode::OK).await;

    let started = app.post("/deployments/split", split("checkout", "production", &[("v1", 50), ("v2", 50)])).await;
    let started = expect_status(started, StatusCode::CREATED).await;
    assert_eq!(started["variants"][1]["version_string"], "v2");
    assert_eq!(started["buckets"].as_array().unwrap().len(), 100);
    let experiment_id = started["experiment_id"].as_str().unwrap().to_owned();
    let during = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);

    // The deployed answer carries the split; its top-level fields are the first variant,
    // which is what clients that know nothing of experiments (the seed's SDK) read.
    let live = deployed(&app, "checkout", "production").await;
    assert_eq!(live["version_string"], "v1");
    assert_eq!(live["prompt_text"], "Buy now (v1), {{ who }}");
    assert_eq!(live["experiment"]["experiment_id"], experiment_id.as_str());
    assert_eq!(live["experiment"]["variants"][1]["prompt_text"], "Buy now (v2), {{ who }}");
    let staging = app.get("/prompts/checkout/deployed/?environment=staging").await;
    expect_error(staging, StatusCode::NOT_FOUND, "not_found").await;

    // Refusals.
    let again = app.post("/deployments/split", split("checkout", "production", &[("v1", 50), ("v3", 50)])).await;
    expect_error(again, StatusCode::CONFLICT, "experiment_running").await;
    let bad = app.post("/deployments/split", split("checkout", "development", &[("v1", 50), ("v2", 40)])).await;
    let e = expect_error(bad, StatusCode::UNPROCESSABLE_ENTITY, "invalid_split").await;
    assert_eq!(e["field"], "variants");
    assert!(e["message"].as_str().unwrap().contains("add up to 90"), "{e}");
    let missing = app.post("/deployments/split", split("checkout", "development", &[("v1", 50), ("v9", 50)])).await;
    expect_error(missing, StatusCode::NOT_FOUND, "version_not_found").await;
    let over = app.post("/deployments/split", split("checkout", "development", &[("v1", 150), ("v2", 50)])).await;
    expect_error(over, StatusCode::UNPROCESSABLE_ENTITY, "invalid_split").await;
    let none = app.post("/deployments/split/weights", split("checkout", "staging", &[("v1", 90), ("v2", 10)])).await;
    expect_error(none, StatusCode::CONFLICT, "no_experiment").await;
    let editor = app.user_token("eddie", "editor").await;
    let r = app
        .send(
            reqwest::Method::POST,
            "/deployments/split/weights",
            Some(&editor),
            Some(split("checkout", "production", &[("v1", 90), ("v2", 10)])),
        )
        .await;
    expect_error(r, StatusCode::FORBIDDEN, "forbidden").await;

    // Re-weight, then promote the winner.
    let r = app.post("/deployments/split/weights", split("checkout", "production", &[("v2", 10), ("v1", 90)])).await;
    let reweighted = expect_status(r, StatusCode::OK).await;
    assert_eq!(reweighted["variants"][0]["weight"], 90, "weights are kept in the experiment's order");
    assert_eq!(reweighted["experiment_id"], experiment_id.as_str());
    let live = deployed(&app, "checkout", "production").await;
    assert_eq!(live["experiment"]["variants"][0]["weight"], 90);
    let stop = json!({"prompt_name": "checkout", "environment": "production", "version_string": "v3"});
    let e = expect_error(
        app.post("/deployments/split/stop", stop).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "not_in_experiment",
    )
    .await;
    assert_eq!(e["field"], "version_string");
    let stop = json!({"prompt_name": "checkout", "environment": "production", "version_string": "v2"});
    let stopped = expect_status(app.post("/deployments/split/stop", stop).await, StatusCode::OK).await;
    assert_eq!(stopped["outcome"], "promoted");
    let live = deployed(&app, "checkout", "production").await;
    assert_eq!(live["version_string"], "v2");
    assert!(live.get("experiment").is_none(), "{live}");
    // Auditors' time travel sees the split that was running then, with its weights then.
    let after = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let then = app.get(&format!("/prompts/checkout/deployed/?environment=production&as_of={during}")).await;
    let then = expect_status(then, StatusCode::OK).await;
    assert_eq!(then["experiment"]["experiment_id"], experiment_id.as_str(), "{then}");
    assert_eq!(then["experiment"]["variants"][0]["weight"], 50);
    let now = app.get(&format!("/prompts/checkout/deployed/?environment=production&as_of={after}")).await;
    let now = expect_status(now, StatusCode::OK).await;
    assert_eq!(now["version_string"], "v2");
    assert!(now.get("experiment").is_none(), "{now}");

    // A plain deploy ends an experiment too, and says so.
    let r = app.post("/deployments/split", split("checkout", "production", &[("v2", 20), ("v3", 80)])).await;
    expect_status(r, StatusCode::CREATED).await;
    let deployed_v1 = expect_status(app.deploy("checkout", "production", "v1").await, StatusCode::OK).await;
    assert_eq!(deployed_v1["ended_experiment"], true);
    assert!(deployed(&app, "checkout", "production").await.get("experiment").is_none());

    // The audit trail: every step, in order.
    let page = expect_status(app.get("/prompts/checkout/deployments/").await, StatusCode::OK).await;
    let actions: Vec<&str> =
        page["history"].as_array().unwrap().iter().rev().map(|h| h["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        [
            "deploy",
            "experiment_started",
            "experiment_reweighted",
            "experiment_stopped",
            "deploy",
            "experiment_started",
            "experiment_stopped",
            "deploy"
        ]
    );
    assert!(page["experiments"].as_object().unwrap().is_empty());
    let events = expect_status(app.get("/events?prompt=checkout&type=ExperimentStopped").await, StatusCode::OK).await;
    let outcomes: Vec<&str> =
        events["items"].as_array().unwrap().iter().map(|e| e["payload"]["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["promoted", "ended_by_deploy"]);
    let verify = expect_status(app.get("/audit/verify").await, StatusCode::OK).await;
    assert_eq!(verify["ok"], true, "{verify}");
});
