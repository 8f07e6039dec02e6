//! LLM optimisation against local fakes of each provider's wire format.

use crate::fake_llm::*;
use crate::helpers::*;
use promptos_api::config::{Secret, ServeArgs};
use promptos_store::Backend;
use promptos_testkit::both_backends;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

const OPENAI_KEY: &str = "sk-test-openai-key-never-shown";
const ORIGINAL: &str =
    "Hello {{ customer_name }}, I would like to maybe help you with your order {{ order_id }} today.";
const BETTER: &str = "Hi {{ customer_name }}! How can I help with order {{ order_id }}?";

fn openai(fake: &FakeLlm) -> impl FnOnce(&mut ServeArgs) + '_ {
    move |args| {
        args.llm.llm_openai_api_key = Some(Secret::new(OPENAI_KEY));
        args.llm.llm_openai_base_url = fake.url.clone();
        args.llm.llm_max_retries = 2;
    }
}

async fn app_with_prompt(backend: Backend, configure: impl FnOnce(&mut ServeArgs)) -> TestApp {
    let app = spawn_app_with(backend, configure).await;
    app.create_prompt("support").await;
    app.create_version("support", "v1", ORIGINAL).await;
    app
}

async fn optimize(app: &TestApp, body: Value) -> reqwest::Response {
    app.post("/prompts/support/optimize", body).await
}

fn clarity() -> Value {
    json!({"version_string": "v1", "goal": "clarity_conciseness"})
}

both_backends!(openai_suggestion_is_reviewed_then_accepted_with_its_origin, |backend| async move {
    let fake = FakeLlm::start().await;
    fake.reply([openai_reply(BETTER)]);
    let app = app_with_prompt(backend, openai(&fake)).await;
    let before = app.event_count().await;

    let s = expect_status(optimize(&app, clarity()).await, StatusCode::OK).await;
    assert_eq!(s["original"], ORIGINAL);
    assert_eq!(s["suggestion"], BETTER);
    assert_eq!((s["provider"].as_str(), s["model"].as_str()), (Some("openai"), Some("gpt-4o-mini")));
    assert_eq!(s["variables"], json!({"kept": ["customer_name", "order_id"], "missing": [], "added": []}));
    assert_eq!((s["variables_ok"].as_bool(), s["attempts"].as_u64()), (Some(true), Some(1)));
    assert_eq!(app.event_count().await, before, "optimising appends nothing");

    // The wire format: chat completions, bearer key, the seed's meta-prompt around the text.
    let sent = fake.received();
    assert_eq!(sent.len(), 1);
    assert_eq!((&sent[0].method, sent[0].uri.as_str()), (&reqwest::Method::POST, "/chat/completions"));
    assert_eq!(sent[0].header("authorization").unwrap(), format!("Bearer {OPENAI_KEY}"));
    assert_eq!(sent[0].body["model"], "gpt-4o-mini");
    let content = sent[0].body["messages"][0]["content"].as_str().unwrap();
    assert!(content.contains(
        "You are an expert prompt engineer. Your task is to rewrite the following user-provided prompt to be clearer"
    ));
    assert!(content.contains("placeholders like {{variable}}"), "literal placeholder reaches the model: {content}");
    assert!(content.ends_with(&format!("Original Prompt:\n{ORIGINAL}")), "{content}");

    // Accepting records the origin in the event; an edit before accepting is recorded too.
    let token = s["suggestion_token"].as_str().unwrap();
    let r = app
        .post("/prompts/support/versions/", json!({"version_string": "v2", "text": BETTER, "suggestion_token": token}))
        .await;
    let v2 = expect_status(r, StatusCode::CREATED).await;
    assert_eq!(
        v2["origin"],
        json!({"goal": "clarity_conciseness", "provider": "openai", "model": "gpt-4o-mini", "from_version": "v1",
            "meta_prompt_version": "v1", "edited": false})
    );
    let edited = format!("{BETTER} Thanks!");
    let r = app
        .post("/prompts/support/versions/", json!({"version_string": "v3", "text": edited, "suggestion_token": token}))
        .await;
    assert_eq!(expect_status(r, StatusCode::CREATED).await["origin"]["edited"], true);
    let history = expect_status(app.get("/prompts/support/history?type=VersionCreated").await, StatusCode::OK).await;
    let payloads: Vec<&Value> = history["items"].as_array().unwrap().iter().map(|e| &e["payload"]).collect();
    assert!(payloads[0].get("origin").is_none(), "v1 was written by a person");
    assert_eq!(payloads[1]["origin"]["provider"], "openai");

    // A forged token, or one made for another prompt, is refused.
    let r = app
        .post(
            "/prompts/support/versions/",
            json!({"version_string": "v4", "text": BETTER, "suggestion_token": format!("{token}x")}),
        )
        .await;
    assert_eq!(expect_error(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_input").await["field"], "suggestion_token");
    app.create_prompt("other").await;
    let r = app
        .post("/prompts/other/versions/", json!({"version_string": "v1", "text": BETTER, "suggestion_token": token}))
        .await;
    assert_eq!(expect_error(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_input").await["field"], "suggestion_token");
});

#[tokio::test]
async fn azure_uses_the_deployment_path_and_api_key_header() {
    let fake = FakeLlm::start().await;
    fake.reply([openai_reply(BETTER)]);
    let app = app_with_prompt(Backend::Sqlite, |args| {
        args.llm.llm_azure_endpoint = Some(fake.url.clone());
        args.llm.llm_azure_api_key = Some(Secret::new("azure-key-123"));
        args.llm.llm_azure_deployment = Some("gpt4o-prod".into());
    })
    .await;
    let s = expect_status(optimize(&app, clarity()).await, StatusCode::OK).await;
    assert_eq!((s["provider"].as_str(), s["model"].as_str()), (Some("azure"), Some("gpt4o-prod")));
    let sent = &fake.received()[0];
    assert_eq!(sent.uri, "/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-10-21");
    assert_eq!(sent.header("api-key").as_deref(), Some("azure-key-123"));
    assert_eq!(sent.header("authorization"), None);
    assert!(sent.body["messages"][0]["content"].as_str().unwrap().contains(ORIGINAL));
}

#[tokio::test]
async fn keys_in_custom_headers_never_follow_a_redirect_to_another_host() {
    // The provider redirects to another host (`localhost` is another origin than
    // `127.0.0.1`), which would receive the key if the redirect were followed.
    let elsewhere = FakeLlm::start().await;
    elsewhere.always(openai_reply(BETTER));
    let other_host = elsewhere.url.replace("127.0.0.1", "localhost");
    for provider in ["azure", "gemini"] {
        let fake = FakeLlm::start().await;
        fake.always(Reply::redirect(&format!("{other_host}/steal")));
        let app = app_with_prompt(Backend::Sqlite, |args| {
            args.llm.llm_max_retries = 0;
            if provider == "azure" {
                args.llm.llm_azure_endpoint = Some(fake.url.clone());
                args.llm.llm_azure_api_key = Some(Secret::new("azure-key-123"));
                args.llm.llm_azure_deployment = Some("gpt4o-prod".into());
            } else {
                args.llm.llm_gemini_api_key = Some(Secret::new("gemini-key-456"));
                args.llm.llm_gemini_base_url = fake.url.clone();
            }
        })
        .await;
        let e = expect_error(optimize(&app, clarity()).await, StatusCode::BAD_GATEWAY, "llm_provider_error").await;
        assert!(e["message"].as_str().unwrap().contains("307"), "{provider}: {e}");
        assert_eq!(fake.received().len(), 1, "{provider}");
    }
    assert!(elsewhere.received().is_empty(), "the other host got a request: {:?}", elsewhere.received());
}

#[tokio::test]
async fn gemini_uses_generate_content() {
    let fake = FakeLlm::start().await;
    fake.reply([gemini_reply(BETTER)]);
    let app = app_with_prompt(Backend::Sqlite, |args| {
        args.llm.llm_gemini_api_key = Some(Secret::new("gemini-key-456"));
        args.llm.llm_gemini_base_url = fake.url.clone();
    })
    .await;
    let s = expect_status(optimize(&app, json!({"text": ORIGINAL, "goal": "tone"})).await, StatusCode::OK).await;
    assert_eq!((s["provider"].as_str(), s["suggestion"].as_str()), (Some("gemini"), Some(BETTER)));
    assert_eq!(s["from_version"], Value::Null);
    let sent = &fake.received()[0];
    assert_eq!(sent.uri, "/models/gemini-2.0-flash:generateContent");
    assert_eq!(sent.header("x-goog-api-key").as_deref(), Some("gemini-key-456"));
    let text = sent.body["contents"][0]["parts"][0]["text"].as_str().unwrap();
    assert!(text.contains("warm, professional") && text.contains(ORIGINAL), "{text}");
}

#[tokio::test]
async fn bedrock_converse_requests_are_sigv4_signed() {
    let fake = FakeLlm::start().await;
    fake.reply([bedrock_reply(BETTER)]);
    let app = app_with_prompt(Backend::Sqlite, |args| {
        args.llm.llm_bedrock_region = Some("eu-west-1".into());
        args.llm.llm_bedrock_endpoint = Some(fake.url.clone());
        args.llm.aws_access_key_id = Some(Secret::new("AKIDTESTKEY"));
        args.llm.aws_secret_access_key = Some(Secret::new("secret/key/never/shown"));
        args.llm.aws_session_token = Some(Secret::new("session-token-789"));
    })
    .await;
    let s = expect_status(optimize(&app, clarity()).await, StatusCode::OK).await;
    assert_eq!((s["provider"].as_str(), s["suggestion"].as_str()), (Some("bedrock"), Some(BETTER)));
    let sent = &fake.received()[0];
    assert_eq!(sent.uri, "/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/converse");
    assert!(sent.body["messages"][0]["content"][0]["text"].as_str().unwrap().contains(ORIGINAL));
    let auth = sent.header("authorization").expect("a SigV4 Authorization header");
    let date = sent.header("x-amz-date").expect("x-amz-date");
    assert_eq!(date.len(), 16, "{date}");
    let credential = format!("AWS4-HMAC-SHA256 Credential=AKIDTESTKEY/{}/eu-west-1/bedrock/aws4_request, ", &date[..8]);
    assert!(auth.starts_with(&credential), "{auth}");
    let signed = auth.split("SignedHeaders=").nth(1).unwrap().split(',').next().unwrap();
    for h in ["host", "x-amz-date", "x-amz-security-token"] {
        assert!(signed.split(';').any(|s| s == h), "{h} is signed: {auth}");
    }
    let signature = auth.rsplit("Signature=").next().unwrap();
    assert!(signature.len() == 64 && signature.chars().all(|c| c.is_ascii_hexdigit()), "{auth}");
    assert_eq!(sent.header("x-amz-security-token").as_deref(), Some("session-token-789"));
    assert!(!auth.contains("secret/key"));
}

#[tokio::test]
async fn providers_and_goals_are_listed_without_secrets() {
    let fake = FakeLlm::start().await;
    fake.reply([openai_reply(BETTER)]);
    let app = app_with_prompt(Backend::Sqlite, |args| {
        args.llm.llm_openai_api_key = Some(Secret::new(OPENAI_KEY));
        args.llm.llm_compatible_base_url = Some(fake.url.clone());
        args.llm.llm_compatible_model = Some("llama3.2".into());
        args.llm.llm_default_provider = Some("compatible".into());
    })
    .await;
    let r = app.get("/optimize/providers").await;
    let listing = expect_status(r, StatusCode::OK).await;
    assert!(!listing.to_string().contains(OPENAI_KEY));
    assert_eq!(
        listing["providers"],
        json!([{"name": "compatible", "default_model": "llama3.2", "default": true},
            {"name": "openai", "default_model": "gpt-4o-mini", "default": false}])
    );
    let goals: Vec<&str> = listing["goals"].as_array().unwrap().iter().map(|g| g["goal"].as_str().unwrap()).collect();
    assert_eq!(goals, ["clarity_conciseness", "few_shot_examples", "safety_guardrails", "structure", "tone"]);
    // The default provider is the compatible server; it got no key, so no Authorization.
    let s = expect_status(optimize(&app, clarity()).await, StatusCode::OK).await;
    assert_eq!((s["provider"].as_str(), s["model"].as_str()), (Some("compatible"), Some("llama3.2")));
    let sent = &fake.received()[0];
    assert_eq!((sent.uri.as_str(), sent.header("authorization")), ("/chat/completions", None));
    assert_eq!(sent.body["model"], "llama3.2");
    // The meta-prompts live in an admin-only `system` environment.
    let envs = expect_status(app.get("/environments").await, StatusCode::OK).await;
    assert!(
        envs["items"].as_array().unwrap().iter().any(|e| e["name"] == "system" && e["protected"] == true),
        "{envs}"
    );
}

#[tokio::test]
async fn a_suggestion_that_breaks_variables_is_retried_once_then_flagged() {
    let fake = FakeLlm::start().await;
    fake.reply([openai_reply("Hi there! How can I help?"), openai_reply(BETTER)]);
    let app = app_with_prompt(Backend::Sqlite, openai(&fake)).await;
    let s = expect_status(optimize(&app, clarity()).await, StatusCode::OK).await;
    assert_eq!((s["suggestion"].as_str(), s["attempts"].as_u64()), (Some(BETTER), Some(2)));
    assert_eq!(s["variables_ok"], true);
    let second = fake.received()[1].body["messages"][0]["content"].as_str().unwrap().to_owned();
    assert!(second.contains("dropped {{ customer_name }}, {{ order_id }}"), "{second}");
    assert!(second.contains("Keep exactly these placeholders"), "{second}");

    // Still wrong the second time: returned, flagged, not retried again.
    fake.reply([openai_reply("Hi {{ name }}!"), openai_reply("Hi {{ name }}, order {{ order_id }}.")]);
    let s = expect_status(optimize(&app, clarity()).await, StatusCode::OK).await;
    assert_eq!((s["variables_ok"].as_bool(), s["attempts"].as_u64()), (Some(false), Some(2)));
    assert_eq!(s["variables"], json!({"kept": ["order_id"], "missing": ["customer_name"], "added": ["name"]}));
    assert_eq!(fake.received().len(), 4);
}

#[tokio::test]
async fn provider_failures_are_502_or_504_in_plain_words_and_append_nothing() {
    let fake = FakeLlm::start().await;
    let app = app_with_prompt(Backend::Sqlite, |args| {
        openai(&fake)(args);
        args.llm.llm_timeout_secs = 1;
    })
    .await;
    let before = app.event_count().await;
    let cases: Vec<(Vec<Reply>, StatusCode, &str, &str, usize)> = vec![
        (
            vec![Reply::status(401, r#"{"error":{"message":"Incorrect API key provided"}}"#)],
            StatusCode::BAD_GATEWAY,
            "llm_provider_error",
            "openai refused the credentials (HTTP 401): Incorrect API key provided",
            1,
        ),
        (
            vec![Reply::status(429, r#"{"error":{"message":"Rate limit reached"}}"#); 3],
            StatusCode::BAD_GATEWAY,
            "llm_provider_error",
            "openai is limiting requests (HTTP 429): Rate limit reached",
            3,
        ),
        (
            vec![Reply::status(503, "upstream overloaded"); 3],
            StatusCode::BAD_GATEWAY,
            "llm_provider_error",
            "openai failed (HTTP 503): upstream overloaded",
            3,
        ),
        (
            vec![Reply::ok(json!({"choices": []}))],
            StatusCode::BAD_GATEWAY,
            "llm_provider_error",
            "openai sent a reply PromptOS cannot read: no answer text where the format puts it",
            1,
        ),
        (
            vec![Reply::status(200, "<html>gateway</html>")],
            StatusCode::BAD_GATEWAY,
            "llm_provider_error",
            "openai sent a reply PromptOS cannot read: not JSON",
            1,
        ),
        (
            vec![Reply::slow(Duration::from_secs(5)); 3],
            StatusCode::GATEWAY_TIMEOUT,
            "llm_timeout",
            "openai did not answer within 1 s",
            3,
        ),
    ];
    for (replies, status, code, message, requests) in cases {
        let already = fake.received().len();
        fake.reply(replies);
        let error = expect_error(optimize(&app, clarity()).await, status, code).await;
        let text = error["message"].as_str().unwrap();
        assert!(text.starts_with(message), "{text}");
        assert!(!text.contains(OPENAI_KEY));
        assert_eq!(fake.received().len() - already, requests, "attempts for {message}");
    }
    // A transient failure followed by an answer succeeds.
    fake.reply([Reply::status(500, "oops"), openai_reply(BETTER)]);
    expect_status(optimize(&app, clarity()).await, StatusCode::OK).await;
    assert_eq!(app.event_count().await, before);
}

#[tokio::test]
async fn editing_the_meta_prompt_changes_what_the_next_optimisation_sends() {
    let fake = FakeLlm::start().await;
    fake.always(openai_reply(BETTER));
    let app = app_with_prompt(Backend::Sqlite, openai(&fake)).await;
    let name = "promptos.optimize.clarity_conciseness";
    app.create_version(name, "v2", "Make this shorter, keep placeholders:\n{{ prompt_text }}").await;
    expect_status(app.deploy(name, "system", "v2").await, StatusCode::OK).await;
    let s = expect_status(optimize(&app, clarity()).await, StatusCode::OK).await;
    assert_eq!(s["meta_prompt_version"], "v2");
    let sent = fake.received().last().unwrap().body["messages"][0]["content"].as_str().unwrap().to_owned();
    assert_eq!(sent, format!("Make this shorter, keep placeholders:\n{ORIGINAL}"));
    // `system` is protected: an editor may edit the meta-prompt but not make it live.
    let editor = app.user_token("ed", "editor").await;
    let r = app
        .send(
            reqwest::Method::POST,
            "/deployments/",
            Some(&editor),
            Some(json!({"prompt_name": name, "environment": "system", "version_string": "v1"})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn bad_optimisation_requests_are_refused_clearly() {
    let fake = FakeLlm::start().await;
    let app = app_with_prompt(Backend::Sqlite, openai(&fake)).await;
    let viewer = app.user_token("vi", "viewer").await;
    let r = app.send(reqwest::Method::POST, "/prompts/support/optimize", Some(&viewer), Some(clarity())).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = optimize(&app, json!({"version_string": "v1", "goal": "poetry"})).await;
    let e = expect_error(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_input").await;
    assert_eq!(e["field"], "goal");
    assert!(e["message"].as_str().unwrap().contains("clarity_conciseness"), "{e}");
    let r = optimize(&app, json!({"version_string": "v1", "text": "x", "goal": "tone"})).await;
    expect_error(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_input").await;
    let r = optimize(&app, json!({"version_string": "v9", "goal": "tone"})).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = optimize(&app, json!({"version_string": "v1", "goal": "tone", "provider": "nope"})).await;
    assert_eq!(expect_error(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_input").await["field"], "provider");
    assert!(fake.received().is_empty());

    // Without any provider configured, the answer says so.
    let bare = app_with_prompt(Backend::Sqlite, |_| {}).await;
    let r = optimize(&bare, clarity()).await;
    let e = expect_error(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_input").await;
    assert_eq!(e["field"], "provider");
    assert!(e["message"].as_str().unwrap().contains("no LLM provider is configured"), "{e}");
    let listing = expect_status(bare.get("/optimize/providers").await, StatusCode::OK).await;
    assert_eq!(listing, json!({"providers": [], "goals": []}));
}
