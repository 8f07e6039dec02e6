//! A streamed answer: the reply's server-sent events are read as their bytes arrive, and
//! each event's text is passed on at once.

use super::{
    misconfigured, read_answer, reason_of, successful, timed_out, transport, within, Answer, Completion, Failure,
    Policy, Provider, ProviderError,
};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::time::{timeout_at, Instant};

/// OpenAI's last event; Gemini ends its stream by closing it.
const DONE: &str = "[DONE]";

/// One attempt at a streamed answer.
pub(super) async fn stream_once(
    provider: &dyn Provider,
    http: &reqwest::Client,
    policy: Policy,
    c: &Completion<'_>,
    deltas: &mpsc::Sender<String>,
) -> Result<Answer, Failure> {
    let name = provider.name();
    // No timeout on the request as a whole: a long answer may stream for longer than one
    // wait may last. The wait for the response and for each next event are bounded instead.
    let request = provider.request(http, c, true).map_err(|reason| misconfigured(name, reason))?;
    let response = within(name, policy, http.execute(request)).await?;
    let mut response = successful(name, policy, response).await?;
    let event_stream = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("text/event-stream"));
    if !event_stream {
        // Some OpenAI-compatible servers ignore `stream` and answer in one piece.
        let body = within(name, policy, response.text()).await?;
        let answer = read_answer(provider, &body)?;
        let _ = deltas.send(answer.text.clone()).await;
        return Ok(answer);
    }

    let mut events = Events::default();
    let mut answer = Answer::default();
    let mut spoken = false;
    let failed = |error: ProviderError, spoken: bool| Failure { error, retry_after: None, spoken };
    // Comments (keep-alives) do not move the deadline: only an event shows the model is
    // still answering.
    let mut deadline = Instant::now() + policy.timeout;
    loop {
        let chunk = match timeout_at(deadline, response.chunk()).await {
            Err(_) => return Err(failed(timed_out(name, policy), spoken)),
            Ok(Err(e)) => return Err(failed(transport(name, policy, e), spoken)),
            Ok(Ok(chunk)) => chunk,
        };
        let (datas, ended) = match &chunk {
            Some(bytes) => (events.feed(bytes), false),
            None => (events.finish().into_iter().collect(), true),
        };
        let some_event = !datas.is_empty();
        for data in datas {
            if data.trim() == DONE {
                return finished(name, answer, spoken);
            }
            let event: Value = serde_json::from_str(&data).map_err(|e| {
                let reason = format!("a streamed event is not JSON ({e})");
                failed(ProviderError::Malformed { provider: name.to_owned(), reason }, spoken)
            })?;
            if !event["error"].is_null() {
                let reason = reason_of(&event).unwrap_or_else(|| event["error"].to_string());
                return Err(failed(ProviderError::Interrupted { provider: name.to_owned(), reason }, spoken));
            }
            let piece = provider.delta(&event);
            // Providers that report usage more than once report it so far; the last is whole.
            answer.input_tokens = piece.input_tokens.or(answer.input_tokens);
            answer.output_tokens = piece.output_tokens.or(answer.output_tokens);
            if !piece.text.is_empty() {
                answer.text.push_str(&piece.text);
                spoken = true;
                // A caller that stopped listening still gets the answer returned.
                let _ = deltas.send(piece.text).await;
            }
        }
        if ended {
            return finished(name, answer, spoken);
        }
        if some_event {
            // Set after the pieces were handed on, so a slow reader is not the provider's delay.
            deadline = Instant::now() + policy.timeout;
        }
    }
}

fn finished(name: &str, answer: Answer, spoken: bool) -> Result<Answer, Failure> {
    if answer.text.trim().is_empty() {
        let error = ProviderError::Malformed { provider: name.to_owned(), reason: "the answer is empty".into() };
        return Err(Failure { error, retry_after: None, spoken });
    }
    Ok(answer)
}

/// Server-sent events cut from a body as its bytes arrive: `data:` lines (several are
/// joined by newlines), a blank line ends an event, a line starting with `:` is a comment.
/// Lines end in LF or CRLF; the other fields (`event`, `id`, `retry`) carry nothing the
/// providers' formats use.
#[derive(Default)]
struct Events {
    /// The line so far: bytes, so that a character split between two chunks is whole
    /// before it is decoded.
    line: Vec<u8>,
    data: Option<String>,
}

impl Events {
    /// The data of each event the bytes complete.
    fn feed(&mut self, bytes: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        for &b in bytes {
            if b == b'\n' {
                let line = std::mem::take(&mut self.line);
                self.end_line(&line, &mut out);
            } else {
                self.line.push(b);
            }
        }
        out
    }

    /// The last event, when the body ends without the blank line that closes it.
    fn finish(&mut self) -> Option<String> {
        let line = std::mem::take(&mut self.line);
        let mut out = Vec::new();
        self.end_line(&line, &mut out);
        self.end_line(b"", &mut out);
        out.pop()
    }

    fn end_line(&mut self, line: &[u8], out: &mut Vec<String>) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            out.extend(self.data.take());
            return;
        }
        let line = String::from_utf8_lossy(line);
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (&*line, ""),
        };
        if field == "data" {
            match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_whole_however_the_bytes_are_cut() {
        let body = "data: {\"a\":\"é\"}\n\n: keep-alive\n\ndata: one\r\ndata: two\r\n\r\nevent: x\ndata:[DONE]\n\n";
        let whole = Events::default().feed(body.as_bytes());
        assert_eq!(whole, ["{\"a\":\"é\"}", "one\ntwo", "[DONE]"]);
        // Byte by byte, `é` split in two included.
        let mut events = Events::default();
        let cut: Vec<String> = body.as_bytes().chunks(1).flat_map(|b| events.feed(b)).collect();
        assert_eq!(cut, whole);
        assert_eq!(events.finish(), None);
    }

    #[test]
    fn an_event_without_its_closing_blank_line_ends_with_the_body() {
        let mut events = Events::default();
        assert!(events.feed(b"data: {\"x\":1}").is_empty());
        assert_eq!(events.finish().as_deref(), Some("{\"x\":1}"));
    }
}
