"""The client across the life of an application process: started while the server is
down, forked by a pre-forking server, driven from asyncio, and bucketing A/B subjects
exactly as the Rust SDK does."""

from __future__ import annotations

import asyncio
import os
import select
import socket
import subprocess
import threading
import time

import pytest

import promptos
from conftest import Server, eventually


def _wait_for(path, text: str) -> None:
    eventually(lambda: path.exists() and text in path.read_text(), f"the snapshot to hold {text!r}")


def test_with_a_snapshot_a_fresh_client_starts_and_serves_while_the_server_is_down(server, tmp_path):
    server.prompt("greeting", {"v1": {"text": "Hello {{ name }}"}})
    server.prompt("farewell", {"v1": {"text": "Bye {{ name }}"}})
    server.deploy("greeting", "production", "v1")
    server.deploy("farewell", "production", "v1")
    key = server.api_key(["production"])
    snapshot = tmp_path / "prompts.json"
    with promptos.Prompts(server.base, api_key=key, snapshot_path=snapshot) as first:
        assert first.get("greeting", name="Alex") == "Hello Alex"
        assert first.get("farewell", name="Alex") == "Bye Alex"
        assert not first.is_stale("greeting")
        assert not first.prompt("greeting").is_stale
        _wait_for(snapshot, "Bye {{ name }}")

    # While the server is up, what a new client loaded from the snapshot is stale until
    # the server confirms it, prompt by prompt. (Without a change feed: a feed that
    # connects revalidates everything cached at once.)
    with promptos.Prompts(server.base, api_key=key, snapshot_path=snapshot, change_feed=False) as second:
        assert second.is_stale("greeting") and second.is_stale("farewell")
        assert second.get("greeting", name="Alex") == "Hello Alex"
        assert not second.is_stale("greeting"), "confirmed by the server"
        assert second.is_stale("farewell"), "not asked for yet"

    server.stop()
    with promptos.Prompts(server.base, api_key=key, snapshot_path=snapshot, timeout_seconds=1) as fresh:
        assert fresh.get("greeting", name="Alex") == "Hello Alex"
        assert fresh.get("farewell", name="Sam") == "Bye Sam"
        assert fresh.is_stale() and fresh.is_stale("greeting")
        assert fresh.prompt("greeting").is_stale
        with pytest.raises(promptos.Unavailable):
            fresh.get("never-seen")


@pytest.mark.parametrize("feed", ["nats", "sse"])
def test_a_forked_child_receives_deployments_by_push_and_the_parent_keeps_working(request, feed):
    server: Server = request.getfixturevalue("server_with_nats" if feed == "nats" else "server")
    texts = {"v1": "Hello Alex (v1)", "v2": "Hi Alex (v2)"}
    server.prompt("greeting", {"v1": {"text": "Hello {{ name }} (v1)"}, "v2": {"text": "Hi {{ name }} (v2)"}})
    server.deploy("greeting", "production", "v1")
    nats_url = getattr(server, "nats_url", None) if feed == "nats" else None
    prompts = promptos.Prompts(server.base, api_key=server.api_key(["production"]), nats_url=nats_url, ttl_seconds=3600)
    heard = []
    prompts.on_change(heard.append)
    # Used before the fork, as a gunicorn --preload application would.
    assert prompts.get("greeting", name="Alex") == texts["v1"]

    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through the pipe
        status = 1
        try:
            os.close(read_end)
            heard.clear()  # this process's copy: filled by the child's own feed
            # The first use in the child builds its own client (and feed).
            prompts.get("greeting", name="Alex")
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                if heard and prompts.get("greeting", name="Alex") == texts[heard[-1].version]:
                    os.write(write_end, f"pushed {heard[-1].version}\n".encode())
                    status = 0
                    break
                time.sleep(0.005)
        finally:
            os._exit(status)

    os.close(write_end)
    try:
        # The child's feed subscribes in the background: redeploy until it reports a change.
        versions = iter(["v2", "v1"] * 200)
        report = b""
        deadline = time.monotonic() + 20
        while not report and time.monotonic() < deadline:
            server.deploy("greeting", "production", next(versions))
            if select.select([read_end], [], [], 0.2)[0]:
                report = os.read(read_end, 100)
        _, status = os.waitpid(child, 0)
        assert report.startswith(b"pushed "), "the child received no deployment by push"
        assert os.WEXITSTATUS(status) == 0
    finally:
        os.close(read_end)
    # The parent's client was not disturbed by the child: it still follows by push.
    server.deploy("greeting", "production", "v2")
    eventually(lambda: prompts.get("greeting", name="Alex") == texts["v2"], "the parent to see v2")
    server.deploy("greeting", "production", "v1")
    eventually(lambda: prompts.get("greeting", name="Alex") == texts["v1"], "the parent to see v1")
    assert heard, "the parent's callback kept being called"
    prompts.close()


class Ticker:
    """Measures the longest the event loop went without running this task."""

    def __init__(self) -> None:
        self.longest = 0.0
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(0.001)
            self.longest = max(self.longest, time.perf_counter() - before - 0.001)

    async def stop(self) -> float:
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        return self.longest


def test_asyncio_the_event_loop_is_never_blocked_by_a_client_call(server, tmp_path):
    server.prompt("greeting", {"v1": {"text": "Hello {{ name }} (v1)"}, "v2": {"text": "Hi {{ name }} (v2)"}})
    server.prompt("support-chat", {"v1": {"messages": [{"role": "user", "content": "{{ question }}"}]}})
    server.deploy("greeting", "production", "v1")
    server.deploy("support-chat", "production", "v1")
    key = server.api_key(["production"])
    snapshot = tmp_path / "prompts.json"
    # A server that accepts connections and never answers: a call that waited on it on
    # the loop would stall the loop for the whole timeout.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    silent_url = f"http://127.0.0.1:{silent.getsockname()[1]}"

    async def main() -> None:
        ticker = Ticker()
        async with promptos.AsyncPrompts(server.base, api_key=key, snapshot_path=snapshot, ttl_seconds=3600) as prompts:
            assert await prompts.get("greeting", name="Alex") == "Hello Alex (v1)"
            assert await prompts.get("greeting", name="Sam") == "Hello Sam (v1)"  # cached
            chat = await prompts.get_chat("support-chat", question="Where is my order?")
            assert chat.messages == [{"role": "user", "content": "Where is my order?"}]
            assert (await prompts.prompt("greeting")).version == "v1"
            assert await prompts.prefetch() == 2
            served = await prompts.get_for("greeting", "user-1", name="Alex")
            assert served.version == "v1"

            changes = []

            async def on_change(change: promptos.Change) -> None:
                assert threading.current_thread() is threading.main_thread(), "delivered on the loop"
                changes.append(change)

            prompts.on_change(on_change)
            for version in ["v2", "v1"] * 100:
                await asyncio.to_thread(server.deploy, "greeting", "production", version)
                await asyncio.sleep(0.1)
                if changes:
                    break
            assert changes, "a change arrived on the loop"
            await asyncio.to_thread(server.deploy, "greeting", "production", "v2")
            deadline = time.monotonic() + 10
            while await prompts.get("greeting", name="Alex") != "Hi Alex (v2)":
                assert time.monotonic() < deadline, "the pushed text arrived"
                await asyncio.sleep(0.005)
            while not (snapshot.exists() and "Hi {{ name }} (v2)" in snapshot.read_text()):
                assert time.monotonic() < deadline, "the snapshot was written"
                await asyncio.sleep(0.01)

        # A new client, its server silent: it starts from the snapshot and serves it.
        started = time.perf_counter()
        async with promptos.AsyncPrompts(silent_url, api_key=key, snapshot_path=snapshot, timeout_seconds=0.5) as down:
            assert await down.get("greeting", name="Alex") == "Hi Alex (v2)"
            assert down.is_stale("greeting")
        waited = time.perf_counter() - started
        longest = await ticker.stop()
        print(f"longest the loop waited: {longest * 1000:.1f} ms; the silent server held a call {waited:.2f} s")
        assert waited >= 0.4, "the silent server made the client wait, off the loop"
        assert longest < 0.025, f"the event loop was blocked for {longest * 1000:.1f} ms"

    try:
        asyncio.run(main())
    finally:
        silent.close()


def test_subjects_get_the_same_variants_from_python_as_from_rust(server):
    binary = os.environ.get("PROMPTOS_VARIANTS_BIN")
    assert binary and os.path.exists(binary), "set PROMPTOS_VARIANTS_BIN (scripts/test-python builds it)"
    server.prompt("checkout", {v: {"text": f"Buy now ({v})"} for v in ("v1", "v2", "v3")})
    server.deploy("checkout", "production", "v1")
    server.post(
        "/deployments/split",
        {
            "prompt_name": "checkout",
            "environment": "production",
            "variants": [
                {"version_string": "v1", "weight": 20},
                {"version_string": "v2", "weight": 30},
                {"version_string": "v3", "weight": 50},
            ],
        },
    )
    key = server.api_key(["production"])
    subjects = [f"user-{i}" for i in range(10_000)]
    with promptos.Prompts(server.base, api_key=key, ttl_seconds=3600) as prompts:
        from_python = {s: prompts.get_for("checkout", s).version for s in subjects}
    rust = subprocess.run(
        [binary, "checkout", "production"],
        input="\n".join(subjects) + "\n",
        env=dict(os.environ, PROMPTOS_URL=server.base, PROMPTOS_API_KEY=key),
        capture_output=True,
        text=True,
        check=True,
    )
    from_rust = dict(line.split("\t") for line in rust.stdout.splitlines())
    assert len(from_rust) == len(subjects)
    differing = [s for s in subjects if from_python[s] != from_rust[s]]
    assert not differing, f"{len(differing)} subjects differ, e.g. {differing[:5]}"
    shares = {v: sum(1 for s in subjects if from_python[s] == v) for v in ("v1", "v2", "v3")}
    assert 1_800 <= shares["v1"] <= 2_200 and 2_750 <= shares["v2"] <= 3_250, shares


GUNICORN_APP = '''
import os
import promptos

# Created and used in gunicorn's master before it forks its workers (--preload).
prompts = promptos.Prompts(os.environ["PROMPTOS_URL"], api_key=os.environ["PROMPTOS_API_KEY"], ttl_seconds=3600)
prompts.get("greeting", name="the master")


def app(environ, start_response):
    body = f"{os.getpid()} {prompts.get('greeting', name='Alex')}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
'''


def test_under_gunicorn_with_preload_every_worker_follows_deployments_by_push(server, tmp_path):
    import shutil
    import sys
    import urllib.request

    from conftest import free_port

    gunicorn = shutil.which("gunicorn", path=os.path.dirname(sys.executable))
    assert gunicorn, "gunicorn is installed in the test environment (scripts/test-python)"
    server.prompt("greeting", {"v1": {"text": "Hello {{ name }} (v1)"}, "v2": {"text": "Hi {{ name }} (v2)"}})
    server.deploy("greeting", "production", "v1")
    (tmp_path / "app.py").write_text(GUNICORN_APP)
    port = free_port()
    env = dict(os.environ, PROMPTOS_URL=server.base, PROMPTOS_API_KEY=server.api_key(["production"]))
    master = subprocess.Popen(
        [gunicorn, "--preload", "--workers", "2", "--bind", f"127.0.0.1:{port}", "app:app"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    answers: dict = {}

    def ask() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
                pid, text = r.read().decode().split(" ", 1)
        except OSError:
            return False
        answers[pid] = text
        return True

    try:
        eventually(lambda: ask() and len(answers) == 2, "both workers to answer", within=30)
        assert set(answers.values()) == {"Hello Alex (v1)"}, answers
        server.deploy("greeting", "production", "v2")
        # An hour of TTL: only a push brings v2, to each worker's own feed.
        eventually(
            lambda: ask() and len(answers) == 2 and set(answers.values()) == {"Hi Alex (v2)"},
            "every worker to serve v2",
            within=30,
        )
        assert master.poll() is None, "gunicorn is still running"
    finally:
        master.terminate()
        try:
            _, errors = master.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            master.kill()
            _, errors = master.communicate()
    assert "Traceback" not in errors, errors
