//! Chat prompts, model configuration, tags and includes through the HTTP API, on both
//! databases, next to plain text prompts.

use crate::helpers::*;
use promptos_testkit::both_backends;
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn version(app: &TestApp, name: &str, body: Value) -> Response {
    app.post(&format!("/prompts/{name}/versions/"), body).await
}

async fn deployed(app: &TestApp, name: &str, env: &str, resolve: bool) -> Response {
    app.get(&format!("/prompts/{name}/deployed/?environment={env}&resolve={resolve}")).await
}

use reqwest::Response;

both_backends!(chat_and_text_prompts_live_side_by_side_with_their_config, |backend| async move {
    let app = spawn_app(backend).await;
    app.create_prompt("support-chat").await;
    app.create_prompt("greeting").await;
    app.create_version("greeting", "v1", "Hello {{ name }}").await;

    let chat = json!({"version_string": "v1", "config": {"model": "gpt-4o", "temperature": 0.2, "max_tokens": 300},
        "messages": [{"role": "system", "content": "You answer for ACME. Be brief."},
                     {"role": "user", "content": "{{ question }}"}]});
    let created = expect_status(version(&app, "support-chat", chat).await, StatusCode::CREATED).await;
    assert_eq!(created["kind"], "chat");
    assert_eq!(created["messages"][1]["content"], "{{ question }}");
    assert_eq!(created["config"]["temperature"], 0.2);
    assert_eq!(created["variables"], json!(["question"]));
    let text = expect_status(app.get("/prompts/greeting/versions/v1").await, StatusCode::OK).await;
    assert_eq!((text["kind"].as_str(), text.get("messages")), (Some("text"), None));

    expect_status(app.deploy("support-chat", "production", "v1").await, StatusCode::OK).await;
    expect_status(app.deploy("greeting", "production", "v1").await, StatusCode::OK).await;
    let live = expect_status(deployed(&app, "support-chat", "production", false).await, StatusCode::OK).await;
    assert_eq!(live["kind"], "chat");
    assert!(live.get("prompt_text").is_none(), "chat prompts have messages, not prompt_text: {live}");
    assert_eq!(live["messages"][0]["role"], "system");
    assert_eq!(live["config"]["model"], "gpt-4o");
    let live = expect_status(deployed(&app, "greeting", "production", false).await, StatusCode::OK).await;
    assert_eq!((live["kind"].as_str(), live["prompt_text"].as_str()), (Some("text"), Some("Hello {{ name }}")));

    // Refusals name the field and, for templates, the message and place.
    let broken = json!({"version_string": "v2", "messages": [{"role": "system", "content": "ok"},
        {"role": "user", "content": "Hi {{ name }"}]});
    let e =
        expect_error(version(&app, "support-chat", broken).await, StatusCode::UNPROCESSABLE_ENTITY, "template_syntax")
            .await;
    assert_eq!((e["field"].as_str(), e["line"].as_u64()), (Some("messages[1].content"), Some(1)));
    let role = json!({"version_string": "v2", "messages": [{"role": "robot", "content": "x"}]});
    let e = expect_error(version(&app, "support-chat", role).await, StatusCode::UNPROCESSABLE_ENTITY, "invalid_input")
        .await;
    assert_eq!(e["field"], "messages[0].role");
    let both = json!({"version_string": "v2", "text": "x", "messages": [{"role": "user", "content": "x"}]});
    expect_error(version(&app, "support-chat", both).await, StatusCode::UNPROCESSABLE_ENTITY, "invalid_input").await;
    let config = json!({"version_string": "v2", "text": "x", "config": [1, 2]});
    let e =
        expect_error(version(&app, "greeting", config).await, StatusCode::UNPROCESSABLE_ENTITY, "invalid_input").await;
    assert_eq!(e["field"], "config");
    let big = json!({"version_string": "v2", "text": "x", "config": {"notes": "x".repeat(20_000)}});
    expect_error(version(&app, "greeting", big).await, StatusCode::UNPROCESSABLE_ENTITY, "invalid_input").await;
});

both_backends!(config_travels_with_the_wording_through_deploy_and_rollback, |backend| async move {
    let app = spawn_app(backend).await;
    app.create_prompt("summary").await;
    for (v, temperature) in [("v1", 0.2), ("v2", 0.9)] {
        let body = json!({"version_string": v, "text": format!("Summarise ({v}): {{{{ doc }}}}"),
                          "config": {"model": "gpt-4o-mini", "temperature": temperature}});
        expect_status(version(&app, "summary", body).await, StatusCode::CREATED).await;
    }
    let config = |live: &Value| live["config"]["temperature"].as_f64();
    expect_status(app.deploy("summary", "staging", "v1").await, StatusCode::OK).await;
    expect_status(app.deploy("summary", "staging", "v2").await, StatusCode::OK).await;
    let live = expect_status(deployed(&app, "summary", "staging", false).await, StatusCode::OK).await;
    assert_eq!((live["version_string"].as_str(), config(&live)), (Some("v2"), Some(0.9)));
    let r = app.post("/deployments/rollback", json!({"prompt_name": "summary", "environment": "staging"})).await;
    expect_status(r, StatusCode::OK).await;
    let live = expect_status(deployed(&app, "summary", "staging", false).await, StatusCode::OK).await;
    assert_eq!((live["version_string"].as_str(), config(&live)), (Some("v1"), Some(0.2)));
});

both_backends!(tags_filter_the_list_and_are_events, |backend| async move {
    let app = spawn_app(backend).await;
    for name in ["refunds", "returns", "marketing-blurb"] {
        app.create_prompt(name).await;
    }
    for name in ["refunds", "returns"] {
        let r = app
            .send(
                reqwest::Method::PUT,
                &format!("/prompts/{name}/tags"),
                Some(&app.token.clone()),
                Some(json!({"tags": ["team:support", "pii", "pii"]})),
            )
            .await;
        let p = expect_status(r, StatusCode::OK).await;
        assert_eq!(p["tags"], json!(["pii", "team:support"]), "sorted, without repeats");
    }
    let page = expect_status(app.get("/prompts/?tag=team:support").await, StatusCode::OK).await;
    let names: Vec<&str> = page["items"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["refunds", "returns"]);
    let page = expect_status(app.get("/prompts/?tag=team").await, StatusCode::OK).await;
    assert!(page["items"].as_array().unwrap().is_empty(), "a tag matches whole, not by prefix");
    let r = app
        .send(
            reqwest::Method::PUT,
            "/prompts/refunds/tags",
            Some(&app.token.clone()),
            Some(json!({"tags": ["Team Support"]})),
        )
        .await;
    let e = expect_error(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_input").await;
    assert_eq!(e["field"], "tags");
    let history = expect_status(app.get("/prompts/refunds/history?type=PromptTagged").await, StatusCode::OK).await;
    assert_eq!(history["items"][0]["payload"]["tags"], json!(["pii", "team:support"]));
});

both_backends!(includes_resolve_per_environment_and_cycles_and_missing_prompts_are_refused, |backend| async move {
    let app = spawn_app(backend).await;
    app.create_prompt("company-persona").await;
    app.create_prompt("support").await;
    app.create_version("company-persona", "v1", "You are Ava from ACME.").await;
    app.create_version("company-persona", "v2", "You are Ava from ACME, and you like {{ hobby }}.").await;
    expect_status(app.deploy("company-persona", "staging", "v1").await, StatusCode::OK).await;
    expect_status(app.deploy("company-persona", "production", "v2").await, StatusCode::OK).await;

    // Created: the include is known and checked.
    let body = json!({"version_string": "v1", "text": "{% include \"company-persona\" %}\nHelp {{ customer }}."});
    let created = expect_status(version(&app, "support", body).await, StatusCode::CREATED).await;
    assert_eq!(created["includes"], json!(["company-persona"]));
    let missing = json!({"version_string": "v2", "text": "{% include \"no-such-prompt\" %}"});
    let e = expect_error(version(&app, "support", missing).await, StatusCode::UNPROCESSABLE_ENTITY, "include_missing")
        .await;
    assert_eq!(e["field"], "text");
    let itself = json!({"version_string": "v2", "text": "{% include \"support\" %}"});
    expect_error(version(&app, "support", itself).await, StatusCode::UNPROCESSABLE_ENTITY, "include_cycle").await;
    let back = json!({"version_string": "v3", "text": "{% include \"support\" %}"});
    let e =
        expect_error(version(&app, "company-persona", back).await, StatusCode::UNPROCESSABLE_ENTITY, "include_cycle")
            .await;
    assert!(e["message"].as_str().unwrap().contains("company-persona → support → company-persona"), "{e}");
    let dynamic = json!({"version_string": "v2", "text": "{% include persona %}"});
    expect_error(version(&app, "support", dynamic).await, StatusCode::UNPROCESSABLE_ENTITY, "template_syntax").await;

    // Deployed: each environment resolves to the persona deployed there.
    expect_status(app.deploy("support", "staging", "v1").await, StatusCode::OK).await;
    expect_status(app.deploy("support", "production", "v1").await, StatusCode::OK).await;
    let raw = expect_status(deployed(&app, "support", "staging", false).await, StatusCode::OK).await;
    assert_eq!(raw["prompt_text"], "{% include \"company-persona\" %}\nHelp {{ customer }}.");
    let staging_v1 = expect_status(deployed(&app, "support", "staging", true).await, StatusCode::OK).await;
    assert_eq!(staging_v1["prompt_text"], "You are Ava from ACME.\nHelp {{ customer }}.");
    assert_eq!(staging_v1["includes"], json!({"company-persona": "v1"}));
    let production = expect_status(deployed(&app, "support", "production", true).await, StatusCode::OK).await;
    assert_eq!(production["prompt_text"], "You are Ava from ACME, and you like {{ hobby }}.\nHelp {{ customer }}.");
    assert_eq!(production["variables"], json!(["customer", "hobby"]), "the included text's variables count");
    // Whitespace control and final newlines come out as minijinja's own include gives them.
    app.create_prompt("sign-off").await;
    app.create_version("sign-off", "v1", "\nBest, Ava\n").await;
    expect_status(app.deploy("sign-off", "staging", "v1").await, StatusCode::OK).await;
    app.create_prompt("letter").await;
    app.create_version("letter", "v1", "Hi {{ customer }}!\n  {%- include \"sign-off\" -%}  \n").await;
    expect_status(app.deploy("letter", "staging", "v1").await, StatusCode::OK).await;
    let letter = expect_status(deployed(&app, "letter", "staging", true).await, StatusCode::OK).await;
    assert_eq!(letter["prompt_text"], "Hi {{ customer }}!\nBest, Ava");

    // A deploy where the included prompt is not live is refused.
    let e = expect_error(
        app.deploy("support", "development", "v1").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "include_missing",
    )
    .await;
    assert!(e["message"].as_str().unwrap().contains("not deployed in \"development\""), "{e}");

    // Redeploying the persona changes what support serves in staging, and its ETag.
    let etag = |r: &Response| r.headers()["etag"].to_str().unwrap().to_owned();
    let before = etag(&deployed(&app, "support", "staging", true).await);
    expect_status(app.deploy("company-persona", "staging", "v2").await, StatusCode::OK).await;
    let r = deployed(&app, "support", "staging", true).await;
    assert_ne!(etag(&r), before, "the resolved answer has a new ETag");
    let staging = expect_status(r, StatusCode::OK).await;
    assert_eq!(staging["includes"], json!({"company-persona": "v2"}));
    // Time travel resolves includes as they were deployed at that moment.
    let then = staging_v1["deployed_at"].as_str().unwrap().replace('+', "%2B");
    let r = app.get(&format!("/prompts/support/deployed/?environment=staging&resolve=true&as_of={then}")).await;
    let past = expect_status(r, StatusCode::OK).await;
    assert_eq!(past["prompt_text"], "You are Ava from ACME.\nHelp {{ customer }}.", "{past}");
    assert_eq!(past["includes"], json!({"company-persona": "v1"}));
    let r = app.get(&format!("/prompts/support/deployed/?environment=staging&as_of={then}")).await;
    assert_eq!(
        expect_status(r, StatusCode::OK).await["prompt_text"],
        "{% include \"company-persona\" %}\nHelp {{ customer }}."
    );
    // A rollback to a version whose include no longer resolves there is refused.
    app.create_prompt("faq-footer").await;
    app.create_version("faq-footer", "v1", "Thanks for asking!").await;
    expect_status(app.deploy("faq-footer", "development", "v1").await, StatusCode::OK).await;
    app.create_prompt("faq").await;
    app.create_version("faq", "v1", "Q: {{ q }} {% include \"faq-footer\" %}").await;
    app.create_version("faq", "v2", "Q: {{ q }}").await;
    expect_status(app.deploy("faq", "development", "v1").await, StatusCode::OK).await;
    expect_status(app.deploy("faq", "development", "v2").await, StatusCode::OK).await;
    let r = app.send(reqwest::Method::DELETE, "/prompts/faq-footer", Some(&app.token.clone()), None).await;
    expect_status(r, StatusCode::OK).await;
    let r = app.post("/deployments/rollback", json!({"prompt_name": "faq", "environment": "development"})).await;
    let e = expect_error(r, StatusCode::UNPROCESSABLE_ENTITY, "include_missing").await;
    assert_eq!(e["field"], "to_version_string");

    // A prompt others include cannot be deleted from under them.
    let r = app.send(reqwest::Method::DELETE, "/prompts/company-persona", Some(&app.token.clone()), None).await;
    let e = expect_error(r, StatusCode::CONFLICT, "still_included").await;
    assert!(e["message"].as_str().unwrap().contains("support (production)"), "{e}");
    let verify = expect_status(app.get("/audit/verify").await, StatusCode::OK).await;
    assert_eq!(verify["ok"], true, "{verify}");
});
