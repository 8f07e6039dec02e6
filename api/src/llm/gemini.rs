//! Google Gemini's `generateContent`, and `streamGenerateContent` for a streamed answer.

use super::{build, json_post, renamed, turns, urlencode, Answer, Completion, Piece, Provider};
use crate::config::Secret;
use serde_json::{json, Value};

/// Google Gemini (the Generative Language API).
pub struct Gemini {
    pub base_url: String,
    pub api_key: Secret,
    pub model: String,
}

/// OpenAI's configuration names and Gemini's `generationConfig` equivalents. Others
/// (`response_format`, `logit_bias`, …) have none and are left out.
const GENERATION: &[(&str, &str)] = &[
    ("temperature", "temperature"),
    ("top_p", "topP"),
    ("top_k", "topK"),
    ("max_tokens", "maxOutputTokens"),
    ("stop", "stopSequences"),
    ("seed", "seed"),
    ("presence_penalty", "presencePenalty"),
    ("frequency_penalty", "frequencyPenalty"),
];

impl Provider for Gemini {
    fn name(&self) -> &str {
        "gemini"
    }
    fn default_model(&self) -> &str {
        &self.model
    }
    fn request(&self, http: &reqwest::Client, c: &Completion<'_>, stream: bool) -> Result<reqwest::Request, String> {
        // `alt=sse`: without it the stream is one JSON array, readable only once whole.
        let method = if stream { "streamGenerateContent?alt=sse" } else { "generateContent" };
        let url = format!("{}/models/{}:{method}", self.base_url.trim_end_matches('/'), urlencode(c.model));
        build(json_post(http, &url, &body(c)).header("x-goog-api-key", self.api_key.expose()))
    }
    fn answer(&self, reply: &Value) -> Option<Answer> {
        let text = text_of(reply)?;
        let (input_tokens, output_tokens) = usage(reply);
        Some(Answer { text, input_tokens, output_tokens })
    }
    fn streams(&self) -> bool {
        true
    }
    fn delta(&self, event: &Value) -> Piece {
        let (input_tokens, output_tokens) = usage(event);
        Piece { text: text_of(event).unwrap_or_default(), input_tokens, output_tokens }
    }
}

/// System messages become `systemInstruction`; the assistant speaks as `model`.
fn body(c: &Completion<'_>) -> Value {
    let (system, turns) = turns(c.messages, "model");
    let parts = |texts: Vec<&str>| texts.into_iter().map(|t| json!({"text": t})).collect::<Vec<_>>();
    let contents: Vec<Value> =
        turns.into_iter().map(|(role, texts)| json!({"role": role, "parts": parts(texts)})).collect();
    let mut body = json!({"contents": contents});
    if !system.is_empty() {
        body["systemInstruction"] = json!({"parts": parts(system)});
    }
    let generation = renamed(c.config, GENERATION);
    if !generation.is_empty() {
        body["generationConfig"] = Value::Object(generation);
    }
    body
}

/// The first candidate's text, in a whole reply or one streamed event.
fn text_of(reply: &Value) -> Option<String> {
    let parts = reply["candidates"][0]["content"]["parts"].as_array()?;
    Some(parts.iter().filter_map(|p| p["text"].as_str()).collect())
}

/// Streamed events each report the usage so far; the last one is whole.
fn usage(reply: &Value) -> (Option<u64>, Option<u64>) {
    let usage = &reply["usageMetadata"];
    (usage["promptTokenCount"].as_u64(), usage["candidatesTokenCount"].as_u64())
}
