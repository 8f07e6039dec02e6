//! The LLM client against local fakes of each provider's wire format: chat messages and
//! the model configuration where each format puts them, token usage, and streaming.

use crate::fake_llm::*;
use promptos_api::config::Secret;
use promptos_api::llm::{
    self, Answer, Azure, Bedrock, Completion, Gemini, Message, OpenAi, Policy, Provider, ProviderError,
};
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How long a test waits for something that should happen at once.
const PATIENCE: Duration = Duration::from_secs(10);

fn policy() -> Policy {
    Policy { timeout: Duration::from_secs(5), max_retries: 2, backoff: Duration::from_millis(10) }
}

fn conversation() -> Vec<Message> {
    vec![
        Message::new("system", "You answer in one sentence."),
        Message::user("What is PromptOS?"),
        Message::new("assistant", "A prompt manager."),
        Message::user("Say more."),
    ]
}

fn configuration() -> Map<String, Value> {
    let config = json!({"model": "ignored-here", "temperature": 0.2, "top_p": 0.9, "max_tokens": 64,
        "stop": ["END"], "seed": 7, "response_format": {"type": "text"}});
    config.as_object().unwrap().clone()
}

fn openai(fake: &FakeLlm) -> Arc<dyn Provider> {
    Arc::new(OpenAi {
        name: "openai".into(),
        base_url: fake.url.clone(),
        api_key: Some(Secret::new("sk-test")),
        model: "gpt-4o-mini".into(),
    })
}

fn azure(fake: &FakeLlm) -> Arc<dyn Provider> {
    Arc::new(Azure {
        endpoint: fake.url.clone(),
        api_key: Secret::new("azure-key"),
        deployment: "gpt4o-prod".into(),
        api_version: "2024-10-21".into(),
    })
}

fn gemini(fake: &FakeLlm) -> Arc<dyn Provider> {
    Arc::new(Gemini {
        base_url: fake.url.clone(),
        api_key: Secret::new("gemini-key"),
        model: "gemini-2.0-flash".into(),
    })
}

fn bedrock(fake: &FakeLlm) -> Arc<dyn Provider> {
    Arc::new(Bedrock {
        endpoint: fake.url.clone(),
        region: "eu-west-1".into(),
        access_key_id: Secret::new("AKIDTESTKEY"),
        secret_access_key: Secret::new("secret"),
        session_token: None,
        model: "anthropic.claude-3-5-haiku-20241022-v1:0".into(),
    })
}

/// The conversation with the configuration, answered whole.
async fn complete(provider: &dyn Provider) -> Result<Answer, ProviderError> {
    let (messages, config) = (conversation(), configuration());
    let c = Completion { model: provider.default_model(), messages: &messages, config: Some(&config) };
    llm::complete(provider, &llm::client(), policy(), &c).await
}

/// The conversation streamed in a task of its own, so the test can watch the pieces
/// arrive while the provider is still answering.
fn stream(
    provider: Arc<dyn Provider>,
    policy: Policy,
) -> (JoinHandle<Result<Answer, ProviderError>>, mpsc::Receiver<String>) {
    let (deltas, received) = mpsc::channel(64);
    let task = tokio::spawn(async move {
        let (messages, config) = (conversation(), configuration());
        let c = Completion { model: provider.default_model(), messages: &messages, config: Some(&config) };
        llm::stream(provider.as_ref(), &llm::client(), policy, &c, deltas).await
    });
    (task, received)
}

async fn next_delta(deltas: &mut mpsc::Receiver<String>) -> String {
    tokio::time::timeout(PATIENCE, deltas.recv()).await.expect("a delta in time").expect("a delta, not the end")
}

async fn rest(mut deltas: mpsc::Receiver<String>) -> Vec<String> {
    let mut out = Vec::new();
    while let Some(d) = deltas.recv().await {
        out.push(d);
    }
    out
}

fn answer(text: &str, usage: (u64, u64)) -> Answer {
    Answer { text: text.into(), input_tokens: Some(usage.0), output_tokens: Some(usage.1) }
}

#[tokio::test]
async fn openai_sends_the_messages_and_the_configuration_under_its_own_names_and_reads_usage() {
    let fake = FakeLlm::start().await;
    fake.reply([openai_reply_with_usage("It manages prompts.", (31, 4))]);
    assert_eq!(complete(openai(&fake).as_ref()).await.unwrap(), answer("It manages prompts.", (31, 4)));
    let sent = &fake.received()[0];
    assert_eq!(
        (sent.uri.as_str(), sent.header("authorization").as_deref()),
        ("/chat/completions", Some("Bearer sk-test"))
    );
    assert_eq!(
        sent.body,
        json!({"model": "gpt-4o-mini", "temperature": 0.2, "top_p": 0.9, "max_tokens": 64, "stop": ["END"], "seed": 7,
            "response_format": {"type": "text"},
            "messages": [{"role": "system", "content": "You answer in one sentence."},
                {"role": "user", "content": "What is PromptOS?"},
                {"role": "assistant", "content": "A prompt manager."},
                {"role": "user", "content": "Say more."}]})
    );
}

#[tokio::test]
async fn azure_sends_the_messages_and_the_configuration_to_the_deployment_and_reads_usage() {
    let fake = FakeLlm::start().await;
    fake.reply([openai_reply_with_usage("It manages prompts.", (31, 4))]);
    assert_eq!(complete(azure(&fake).as_ref()).await.unwrap(), answer("It manages prompts.", (31, 4)));
    let sent = &fake.received()[0];
    assert_eq!(sent.uri, "/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-10-21");
    assert_eq!(sent.header("api-key").as_deref(), Some("azure-key"));
    assert_eq!(sent.body.get("model"), None, "the deployment chooses the model");
    assert_eq!((sent.body["temperature"].clone(), sent.body["max_tokens"].clone()), (json!(0.2), json!(64)));
    assert_eq!(sent.body["messages"][0], json!({"role": "system", "content": "You answer in one sentence."}));
    assert_eq!(sent.body["messages"].as_array().unwrap().len(), 4);
}

#[tokio::test]
async fn gemini_takes_the_system_message_apart_and_the_configuration_in_generation_config() {
    let fake = FakeLlm::start().await;
    fake.reply([gemini_reply_with_usage("It manages prompts.", (29, 5))]);
    assert_eq!(complete(gemini(&fake).as_ref()).await.unwrap(), answer("It manages prompts.", (29, 5)));
    let sent = &fake.received()[0];
    assert_eq!(sent.uri, "/models/gemini-2.0-flash:generateContent");
    assert_eq!(
        sent.body,
        json!({"systemInstruction": {"parts": [{"text": "You answer in one sentence."}]},
            "contents": [{"role": "user", "parts": [{"text": "What is PromptOS?"}]},
                {"role": "model", "parts": [{"text": "A prompt manager."}]},
                {"role": "user", "parts": [{"text": "Say more."}]}],
            "generationConfig": {"temperature": 0.2, "topP": 0.9, "maxOutputTokens": 64, "stopSequences": ["END"],
                "seed": 7}})
    );
}

#[tokio::test]
async fn bedrock_takes_the_system_message_apart_and_the_configuration_in_inference_config() {
    let fake = FakeLlm::start().await;
    fake.reply([bedrock_reply_with_usage("It manages prompts.", (27, 6))]);
    assert_eq!(complete(bedrock(&fake).as_ref()).await.unwrap(), answer("It manages prompts.", (27, 6)));
    let sent = &fake.received()[0];
    assert_eq!(sent.uri, "/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/converse");
    assert!(sent.header("authorization").unwrap().starts_with("AWS4-HMAC-SHA256 Credential=AKIDTESTKEY/"));
    assert_eq!(
        sent.body,
        json!({"system": [{"text": "You answer in one sentence."}],
            "messages": [{"role": "user", "content": [{"text": "What is PromptOS?"}]},
                {"role": "assistant", "content": [{"text": "A prompt manager."}]},
                {"role": "user", "content": [{"text": "Say more."}]}],
            "inferenceConfig": {"temperature": 0.2, "topP": 0.9, "maxTokens": 64, "stopSequences": ["END"]}})
    );
}

#[tokio::test]
async fn openai_streams_the_first_piece_before_the_provider_has_finished() {
    let fake = FakeLlm::start().await;
    let gate = Gate::new();
    fake.reply([Reply::openai_stream(&["It ", "manages ", "prompts."], (31, 3)).held_after_first_piece(&gate)]);
    let (task, mut deltas) = stream(openai(&fake), policy());

    assert_eq!(next_delta(&mut deltas).await, "It ");
    assert!(!task.is_finished(), "the fake still holds the rest of the answer");
    gate.release();
    assert_eq!(task.await.unwrap().unwrap(), answer("It manages prompts.", (31, 3)));
    assert_eq!(rest(deltas).await, ["manages ", "prompts."]);

    let sent = &fake.received()[0];
    assert_eq!(
        (sent.body["stream"].clone(), sent.body["stream_options"].clone()),
        (json!(true), json!({"include_usage": true}))
    );
    assert_eq!((sent.body["model"].clone(), sent.body["temperature"].clone()), (json!("gpt-4o-mini"), json!(0.2)));
}

#[tokio::test]
async fn gemini_streams_the_first_piece_before_the_provider_has_finished() {
    let fake = FakeLlm::start().await;
    let gate = Gate::new();
    fake.reply([Reply::gemini_stream(&["It ", "manages ", "prompts."], (29, 3)).held_after_first_piece(&gate)]);
    let (task, mut deltas) = stream(gemini(&fake), policy());

    assert_eq!(next_delta(&mut deltas).await, "It ");
    assert!(!task.is_finished(), "the fake still holds the rest of the answer");
    gate.release();
    assert_eq!(task.await.unwrap().unwrap(), answer("It manages prompts.", (29, 3)));
    assert_eq!(rest(deltas).await, ["manages ", "prompts."]);

    let sent = &fake.received()[0];
    assert_eq!(sent.uri, "/models/gemini-2.0-flash:streamGenerateContent?alt=sse");
    assert_eq!(sent.body["systemInstruction"], json!({"parts": [{"text": "You answer in one sentence."}]}));
    assert_eq!(sent.body["generationConfig"]["maxOutputTokens"], 64);
}

#[tokio::test]
async fn bedrock_streams_its_answer_in_one_delta() {
    let fake = FakeLlm::start().await;
    fake.reply([bedrock_reply_with_usage("It manages prompts.", (27, 6))]);
    let (task, deltas) = stream(bedrock(&fake), policy());
    assert_eq!(task.await.unwrap().unwrap(), answer("It manages prompts.", (27, 6)));
    assert_eq!(rest(deltas).await, ["It manages prompts."]);
    assert!(fake.received()[0].uri.ends_with("/converse"));
}

#[tokio::test]
async fn a_server_that_ignores_stream_answers_in_one_delta() {
    let fake = FakeLlm::start().await;
    fake.reply([openai_reply_with_usage("Whole at once.", (31, 3))]);
    let (task, deltas) = stream(openai(&fake), policy());
    assert_eq!(task.await.unwrap().unwrap(), answer("Whole at once.", (31, 3)));
    assert_eq!(rest(deltas).await, ["Whole at once."]);
}

#[tokio::test]
async fn a_stream_that_stalls_after_its_first_piece_times_out_and_is_not_sent_again() {
    let fake = FakeLlm::start().await;
    // Never released: the provider stops after the first piece.
    let gate = Gate::new();
    fake.always(Reply::openai_stream(&["It ", "manages."], (31, 2)).held_after_first_piece(&gate));
    let quick = Policy { timeout: Duration::from_millis(300), ..policy() };
    let (task, mut deltas) = stream(openai(&fake), quick);

    assert_eq!(next_delta(&mut deltas).await, "It ");
    let error = tokio::time::timeout(PATIENCE, task).await.expect("the stall is cut short").unwrap().unwrap_err();
    assert!(matches!(error, ProviderError::Timeout { .. }), "{error:?}");
    assert_eq!(rest(deltas).await, Vec::<String>::new());
    assert_eq!(fake.received().len(), 1, "a retry would repeat the text already sent");
}

#[tokio::test]
async fn a_stream_is_retried_when_it_fails_before_its_first_piece() {
    let fake = FakeLlm::start().await;
    let slow_start = Reply { delay: Duration::from_secs(3), ..Reply::openai_stream(&["late"], (1, 1)) };
    fake.reply([
        Reply::status(503, r#"{"error":{"message":"overloaded"}}"#),
        slow_start,
        Reply::openai_stream(&["It ", "manages."], (31, 2)),
    ]);
    let quick = Policy { timeout: Duration::from_millis(500), ..policy() };
    let (task, deltas) = stream(openai(&fake), quick);
    assert_eq!(task.await.unwrap().unwrap(), answer("It manages.", (31, 2)));
    assert_eq!(rest(deltas).await, ["It ", "manages."], "only the answer that got through reached the caller");
    assert_eq!(fake.received().len(), 3);
}

#[tokio::test]
async fn an_error_event_inside_a_stream_is_reported_in_the_provider_s_words() {
    let fake = FakeLlm::start().await;
    fake.always(Reply::events([
        json!({"error": {"message": "The server had an error while processing your request."}}),
    ]));
    let (task, deltas) = stream(openai(&fake), Policy { max_retries: 0, ..policy() });
    let error = task.await.unwrap().unwrap_err();
    assert_eq!(
        error.to_string(),
        "openai broke off the answer: The server had an error while processing your request."
    );
    assert!(rest(deltas).await.is_empty());
}

#[tokio::test]
async fn concurrent_completions_are_each_answered_by_what_they_ask() {
    let fake = FakeLlm::start().await;
    fake.respond(|r| {
        let question = r.body["messages"].as_array().unwrap().last().unwrap()["content"].as_str().unwrap().to_owned();
        openai_reply(&format!("answer to {question}"))
    });
    let provider = openai(&fake);
    let http = llm::client();
    let questions: Vec<Vec<Message>> = (0..8).map(|i| vec![Message::user(format!("q{i}"))]).collect();
    let answers = futures::future::join_all(questions.iter().map(|messages| {
        let c = Completion { model: "gpt-4o-mini", messages, config: None };
        let (provider, http) = (provider.clone(), http.clone());
        async move { llm::complete(provider.as_ref(), &http, policy(), &c).await.unwrap().text }
    }))
    .await;
    assert_eq!(answers, (0..8).map(|i| format!("answer to q{i}")).collect::<Vec<_>>());
    assert_eq!(fake.received().len(), 8);
}
