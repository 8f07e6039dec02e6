"""The synchronous client, :class:`Prompts`."""

from __future__ import annotations

import os
from typing import Any, Callable, Dict, List, Mapping, Optional, Union

from . import _native

PathLike = Union[str, "os.PathLike[str]"]


class Chat:
    """A rendered chat prompt: ``messages`` ready for an OpenAI-style client, the model
    ``config`` deployed with them, and the ``version`` served."""

    __slots__ = ("messages", "config", "version", "experiment_id")

    def __init__(self, raw: Dict[str, Any]) -> None:
        self.messages: List[Dict[str, str]] = raw["messages"]
        self.config: Dict[str, Any] = raw["config"] or {}
        self.version: str = raw["version"]
        self.experiment_id: Optional[str] = raw["experiment_id"]

    def __repr__(self) -> str:
        return f"Chat(version={self.version!r}, messages={self.messages!r}, config={self.config!r})"


class Served:
    """The text a subject was served by :meth:`Prompts.get_for`, and which version it is,
    to log next to the outcome. ``str(served)`` is the text."""

    __slots__ = ("text", "version", "experiment_id")

    def __init__(self, text: str, version: str, experiment_id: Optional[str]) -> None:
        self.text = text
        self.version = version
        self.experiment_id = experiment_id

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"Served(version={self.version!r}, experiment_id={self.experiment_id!r}, text={self.text!r})"


class Template:
    """The raw prompt live in an environment, as :meth:`Prompts.prompt` returns it."""

    __slots__ = ("name", "environment", "version", "kind", "text", "messages", "config", "variables", "is_stale")

    def __init__(self, raw: Dict[str, Any]) -> None:
        self.name: str = raw["prompt_name"]
        self.environment: str = raw["environment"]
        self.version: str = raw["version_string"]
        self.kind: str = raw.get("kind", "text")
        self.text: Optional[str] = raw.get("prompt_text")
        self.messages: Optional[List[Dict[str, str]]] = raw.get("messages")
        self.config: Dict[str, Any] = raw.get("config") or {}
        self.variables: List[str] = raw.get("variables", [])
        #: What is served for this prompt may be older than what is deployed (the
        #: server could not confirm it: it is down, or the prompt came from the snapshot).
        self.is_stale: bool = raw.get("is_stale", False)

    def __repr__(self) -> str:
        return f"Template(name={self.name!r}, environment={self.environment!r}, version={self.version!r})"


class Change:
    """One change the server pushed: ``prompt`` in ``environment`` now serves ``version``
    (``None`` once deleted). ``type`` is the event (``VersionDeployed``,
    ``DeploymentRolledBack``, ``ExperimentStarted`` …); ``position`` orders changes."""

    __slots__ = ("prompt", "environment", "version", "type", "position", "at")

    def __init__(self, raw: Dict[str, Any]) -> None:
        self.prompt: str = raw["prompt"]
        self.environment: str = raw["environment"]
        self.version: Optional[str] = raw.get("version_string")
        self.type: str = raw["type"]
        self.position: int = raw["position"]
        self.at: str = raw["at"]

    def __repr__(self) -> str:
        return f"Change(type={self.type!r}, prompt={self.prompt!r}, environment={self.environment!r}, version={self.version!r})"


class Prompts(_native.Client):
    """A client of one PromptOS server: the prompt live in an environment with one call.

    Prompts are cached with their compiled template; the client subscribes to the
    server's changes (over NATS when ``nats_url`` is given, otherwise Server-Sent
    Events) so a deployment reaches the running application within milliseconds. The
    TTL is only a safety net. When the server is down the last known text is served
    and :meth:`is_stale` says so; with ``snapshot_path`` known prompts survive a
    restart while the server is down. Safe across ``fork()``: a child process builds
    its own connections and change feed on first use.

    Arguments: ``url``, and keyword-only ``api_key``, ``environment`` (default
    ``"production"``), ``nats_url``, ``snapshot_path``, ``ttl_seconds`` (default 300),
    ``timeout_seconds`` (each request, default 5), ``strict`` (default True: a
    missing variable raises :class:`MissingVariable`; False renders it empty) and
    ``change_feed`` (default True; False relies on the TTL alone). For the server's
    fleet view: ``app_name`` names the application, ``heartbeat_seconds`` (default 15)
    is how often the instance reports what it serves when nothing changes (it also
    reports on start and right after applying a change), ``fleet_reports=False``
    switches reports off; :attr:`instance_id` is this process's id there.

    ``get(name, /, env=None, **variables) -> str`` is the text prompt live as ``name``
    in ``env`` (default: the client's environment), rendered with ``variables``. It
    raises :class:`MissingVariable` naming a variable the template needs and the call
    did not pass, :class:`PromptNotFound`, :class:`WrongKind` for a chat prompt, and
    :class:`Unavailable` (a :class:`ConnectionError`) when the server cannot be reached
    and the prompt was never fetched. ``prefetch(env=None)`` loads every prompt of an
    environment; ``close()`` stops the feed (calls after it raise ``RuntimeError``).

    >>> from promptos import Prompts
    >>> with Prompts("http://127.0.0.1:8080", api_key="pos_…", environment="production") as prompts:  # doctest: +SKIP
    ...     prompts.get("greeting", name="Alex")
    'Hello Alex!'
    """

    @classmethod
    def connect(cls, service_url: str, headers: Optional[Mapping[str, str]] = None, cache_ttl: float = 60) -> "Prompts":
        """The seed's client's constructor, so that switching is an import line:
        ``Authorization: Bearer <key>`` in ``headers`` is the API key.

        >>> prompts = Prompts.connect(service_url="http://127.0.0.1:8080",
        ...                           headers={"Authorization": "Bearer pos_…"})  # doctest: +SKIP
        >>> prompts.get("greeting", env="production", name="Alex")  # doctest: +SKIP
        'Hello Alex!'
        """
        api_key = None
        for key, value in (headers or {}).items():
            if key.lower() == "authorization" and value.lower().startswith("bearer "):
                api_key = value[len("bearer ") :].strip()
        return cls(service_url, api_key=api_key, ttl_seconds=float(cache_ttl))

    def get_chat(self, name: str, /, env: Optional[str] = None, **variables: Any) -> Chat:
        """The chat prompt live as ``name``: every message rendered, with the model
        configuration deployed with them.

        >>> chat = prompts.get_chat("support-chat", question="Where is my order?")  # doctest: +SKIP
        >>> openai.chat.completions.create(messages=chat.messages, **chat.config)  # doctest: +SKIP
        """
        return Chat(self._get_chat(name, env or self.environment, variables))

    def get_for(self, name: str, subject: str, /, env: Optional[str] = None, **variables: Any) -> Served:
        """The variant of ``name`` that ``subject`` (a user or session id) is served while
        an A/B experiment runs, bucketed exactly as every other PromptOS SDK does.

        >>> served = prompts.get_for("checkout-copy", "user-4711")  # doctest: +SKIP
        >>> log(outcome, version=served.version)  # doctest: +SKIP
        """
        text, version, experiment_id = self._get_for(name, env or self.environment, subject, variables)
        return Served(text, version, experiment_id)

    def get_chat_for(self, name: str, subject: str, /, env: Optional[str] = None, **variables: Any) -> Chat:
        """:meth:`get_chat` for the variant ``subject`` is served."""
        return Chat(self._get_chat_for(name, env or self.environment, subject, variables))

    def prompt(self, name: str, /, env: Optional[str] = None) -> Template:
        """The raw template live as ``name``, with its ``version``, ``variables`` and
        whether it ``is_stale``.

        >>> prompts.prompt("greeting").variables  # doctest: +SKIP
        ['name']
        """
        return Template(self._template(name, env or self.environment))

    def on_change(self, callback: Callable[[Change], None]) -> None:
        """Calls ``callback(change)`` for every change pushed by the server, once the cache
        holds the new version. It runs on the client's feed thread: keep it short.

        >>> prompts.on_change(lambda change: print(change.prompt, "is now", change.version))  # doctest: +SKIP
        """
        self._on_change(lambda raw: callback(Change(raw)))

    def __enter__(self) -> "Prompts":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
