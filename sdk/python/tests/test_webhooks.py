"""Webhooks as a receiver sees them: the README's receiver (docs/examples/webhook_receiver.py)
verifies every delivery with the `standardwebhooks` package from PyPI, an implementation
of the specification that is not ours."""

from __future__ import annotations

import importlib.util
import threading
import time
import urllib.error
import urllib.request
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest

from conftest import Server, eventually, free_port

EXAMPLE = Path(__file__).resolve().parents[3] / "docs" / "examples" / "webhook_receiver.py"


def load_example() -> Any:
    spec = importlib.util.spec_from_file_location("webhook_receiver", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def hooked_server(tmp_path: Path) -> Iterator[Server]:
    s = Server(tmp_path, None, {"PROMPTOS_WEBHOOK_ALLOW_PRIVATE": "true"})
    yield s
    s.stop()


class Recorder:
    """Runs the example receiver and keeps what it accepted, and every raw request."""

    def __init__(self, secret: str) -> None:
        self.accepted: List[Tuple[str, Dict[str, Any]]] = []
        self.port = free_port()
        handler = load_example().receiver(secret, lambda i, e: self.accepted.append((i, e)))
        raw = self.raw = []

        class Keeping(handler):  # type: ignore[misc, valid-type]
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                body = self.rfile.read(length)
                raw.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.rfile = __import__("io").BytesIO(body)
                super().do_POST()

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Keeping)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def post(self, headers: Dict[str, str], body: bytes) -> int:
        request = urllib.request.Request(self.url, data=body, method="POST", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=5) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code


def test_the_readme_receiver_verifies_deliveries_with_standardwebhooks(hooked_server: Server) -> None:
    server = hooked_server
    # The receiver needs the secret, which creating the webhook gives once: create it
    # against a placeholder first, then point it at the receiver.
    created = server.post("/webhooks/", {"url": "http://127.0.0.1:9/placeholder", "event_types": ["prompt.version.*"]})
    recorder = Recorder(created["secret"])
    request = urllib.request.Request(
        f"{server.base}/webhooks/{created['id']}",
        data=f'{{"url": "{recorder.url}"}}'.encode(),
        method="PATCH",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {server.token}"},
    )
    urllib.request.urlopen(request, timeout=10).close()

    server.prompt("bot", {"v1": {"text": "Hello {{ name }}"}})
    server.deploy("bot", "production", "v1")
    eventually(lambda: len(recorder.accepted) >= 2, "the created version and the deploy to be accepted")
    types = [event["type"] for _, event in recorder.accepted]
    assert types == ["prompt.version.created", "prompt.version.deployed"]
    deployed = recorder.accepted[1][1]["data"]
    assert (deployed["prompt"], deployed["environment"], deployed["version_string"]) == ("bot", "production", "v1")

    # What the package refuses: a tampered body, and a genuine request replayed later.
    headers, body = recorder.raw[1]
    assert recorder.post(headers, body.replace(b"v1", b"v9")) == 400
    stale = dict(headers, **{"webhook-timestamp": str(int(time.time()) - 3600)})
    assert recorder.post(stale, body) == 400
    assert recorder.post(headers, body) == 204  # the genuine one still verifies
