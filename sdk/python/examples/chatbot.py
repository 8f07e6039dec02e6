"""The seed's example application in Python: a chatbot that asks PromptOS for its prompt
on every interaction and never redeploys to change it. Deploy another version while it
runs and the next round prints the new text (pushed, not polled).

    pip install ./sdk/python
    PROMPTOS_API_KEY=pos_… python sdk/python/examples/chatbot.py

Environment: PROMPTOS_URL (default http://127.0.0.1:8080), PROMPTOS_API_KEY,
PROMPTOS_NATS_URL (optional; otherwise the server's SSE feed), PROMPTOS_ENV (default
production), PROMPTOS_PROMPT (default customer-support-agent), PROMPTOS_CHATBOT_ROUNDS
(default: run until stopped), PROMPTOS_CHATBOT_INTERVAL (seconds, default 2),
PROMPTOS_APP_NAME (the name its instances have in the server's fleet view, default
support-chatbot), PROMPTOS_HEARTBEAT_SECONDS (how often it reports there, default 15).

With PROMPTOS_CHAT_PROMPT naming a chat prompt, each round also renders it and, when the
`openai` package is installed and OPENAI_API_KEY is set (OPENAI_BASE_URL for any
OpenAI-compatible server), sends `chat.messages` with the model configuration deployed
beside them.
"""

from __future__ import annotations

import itertools
import os
import sys
import time

import promptos


def main() -> int:
    env = os.environ.get("PROMPTOS_ENV") or "production"
    prompt = os.environ.get("PROMPTOS_PROMPT") or "customer-support-agent"
    chat_prompt = os.environ.get("PROMPTOS_CHAT_PROMPT")
    rounds = int(os.environ["PROMPTOS_CHATBOT_ROUNDS"]) if os.environ.get("PROMPTOS_CHATBOT_ROUNDS") else None
    interval = float(os.environ.get("PROMPTOS_CHATBOT_INTERVAL") or 2)

    prompts = promptos.Prompts(
        os.environ.get("PROMPTOS_URL") or "http://127.0.0.1:8080",
        api_key=os.environ.get("PROMPTOS_API_KEY") or None,
        nats_url=os.environ.get("PROMPTOS_NATS_URL") or None,
        environment=env,
        app_name=os.environ.get("PROMPTOS_APP_NAME") or "support-chatbot",
        heartbeat_seconds=float(os.environ.get("PROMPTOS_HEARTBEAT_SECONDS") or 15),
    )
    prompts.on_change(
        lambda c: print(f"[promptos] {c.prompt} in {c.environment} is now {c.version or 'gone'}", file=sys.stderr)
    )

    customers = itertools.cycle(["Alex", "Sam", "Kim"])
    with prompts:
        for round_ in itertools.count():
            if rounds is not None and round_ >= rounds:
                break
            support_prompt = prompts.get(prompt, customer_name=next(customers))
            print(f"\n--- RENDERED PROMPT ---\n{support_prompt}", flush=True)
            if chat_prompt:
                ask(prompts.get_chat(chat_prompt, question="Where is my order?"))
            if prompts.is_stale():
                print("[promptos] server unreachable: serving the last known prompt", file=sys.stderr)
            time.sleep(interval)
    return 0


def ask(chat: promptos.Chat) -> None:
    """Sends a rendered chat prompt to an OpenAI-compatible server, or prints it."""
    try:
        from openai import OpenAI  # type: ignore[import-not-found]
    except ImportError:
        OpenAI = None
    if OpenAI is None or not os.environ.get("OPENAI_API_KEY"):
        print(f"--- CHAT ({chat.version}) ---\n{chat.messages}\nconfig: {chat.config}", flush=True)
        return
    config = dict(chat.config)
    model = config.pop("model", "gpt-4o-mini")
    answer = OpenAI().chat.completions.create(model=model, messages=chat.messages, **config)
    print(f"--- ANSWER ({chat.version}) ---\n{answer.choices[0].message.content}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
