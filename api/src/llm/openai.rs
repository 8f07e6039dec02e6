//! OpenAI's chat completions: OpenAI itself, Azure OpenAI, and the servers that speak the
//! same format (Ollama, vLLM, LM Studio, …).

use super::{build, json_post, urlencode, Answer, Completion, Piece, Provider};
use crate::config::Secret;
use serde_json::{json, Map, Value};

/// OpenAI's chat completions, also spoken by Ollama, vLLM, LM Studio and others.
pub struct OpenAi {
    /// `openai`, or `compatible` for another server.
    pub name: String,
    pub base_url: String,
    pub api_key: Option<Secret>,
    pub model: String,
}

impl Provider for OpenAi {
    fn name(&self) -> &str {
        &self.name
    }
    fn default_model(&self) -> &str {
        &self.model
    }
    fn request(&self, http: &reqwest::Client, c: &Completion<'_>, stream: bool) -> Result<reqwest::Request, String> {
        let url = format!("{}/chat/completions", self.base_url.trim_end_matches('/'));
        let mut builder = json_post(http, &url, &body(Some(c.model), c, stream));
        if let Some(key) = &self.api_key {
            builder = builder.bearer_auth(key.expose());
        }
        build(builder)
    }
    fn answer(&self, reply: &Value) -> Option<Answer> {
        chat_answer(reply)
    }
    fn streams(&self) -> bool {
        true
    }
    fn delta(&self, event: &Value) -> Piece {
        chat_delta(event)
    }
}

/// Azure OpenAI: the deployment in the path, the key in an `api-key` header.
pub struct Azure {
    pub endpoint: String,
    pub api_key: Secret,
    pub deployment: String,
    pub api_version: String,
}

impl Provider for Azure {
    fn name(&self) -> &str {
        "azure"
    }
    fn default_model(&self) -> &str {
        &self.deployment
    }
    fn request(&self, http: &reqwest::Client, c: &Completion<'_>, stream: bool) -> Result<reqwest::Request, String> {
        let url = format!(
            "{}/openai/deployments/{}/chat/completions?api-version={}",
            self.endpoint.trim_end_matches('/'),
            urlencode(c.model),
            urlencode(&self.api_version)
        );
        // The deployment in the path chooses the model; the body names none.
        build(json_post(http, &url, &body(None, c, stream)).header("api-key", self.api_key.expose()))
    }
    fn answer(&self, reply: &Value) -> Option<Answer> {
        chat_answer(reply)
    }
    fn streams(&self) -> bool {
        true
    }
    fn delta(&self, event: &Value) -> Piece {
        chat_delta(event)
    }
}

/// Fields this client sets itself. A configuration cannot replace them: the messages are
/// the caller's, and whether the answer streams decides how the reply is read.
const OWN_FIELDS: [&str; 4] = ["model", "messages", "stream", "stream_options"];

/// A chat completion request. The configuration's other keys go through as they are: its
/// names are OpenAI's own.
fn body(model: Option<&str>, c: &Completion<'_>, stream: bool) -> Value {
    let mut body: Map<String, Value> = c
        .config
        .into_iter()
        .flatten()
        .filter(|(k, _)| !OWN_FIELDS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if let Some(model) = model {
        body.insert("model".into(), model.into());
    }
    body.insert("messages".into(), json!(c.messages));
    if stream {
        body.insert("stream".into(), true.into());
        // Without it a streamed answer reports no usage at all.
        body.insert("stream_options".into(), json!({"include_usage": true}));
    }
    Value::Object(body)
}

/// Token usage, in a whole reply or in a stream's last event.
fn usage(reply: &Value) -> (Option<u64>, Option<u64>) {
    (reply["usage"]["prompt_tokens"].as_u64(), reply["usage"]["completion_tokens"].as_u64())
}

/// The answer in a chat completion.
fn chat_answer(reply: &Value) -> Option<Answer> {
    let text = reply["choices"][0]["message"]["content"].as_str()?.to_owned();
    let (input_tokens, output_tokens) = usage(reply);
    Some(Answer { text, input_tokens, output_tokens })
}

/// One chunk of a streamed chat completion: text in `choices[0].delta.content`, usage in
/// a last chunk without choices.
fn chat_delta(event: &Value) -> Piece {
    let text = event["choices"][0]["delta"]["content"].as_str().unwrap_or_default().to_owned();
    let (input_tokens, output_tokens) = usage(event);
    Piece { text, input_tokens, output_tokens }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::Message;

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        let p = OpenAi {
            name: "openai".into(),
            base_url: "x".into(),
            api_key: Some(Secret::new("sk-123")),
            model: "m".into(),
        };
        assert!(!format!("{:?}", p.api_key).contains("sk-123"));
    }

    #[test]
    fn a_configuration_cannot_replace_the_messages_or_the_streaming() {
        let config = json!({"model": "other", "messages": [], "stream": true, "temperature": 0.1});
        let messages = [Message::user("Hi")];
        let c = Completion { model: "gpt-4o", messages: &messages, config: config.as_object() };
        assert_eq!(
            body(Some(c.model), &c, false),
            json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}], "temperature": 0.1})
        );
    }
}
