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
