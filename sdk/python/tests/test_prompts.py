"""The Python SDK against a real `promptos serve` (and a real nats-server), through the
wheel installed in this virtual environment."""

from __future__ import annotations

import threading

import pytest

import promptos
from conftest import Server, eventually


def _client(server: Server, feed: str, key: str, **kwargs) -> promptos.Prompts:
    nats_url = getattr(server, "nats_url", None) if feed == "nats" else None
    return promptos.Prompts(server.base, api_key=key, environment="production", nats_url=nats_url, **kwargs)


@pytest.mark.parametrize("feed", ["nats", "sse"])
def test_a_deploy_reaches_a_running_client_by_push_not_by_ttl(request, feed):
    server = request.getfixturevalue("server_with_nats" if feed == "nats" else "server")
    server.prompt("greeting", {"v1": {"text": "Hello {{ name }} (v1)"}, "v2": {"text": "Hi {{ name }} (v2)"}})
    server.deploy("greeting", "production", "v1")
    key = server.api_key(["production"])
    # An hour of TTL: only a push can bring v2 in time.
    with _client(server, feed, key, ttl_seconds=3600) as prompts:
        assert prompts.get("greeting", name="Alex") == "Hello Alex (v1)"
        changes = []
        arrived = threading.Event()

        def on_change(change: promptos.Change) -> None:
            changes.append(change)
            arrived.set()

        prompts.on_change(on_change)
        # The feed subscribes in the background: redeploy until a change arrives.
        deployed = iter(["v2", "v1"] * 200)
        eventually(lambda: server.deploy("greeting", "production", next(deployed)) and arrived.wait(0.2), "a change")
        last = changes[-1]
        assert (last.prompt, last.environment, last.type) == ("greeting", "production", "VersionDeployed")
        expected = {"v1": "Hello Alex (v1)", "v2": "Hi Alex (v2)"}
        eventually(lambda: prompts.get("greeting", name="Alex") == expected[changes[-1].version], "the pushed text")


def test_a_missing_variable_is_named_and_chat_prompts_come_ready_for_an_llm_client(server):
    server.prompt("greeting", {"v1": {"text": "Hello {{ name }} from {{ team }}"}})
    server.prompt(
        "support-chat",
        {
            "v1": {
                "messages": [
                    {"role": "system", "content": "You help {{ customer }}."},
                    {"role": "user", "content": "{{ question }}"},
                ],
                "config": {"model": "gpt-4o-mini", "temperature": 0.2},
            }
        },
    )
    server.deploy("greeting", "production", "v1")
    server.deploy("support-chat", "production", "v1")
    with _client(server, "sse", server.api_key(["production"])) as prompts:
        with pytest.raises(promptos.MissingVariable) as missing:
            prompts.get("greeting", name="Alex")
        assert missing.value.variable == "team" and missing.value.prompt == "greeting"
        assert prompts.get("greeting", name="Alex", team="Support") == "Hello Alex from Support"

        chat = prompts.get_chat("support-chat", customer="Acme", question="Where is my order?")
        assert chat.messages == [
            {"role": "system", "content": "You help Acme."},
            {"role": "user", "content": "Where is my order?"},
        ]
        assert chat.config == {"model": "gpt-4o-mini", "temperature": 0.2}
        assert chat.version == "v1"
        with pytest.raises(promptos.WrongKind):
            prompts.get("support-chat", customer="Acme", question="?")

        template = prompts.prompt("greeting")
        assert (template.version, template.text, sorted(template.variables)) == (
            "v1",
            "Hello {{ name }} from {{ team }}",
            ["name", "team"],
        )
        with pytest.raises(promptos.PromptNotFound):
            prompts.get("nothing-here")
        with pytest.raises(TypeError, match='variable "when": object cannot be used'):
            prompts.get("greeting", name="Alex", team="Support", when=object())


def test_the_seed_clients_calling_convention_works_unchanged(server):
    server.prompt("customer-support-agent", {"v1": {"text": "Dear {{ customer_name }},"}})
    server.deploy("customer-support-agent", "production", "v1")
    key = server.api_key(["production"])
    prompts = promptos.Prompts.connect(service_url=server.base, headers={"Authorization": f"Bearer {key}"})
    assert prompts.get("customer-support-agent", env="production", customer_name="Alex") == "Dear Alex,"
    # A key that is refused, and a server that is not there, fail as the seed's did.
    refused = promptos.Prompts.connect(service_url=server.base, headers={"Authorization": "Bearer pos_wrong"})
    with pytest.raises(promptos.Unauthorized):
        refused.get("customer-support-agent", env="production", customer_name="Alex")
    server.stop()
    nobody = promptos.Prompts.connect(service_url=server.base, headers={"Authorization": f"Bearer {key}"})
    with pytest.raises(ConnectionError):
        nobody.get("customer-support-agent", env="production", customer_name="Alex")
    # The first client keeps serving the text it fetched, and says it may be stale once
    # its feed has lost the server.
    eventually(prompts.is_stale, "the client to notice the server is gone")
    assert prompts.get("customer-support-agent", env="production", customer_name="Alex") == "Dear Alex,"


def test_a_closed_client_says_so():
    prompts = promptos.Prompts("http://127.0.0.1:9", api_key="pos_x")
    prompts.close()
    with pytest.raises(RuntimeError, match="closed"):
        prompts.get("anything")


def test_the_example_chatbot_prints_the_new_text_after_a_deploy_without_a_restart(server):
    import os
    import queue
    import subprocess
    import sys
    from pathlib import Path

    server.prompt("customer-support-agent", {"v1": {"text": "v1 for {{ customer_name }}"}, "v2": {"text": "v2 for {{ customer_name }}"}})
    server.deploy("customer-support-agent", "production", "v1")
    example = Path(__file__).resolve().parent.parent / "examples" / "chatbot.py"
    env = dict(os.environ, PROMPTOS_URL=server.base, PROMPTOS_API_KEY=server.api_key(["production"]))
    env.update(PROMPTOS_CHATBOT_INTERVAL="0.05")
    bot = subprocess.Popen([sys.executable, str(example)], env=env, stdout=subprocess.PIPE, text=True)
    lines: "queue.Queue[str]" = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in bot.stdout], daemon=True)
    reader.start()
    seen = []

    def printed(text: str) -> bool:
        while not lines.empty():
            seen.append(lines.get())
        return any(text in line for line in seen)

    try:
        eventually(lambda: printed("v1 for Alex"), "the chatbot to print the production prompt")
        server.deploy("customer-support-agent", "production", "v2")
        eventually(lambda: printed("v2 for"), "the chatbot to print the new text")
        assert bot.poll() is None, "the chatbot kept running: no restart"
    finally:
        bot.kill()
        bot.wait()


def test_the_example_chatbot_sends_the_deployed_chat_prompt_to_an_openai_compatible_server(server):
    """The `openai` client, pointed at a local server that speaks its wire format (a paid
    service's stand-in), receives the rendered messages and the deployed model config."""
    import json
    import os
    import subprocess
    import sys
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from pathlib import Path

    received = []

    class FakeOpenAI(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            received.append((self.path, self.headers.get("Authorization"), body))
            answer = json.dumps({
                "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": body["model"],
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": "Your order ships today."}}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: object) -> None:
            pass

    fake = ThreadingHTTPServer(("127.0.0.1", 0), FakeOpenAI)
    threading.Thread(target=fake.serve_forever, daemon=True).start()
    server.prompt("customer-support-agent", {"v1": {"text": "Dear {{ customer_name }},"}})
    server.prompt("support-chat", {"v1": {
        "messages": [{"role": "system", "content": "You are Acme's support agent."},
                     {"role": "user", "content": "{{ question }}"}],
        "config": {"model": "gpt-4o-mini", "temperature": 0.2},
    }})
    server.deploy("customer-support-agent", "production", "v1")
    server.deploy("support-chat", "production", "v1")
    example = Path(__file__).resolve().parent.parent / "examples" / "chatbot.py"
    env = dict(
        os.environ,
        PROMPTOS_URL=server.base,
        PROMPTOS_API_KEY=server.api_key(["production"]),
        PROMPTOS_CHAT_PROMPT="support-chat",
        PROMPTOS_CHATBOT_ROUNDS="1",
        PROMPTOS_CHATBOT_INTERVAL="0",
        OPENAI_API_KEY="sk-test-not-a-real-key",
        OPENAI_BASE_URL=f"http://127.0.0.1:{fake.server_address[1]}/v1",
    )
    try:
        run = subprocess.run([sys.executable, str(example)], env=env, capture_output=True, text=True, timeout=60)
    finally:
        fake.shutdown()
    assert run.returncode == 0, run.stderr
    assert "Your order ships today." in run.stdout
    [(path, authorization, body)] = received
    assert path == "/v1/chat/completions" and authorization == "Bearer sk-test-not-a-real-key"
    assert body["messages"] == [
        {"role": "system", "content": "You are Acme's support agent."},
        {"role": "user", "content": "Where is my order?"},
    ]
    assert (body["model"], body["temperature"]) == ("gpt-4o-mini", 0.2)
