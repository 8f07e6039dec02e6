//! Chat prompts, model configuration and includes through the SDK, against a real server
//! and nats-server.

mod common;

use common::*;
use minijinja::context;
use promptos_sdk::{Error, Prompts};
use serde_json::json;
use std::time::Duration;

const HOURS: Duration = Duration::from_secs(10 * 3600);
const PUSH_DEADLINE: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_prompts_render_with_their_config_and_text_prompts_are_unchanged() {
    let server = Server::start(None).await;
    server.post("/prompts/", json!({"name": "support-chat"})).await;
    server
        .post(
            "/prompts/support-chat/versions/",
            json!({"version_string": "v1", "config": {"model": "gpt-4o", "temperature": 0.2},
                   "messages": [{"role": "system", "content": "You help {{ customer }}."},
                                {"role": "user", "content": "{{ question }}"}]}),
        )
        .await;
    server.deploy("support-chat", "production", "v1").await;
    server.prompt("greeting", "Hello {{ who }}", 1, &["production"]).await;
    let key = server.api_key(&["production"]).await;
    let prompts = Prompts::connect(&server.base).api_key(key).ttl(HOURS).build().await.unwrap();

    let chat = prompts
        .get_chat("support-chat", "production", context! { customer => "Alex", question => "Where is my parcel?" })
        .await
        .unwrap();
    let rendered: Vec<(&str, &str)> = chat.messages.iter().map(|m| (m.role.as_str(), m.content.as_str())).collect();
    assert_eq!(rendered, [("system", "You help Alex."), ("user", "Where is my parcel?")]);
    assert_eq!(chat.config.unwrap()["model"], "gpt-4o");
    assert_eq!(chat.version_string, "v1");

    let err = prompts.get("support-chat", "production", context! {}).await.unwrap_err();
    assert!(matches!(&err, Error::WrongKind { hint, .. } if hint == "get_chat"), "{err}");
    assert_eq!(err.to_string(), "prompt \"support-chat\" is a chat prompt; use get_chat");
    let err = prompts.get_chat("greeting", "production", context! {}).await.unwrap_err();
    assert!(matches!(err, Error::WrongKind { .. }), "{err}");
    let missing = prompts.get_chat("support-chat", "production", context! { customer => "Alex" }).await.unwrap_err();
    assert!(matches!(missing, Error::MissingVariable { ref name, .. } if name == "question"), "{missing}");
    assert_eq!(prompts.get("greeting", "production", context! { who => "Alex" }).await.unwrap(), "Hello Alex v1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redeploy_of_an_included_prompt_reaches_its_includers_in_the_sdk_by_push() {
    let nats = Nats::start();
    let server = Server::start(Some(nats.url())).await;
    server.prompt("company-persona", "You are Ava from ACME", 2, &["production"]).await;
    server.post("/prompts/", json!({"name": "support"})).await;
    server
        .post(
            "/prompts/support/versions/",
            json!({"version_string": "v1", "text": "{% include \"company-persona\" %}. Help {{ customer }}."}),
        )
        .await;
    server.deploy("support", "production", "v1").await;
    let key = server.api_key(&["production"]).await;
    let prompts = Prompts::connect(&server.base).api_key(key).nats_url(nats.url()).ttl(HOURS).build().await.unwrap();
    let render = || async { prompts.get("support", "production", context! { customer => "Alex" }).await.unwrap() };
    assert_eq!(render().await, "You are Ava from ACME v1. Help Alex.");
    let t = prompts.get_template("support", "production").await.unwrap();
    assert_eq!(t.includes.unwrap()["company-persona"], "v1");

    // Only the persona is redeployed; support's cached text must follow, by push (the
    // TTL is hours).
    server.deploy("company-persona", "production", "v2").await;
    eventually(PUSH_DEADLINE, "the persona's redeploy to reach the prompt that includes it", || async {
        render().await == "You are Ava from ACME v2. Help Alex."
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_experiment_between_chat_versions_serves_each_subject_its_messages_and_config() {
    let server = Server::start(None).await;
    server.post("/prompts/", json!({"name": "support-chat"})).await;
    for (v, temperature) in [("v1", 0.2), ("v2", 0.8)] {
        let body = json!({"version_string": v, "config": {"temperature": temperature},
            "messages": [{"role": "system", "content": format!("Style {v}.")}, {"role": "user", "content": "{{ q }}"}]});
        server.post("/prompts/support-chat/versions/", body).await;
    }
    server.deploy("support-chat", "production", "v1").await;
    let split = json!({"prompt_name": "support-chat", "environment": "production",
                       "variants": [{"version_string": "v1", "weight": 50}, {"version_string": "v2", "weight": 50}]});
    server.post("/deployments/split", split).await;
    let key = server.api_key(&["production"]).await;
    let prompts = Prompts::connect(&server.base).api_key(key).ttl(HOURS).build().await.unwrap();

    let mut seen = std::collections::BTreeSet::new();
    for i in 0..200 {
        let subject = format!("user-{i}");
        let chat = prompts.get_chat_for("support-chat", "production", &subject, context! { q => "Hi" }).await.unwrap();
        let again = prompts.get_chat_for("support-chat", "production", &subject, context! { q => "Hi" }).await.unwrap();
        assert_eq!(chat, again, "a subject keeps its variant");
        assert!(chat.experiment_id.is_some());
        // Each variant's messages come with its own config.
        let expected = if chat.version_string == "v1" { 0.2 } else { 0.8 };
        assert_eq!(chat.messages[0].content, format!("Style {}.", chat.version_string));
        assert_eq!(chat.config.as_ref().unwrap()["temperature"], expected);
        seen.insert(chat.version_string);
    }
    assert_eq!(seen.len(), 2, "both variants are served");
    let plain = prompts.get_chat("support-chat", "production", context! { q => "Hi" }).await.unwrap();
    assert_eq!((plain.version_string.as_str(), plain.experiment_id), ("v1", None), "get_chat serves the first variant");
    let err = prompts.get_for("support-chat", "production", "user-1", context! {}).await.unwrap_err();
    assert!(matches!(err, Error::WrongKind { .. }), "{err}");
}
