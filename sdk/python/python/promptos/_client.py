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


class Prompts:
    """A client of one PromptOS server: the prompt live in an environment with one call.

    Prompts are cached with their compiled template; the client subscribes to the
    server's changes (over NATS when ``nats_url`` is given, otherwise Server-Sent
    Events) so a deployment reaches the running application within milliseconds. The
    TTL is only a safety net. When the server is down the last known text is served
    and :meth:`is_stale` says so; with ``snapshot_path`` known prompts survive a
    restart while the server is down.

    >>> from promptos import Prompts
    >>> with Prompts("http://127.0.0.1:8080", api_key="pos_…", environment="production") as prompts:  # doctest: +SKIP
    ...     prompts.get("greeting", name="Alex")
    'Hello Alex!'
    """

    def __init__(
        self,
        url: str,
        *,
        api_key: Optional[str] = None,
        environment: Optional[str] = None,
        nats_url: Optional[str] = None,
        snapshot_path: Optional[PathLike] = None,
        ttl_seconds: float = 300,
        timeout_seconds: float = 5,
        strict: bool = True,
    ) -> None:
        self.environment = environment or "production"
        self._native = _native.Client(
            url,
            api_key=api_key,
            nats_url=nats_url,
            snapshot_path=os.fspath(snapshot_path) if snapshot_path is not None else None,
            ttl_seconds=float(ttl_seconds),
            timeout_seconds=float(timeout_seconds),
            strict=strict,
        )

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
        return cls(service_url, api_key=api_key, ttl_seconds=cache_ttl)

    def get(self, name: str, /, env: Optional[str] = None, **variables: Any) -> str:
        """The text prompt live as ``name`` in ``env`` (default: the client's
        environment), rendered with ``variables``.

        Raises :class:`MissingVariable` naming a variable the template needs and the call
        did not pass, :class:`PromptNotFound`, :class:`WrongKind` for a chat prompt, and
        :class:`Unavailable` (a :class:`ConnectionError`) when the server cannot be reached
        and the prompt was never fetched.

        >>> prompts.get("greeting", name="Alex")  # doctest: +SKIP
        'Hello Alex!'
        """
        return self._native.get(name, env or self.environment, variables)

    def get_chat(self, name: str, /, env: Optional[str] = None, **variables: Any) -> Chat:
        """The chat prompt live as ``name``: every message rendered, with the model
        configuration deployed with them.

        >>> chat = prompts.get_chat("support-chat", question="Where is my order?")  # doctest: +SKIP
        >>> openai.chat.completions.create(messages=chat.messages, **chat.config)  # doctest: +SKIP
        """
        return Chat(self._native.get_chat(name, env or self.environment, variables))

    def get_for(self, name: str, subject: str, /, env: Optional[str] = None, **variables: Any) -> Served:
        """The variant of ``name`` that ``subject`` (a user or session id) is served while
        an A/B experiment runs, bucketed exactly as every other PromptOS SDK does.

        >>> served = prompts.get_for("checkout-copy", "user-4711")  # doctest: +SKIP
        >>> log(outcome, version=served.version)  # doctest: +SKIP
        """
        text, version, experiment_id = self._native.get_for(name, env or self.environment, subject, variables)
        return Served(text, version, experiment_id)

    def get_chat_for(self, name: str, subject: str, /, env: Optional[str] = None, **variables: Any) -> Chat:
        """:meth:`get_chat` for the variant ``subject`` is served."""
        return Chat(self._native.get_chat_for(name, env or self.environment, subject, variables))

    def prompt(self, name: str, /, env: Optional[str] = None) -> Template:
        """The raw template live as ``name``, with its ``version`` and ``variables``.

        >>> prompts.prompt("greeting").variables  # doctest: +SKIP
        ['name']
        """
        return Template(self._native.template(name, env or self.environment))

    def prefetch(self, env: Optional[str] = None) -> int:
        """Loads every prompt live in ``env`` into the cache; returns how many."""
        return self._native.prefetch(env or self.environment)

    def on_change(self, callback: Callable[[Change], None]) -> None:
        """Calls ``callback(change)`` for every change pushed by the server, once the cache
        holds the new version. It runs on the client's feed thread: keep it short.

        >>> prompts.on_change(lambda change: print(change.prompt, "is now", change.version))  # doctest: +SKIP
        """
        self._native.on_change(lambda raw: callback(Change(raw)))

    def is_stale(self, name: Optional[str] = None, env: Optional[str] = None) -> bool:
        """Whether what is served may be older than what is deployed.

        Without ``name``: the last attempt to reach the server failed. With ``name``
        (in ``env``, default the client's environment): additionally, that prompt came
        from the snapshot or its last revalidation failed, and the server has not
        confirmed it since.

        >>> if prompts.is_stale("greeting"):  # doctest: +SKIP
        ...     log.warning("serving the last known greeting")
        """
        if name is None:
            return self._native.is_stale()
        return self._native.is_stale(name, env or self.environment)

    def close(self) -> None:
        """Stops the change feed and releases connections. Calls after it raise."""
        self._native.close()

    def __enter__(self) -> "Prompts":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
