"""Real processes for the Python SDK's tests: `promptos serve` (the binary scripts/test
built, at $PROMPTOS_BIN) on a scratch SQLite file, and a `nats-server` of the test's own,
each on a free loopback port."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, Optional

import pytest

ADMIN_PASSWORD = "python-sdk-tests-admin-password"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def eventually(check: Callable[[], bool], what: str, within: float = 10.0) -> None:
    """Polls ``check`` until it is true; fails the test naming ``what`` after ``within`` s."""
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {within} s waiting for: {what}")
        time.sleep(0.005)


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


class Nats:
    def __init__(self) -> None:
        binary = next((p for p in ("/usr/sbin/nats-server", "/usr/bin/nats-server") if os.path.exists(p)), None)
        binary = binary or shutil.which("nats-server")
        assert binary, "nats-server is not installed (scripts/prepare installs it)"
        self.port = free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [binary, "-a", "127.0.0.1", "-p", str(self.port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        eventually(lambda: _accepts(self.port), "nats-server to accept connections")

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()

    def restart(self) -> None:
        """Starts it again on the same port (after :meth:`stop`)."""
        self.process = subprocess.Popen(
            [self.process.args[0], "-a", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        eventually(lambda: _accepts(self.port), "nats-server to accept connections again")


class Server:
    """`promptos serve` with an admin token for setting things up over HTTP."""

    def __init__(self, workdir: Path, nats_url: Optional[str], extra_env: Optional[Dict[str, str]] = None) -> None:
        binary = os.environ.get("PROMPTOS_BIN")
        assert binary and os.path.exists(binary), "set PROMPTOS_BIN to the promptos binary (scripts/test does)"
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ)
        env.update(
            PROMPTOS_DATABASE_URL=f"sqlite://{workdir / 'promptos.db'}",
            PROMPTOS_ADMIN_PASSWORD=ADMIN_PASSWORD,
            PROMPTOS_LOG="warn",
        )
        env.pop("PROMPTOS_NATS_URL", None)
        if nats_url:
            env["PROMPTOS_NATS_URL"] = nats_url
        env.update(extra_env or {})
        self.process = subprocess.Popen(
            [binary, "serve", "--bind", f"127.0.0.1:{self.port}"],
            env=env,
            cwd=workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        eventually(self._ready, "the server to answer /readyz", within=30)
        form = urllib.parse.urlencode({"username": "admin", "password": ADMIN_PASSWORD}).encode()
        self.token = self._request("POST", "/auth/token", form, "application/x-www-form-urlencoded")["access_token"]

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.base}/readyz", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    def _request(self, method: str, path: str, body: bytes, content_type: str) -> Any:
        request = urllib.request.Request(f"{self.base}{path}", data=body, method=method)
        request.add_header("Content-Type", content_type)
        if getattr(self, "token", None):
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=10) as r:
                text = r.read()
        except urllib.error.HTTPError as e:
            raise AssertionError(f"{method} {path}: {e.code} {e.read().decode()}") from None
        return json.loads(text) if text else None

    def get(self, path: str) -> Any:
        request = urllib.request.Request(f"{self.base}{path}")
        request.add_header("Authorization", f"Bearer {self.token}")
        with urllib.request.urlopen(request, timeout=10) as r:
            return json.loads(r.read())

    def post(self, path: str, body: Dict[str, Any]) -> Any:
        return self._request("POST", path, json.dumps(body).encode(), "application/json")

    def prompt(self, name: str, versions: Dict[str, Dict[str, Any]]) -> None:
        """Creates ``name`` with the given versions (``{"v1": {"text": ...}}``)."""
        self.post("/prompts/", {"name": name})
        for version, content in versions.items():
            self.post(f"/prompts/{name}/versions/", {"version_string": version, **content})

    def deploy(self, name: str, env: str, version: str) -> Any:
        return self.post("/deployments/", {"prompt_name": name, "environment": env, "version_string": version})

    def api_key(self, envs: list) -> str:
        return self.post("/api-keys/", {"name": "python sdk test", "environments": envs})["key"]

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()


@pytest.fixture
def nats() -> Iterator[Nats]:
    broker = Nats()
    yield broker
    broker.stop()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    s = Server(tmp_path, None)
    yield s
    s.stop()


@pytest.fixture
def server_with_nats(tmp_path: Path, nats: Nats) -> Iterator[Server]:
    s = Server(tmp_path, nats.url)
    s.nats_url = nats.url  # type: ignore[attr-defined]
    yield s
    s.stop()
