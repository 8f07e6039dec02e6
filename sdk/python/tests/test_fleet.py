"""The fleet view with real applications: the README's example chatbot, ten Rust and
ten Python processes, report what they serve; a deploy is seen reaching all of them,
an instance whose feed is cut is shown behind until it revalidates, and a stopped one
is gone after three missed heartbeats."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List

import pytest

from conftest import eventually

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "chatbot.py"
PROMPT = "customer-support-agent"


def chatbot(command: List[str], server, key: str, **extra: str) -> subprocess.Popen:
    env = dict(os.environ)
    env.update(
        PROMPTOS_URL=server.base,
        PROMPTOS_API_KEY=key,
        PROMPTOS_APP_NAME="support-chatbot",
        PROMPTOS_HEARTBEAT_SECONDS="1",
        PROMPTOS_CHATBOT_INTERVAL="0.5",
    )
    env.pop("PROMPTOS_NATS_URL", None)
    env.update(extra)
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def fleet(server) -> List[Dict[str, Any]]:
    return server.get("/fleet?environment=production")["instances"]


def rollout(server) -> Dict[str, Any]:
    return server.get(f"/prompts/{PROMPT}/rollout?environment=production")


def test_twenty_instances_converge_one_with_a_cut_feed_lags_and_a_stopped_one_is_gone(server_with_nats, nats):
    rust_bin = os.environ.get("PROMPTOS_CHATBOT_BIN")
    assert rust_bin and os.path.exists(rust_bin), "set PROMPTOS_CHATBOT_BIN (scripts/test-python does)"
    server = server_with_nats
    server.prompt(PROMPT, {"v1": {"text": "Hello {{ customer_name }}"}, "v2": {"text": "Hi {{ customer_name }}"}})
    server.deploy(PROMPT, "production", "v1")
    key = server.api_key(["production"])

    processes: List[subprocess.Popen] = []
    try:
        processes += [chatbot([rust_bin], server, key) for _ in range(10)]
        processes += [chatbot([sys.executable, str(EXAMPLE)], server, key) for _ in range(9)]
        # The tenth Python instance hears of changes over NATS; the others over SSE.
        on_nats = chatbot([sys.executable, str(EXAMPLE)], server, key, PROMPTOS_NATS_URL=nats.url)
        processes.append(on_nats)

        def all_serve(version: str) -> bool:
            instances = fleet(server)
            return len(instances) == 20 and all(
                any(s["prompt"] == PROMPT and s["version_string"] == version for s in i["serving"]) for i in instances
            )

        eventually(lambda: all_serve("v1"), "20 instances to report serving v1", within=90)
        instances = fleet(server)
        assert sorted(i["sdk"] for i in instances) == ["python"] * 10 + ["rust"] * 10
        assert {i["app_name"] for i in instances} == {"support-chatbot"}
        assert len({(i["host"], i["pid"]) for i in instances}) == 20, "one instance per process"
        nats_instance = next(i["instance_id"] for i in instances if i["pid"] == on_nats.pid)

        # Cut the NATS instance's feed, then deploy: the 19 on SSE converge, it is behind.
        nats.stop()
        server.deploy(PROMPT, "production", "v2")
        eventually(lambda: rollout(server)["serving"] == 19, "19 of 20 instances to serve v2", within=30)
        r = rollout(server)
        assert (r["holding"], r["converged"]) == (20, False)
        assert r["convergence"]["instances"] >= 19 and r["convergence"]["max_ms"] < 30_000, r["convergence"]
        behind = r["instances"][0]
        assert (behind["instance_id"], behind["status"], behind["version_string"]) == (nats_instance, "behind", "v1")
        assert behind["behind_ms"] >= 0 and behind["positions_behind"] >= 1, behind
        app = r["applications"][0]
        assert (app["app_name"], app["holding"], app["serving"]) == ("support-chatbot", 20, 19)

        # Its feed is back: it revalidates and the rollout converges.
        nats.restart()
        eventually(lambda: rollout(server)["converged"], "the cut instance to revalidate and serve v2", within=60)
        assert rollout(server)["serving"] == 20

        # A stopped instance misses its heartbeats and is gone; the others stay.
        stopped = processes.pop(0)
        stopped_pid = stopped.pid
        stopped.kill()
        stopped.wait()
        killed_at = time.monotonic()
        eventually(lambda: all(i["pid"] != stopped_pid for i in fleet(server)), "the stopped instance to be gone", within=30)
        assert time.monotonic() - killed_at >= 1.5, "gone only after missed heartbeats"
        assert len(fleet(server)) == 19
    finally:
        for p in processes:
            p.kill()
        for p in processes:
            p.wait()


def test_a_client_names_its_application_and_can_switch_reports_off(server):
    import promptos

    server.prompt("greeting", {"v1": {"text": "Hello"}})
    server.deploy("greeting", "production", "v1")
    key = server.api_key(["production"])
    with promptos.Prompts(server.base, api_key=key, app_name="billing", heartbeat_seconds=1) as reporting, promptos.Prompts(
        server.base, api_key=key, fleet_reports=False
    ) as silent:
        assert reporting.get("greeting") == "Hello" and silent.get("greeting") == "Hello"
        assert silent.instance_id is None
        me = reporting.instance_id
        assert me and len(me) == 36

        def listed() -> bool:
            return any(i["instance_id"] == me and i["serving"] for i in fleet(server))

        eventually(listed, "the reporting client to be listed with what it serves")
        instances = fleet(server)
        assert [i["app_name"] for i in instances] == ["billing"], "the silent client is not listed"
        mine = instances[0]
        assert (mine["sdk"], mine["pid"], mine["status"]) == ("python", os.getpid(), "current")
        assert mine["serving"][0]["version_string"] == "v1"
    with pytest.raises(ValueError, match="heartbeat_seconds"):
        promptos.Prompts(server.base, heartbeat_seconds=0)
