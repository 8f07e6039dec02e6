// A local stand-in for an OpenAI-compatible server, the only fake the browser tests use
// (an LLM is a paid outside service). It answers POST /v1/chat/completions and keeps
// every request, so a test can see what PromptOS sent.
//
// What it answers: the next queued reply (`replies`, each `{ text?, gate? }`), else
// `answer(body)`, which by default answers what follows `ANSWER:` in the messages sent,
// so a template (or a test case's variables) chooses its own answer. A reply with a
// `gate` (a promise) waits for it: a whole reply before it is sent, a streamed one after
// its first piece, so a test can see the first token arrive while the rest is held.
//
// A request with `"stream": true` gets `text/event-stream`: one chunk per word
// (`data: {"choices":[{"delta":{"content":"…"}}]}`), a usage chunk, then `data: [DONE]`.
import { createServer } from "node:http";

/// The text sent to the model, every message's content joined.
export function asked(body) {
  return (body.messages ?? []).map((m) => m.content ?? "").join("\n");
}

/// The default answer: what follows `ANSWER:` in the messages, trimmed.
export function scriptedAnswer(body) {
  const text = asked(body);
  const at = text.indexOf("ANSWER:");
  return { text: at < 0 ? "An unexpected request." : text.slice(at + "ANSWER:".length).trim() };
}

/// Starts the fake on a free port. `requests` and `replies` may be given to share them
/// with the caller's own arrays.
export function startFakeLlm({ requests = [], replies = [], answer = scriptedAnswer } = {}) {
  const fake = { requests, replies, answer, url: "", server: null, close: () => fake.server?.close() };
  const server = createServer(async (req, res) => {
    let raw = "";
    for await (const chunk of req) raw += chunk;
    if (req.method !== "POST" || req.url !== "/v1/chat/completions") {
      res.writeHead(404, { "content-type": "application/json" });
      return res.end(JSON.stringify({ error: { message: `no route ${req.url}` } }));
    }
    const body = JSON.parse(raw);
    fake.requests.push(body);
    const queued = fake.replies.shift();
    const reply = { ...fake.answer(body), ...(queued ?? {}) };
    const text = reply.text ?? "";
    const usage = { prompt_tokens: Math.ceil(asked(body).length / 4), completion_tokens: Math.ceil(text.length / 4) };
    if (body.stream) {
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
      const pieces = text.match(/\S+\s*|\s+/g) ?? [];
      for (const [i, piece] of pieces.entries()) {
        res.write(`data: ${JSON.stringify({ id: "fake", object: "chat.completion.chunk", model: body.model,
          choices: [{ index: 0, delta: { content: piece }, finish_reason: null }] })}\n\n`);
        if (i === 0) await reply.gate;
      }
      res.write(`data: ${JSON.stringify({ id: "fake", object: "chat.completion.chunk", model: body.model, choices: [], usage })}\n\n`);
      return res.end("data: [DONE]\n\n");
    }
    await reply.gate;
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ id: `fake-${fake.requests.length}`, object: "chat.completion", model: body.model, usage,
      choices: [{ index: 0, message: { role: "assistant", content: text }, finish_reason: "stop" }] }));
  });
  fake.server = server;
  return new Promise((ok) => server.listen(0, "127.0.0.1", () => {
    fake.url = `http://127.0.0.1:${server.address().port}/v1`;
    ok(fake);
  }));
}

/// A gate a reply waits on, and the function that opens it.
export function gate() {
  let open;
  const promise = new Promise((ok) => { open = ok; });
  return { promise, open };
}
