"""The asyncio client, :class:`AsyncPrompts`."""

from __future__ import annotations

import asyncio
import inspect
import os
from typing import Any, Awaitable, Callable, List, Optional, Union

from . import _native
from ._client import Change, Chat, PathLike, Served, Template

ChangeCallback = Callable[[Change], Union[None, Awaitable[None]]]


class AsyncPrompts:
    """:class:`Prompts` for asyncio applications: the same client (one cache, one change
    feed, one renderer), with every call that may wait on the network a coroutine and
    no call that blocks the event loop.

    A cached prompt is rendered right away on the loop (a few microseconds); anything
    that may wait — the first fetch of a prompt, a revalidation, building the client
    and loading its snapshot, closing it — runs on a worker thread while the loop goes
    on. With ``snapshot_path``, a client started while the server is down serves the
    prompts the snapshot holds.

    >>> import asyncio, promptos
    >>> async def main():  # doctest: +SKIP
    ...     async with promptos.AsyncPrompts("http://127.0.0.1:8080", api_key="pos_…") as prompts:
    ...         print(await prompts.get("greeting", name="Alex"))
    >>> asyncio.run(main())  # doctest: +SKIP
    Hello Alex!
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
        change_feed: bool = True,
        app_name: Optional[str] = None,
        heartbeat_seconds: float = 15,
        fleet_reports: bool = True,
    ) -> None:
        self.environment = environment or "production"
        self._options = dict(
            api_key=api_key,
            nats_url=nats_url,
            snapshot_path=os.fspath(snapshot_path) if snapshot_path is not None else None,
            ttl_seconds=float(ttl_seconds),
            timeout_seconds=float(timeout_seconds),
            strict=strict,
            change_feed=change_feed,
            app_name=app_name,
            heartbeat_seconds=float(heartbeat_seconds),
            fleet_reports=fleet_reports,
        )
        self._url = url
        self._native: Optional[_native.Client] = None
        self._opening: Optional["asyncio.Future[_native.Client]"] = None
        self._callbacks: List[Callable[[Any], None]] = []
        self._closed = False

    async def open(self) -> "AsyncPrompts":
        """Builds the client (and loads its snapshot) off the event loop. Called by
        ``async with`` and by the first call that needs it."""
        await self._client()
        return self

    async def _client(self) -> _native.Client:
        if self._native is not None:
            return self._native
        if self._closed:
            raise RuntimeError("this PromptOS client is closed")
        if self._opening is None:
            self._opening = asyncio.ensure_future(asyncio.to_thread(_native.Client, self._url, environment=self.environment, **self._options))
        native = await asyncio.shield(self._opening)
        if self._native is None:
            self._native = native
            for callback in self._callbacks:
                native._on_change(callback)
        return native

    def _env(self, env: Optional[str]) -> str:
        return env or self.environment

    async def get(self, name: str, /, env: Optional[str] = None, **variables: Any) -> str:
        """The text prompt live as ``name`` in ``env``, rendered with ``variables``; see
        :meth:`Prompts.get`.

        >>> await prompts.get("greeting", name="Alex")  # doctest: +SKIP
        'Hello Alex!'
        """
        native = self._native or await self._client()
        env = self._env(env)
        text = native.get_cached(name, env, **variables)
        if text is not None:
            return text
        return await asyncio.to_thread(native.get, name, env, **variables)

    async def get_chat(self, name: str, /, env: Optional[str] = None, **variables: Any) -> Chat:
        """The chat prompt live as ``name``; see :meth:`Prompts.get_chat`.

        >>> chat = await prompts.get_chat("support-chat", question="Where is my order?")  # doctest: +SKIP
        >>> await openai.chat.completions.create(messages=chat.messages, **chat.config)  # doctest: +SKIP
        """
        native = self._native or await self._client()
        return Chat(await asyncio.to_thread(native._get_chat, name, self._env(env), variables))

    async def get_for(self, name: str, subject: str, /, env: Optional[str] = None, **variables: Any) -> Served:
        """The variant of ``name`` that ``subject`` is served; see :meth:`Prompts.get_for`.

        >>> served = await prompts.get_for("checkout-copy", "user-4711")  # doctest: +SKIP
        """
        native = self._native or await self._client()
        text, version, experiment_id = await asyncio.to_thread(native._get_for, name, self._env(env), subject, variables)
        return Served(text, version, experiment_id)

    async def get_chat_for(self, name: str, subject: str, /, env: Optional[str] = None, **variables: Any) -> Chat:
        """:meth:`get_chat` for the variant ``subject`` is served."""
        native = self._native or await self._client()
        return Chat(await asyncio.to_thread(native._get_chat_for, name, self._env(env), subject, variables))

    async def prompt(self, name: str, /, env: Optional[str] = None) -> Template:
        """The raw template live as ``name``; see :meth:`Prompts.prompt`.

        >>> (await prompts.prompt("greeting")).variables  # doctest: +SKIP
        ['name']
        """
        native = self._native or await self._client()
        return Template(await asyncio.to_thread(native._template, name, self._env(env)))

    async def prefetch(self, env: Optional[str] = None) -> int:
        """Loads every prompt live in ``env`` into the cache; returns how many."""
        native = self._native or await self._client()
        return await asyncio.to_thread(native.prefetch, self._env(env))

    def on_change(self, callback: ChangeCallback) -> None:
        """Calls ``callback(change)`` on this event loop for every change the server
        pushes, once the cache holds the new version. ``callback`` may be a plain
        function or a coroutine function. Call it from a running event loop.

        >>> async def changed(change):  # doctest: +SKIP
        ...     print(change.prompt, "is now", change.version)
        >>> prompts.on_change(changed)  # doctest: +SKIP
        """
        loop = asyncio.get_running_loop()

        def deliver(change: Change) -> None:
            result = callback(change)
            if inspect.isawaitable(result):
                asyncio.ensure_future(result)

        def from_feed(raw: Any) -> None:
            # On the feed's thread: hand the change to the loop, unless it is gone.
            if not loop.is_closed():
                loop.call_soon_threadsafe(deliver, Change(raw))

        self._callbacks.append(from_feed)
        if self._native is not None:
            self._native._on_change(from_feed)

    def is_stale(self, name: Optional[str] = None, env: Optional[str] = None) -> bool:
        """See :meth:`Prompts.is_stale`. Never waits. ``False`` before the client is
        open (nothing has been served yet)."""
        if self._native is None:
            return False
        if name is None:
            return self._native.is_stale()
        return self._native.is_stale(name, self._env(env))

    async def close(self) -> None:
        """Stops the change feed and releases connections, off the event loop."""
        self._closed = True
        native = self._native
        if native is None and self._opening is not None:
            native = await asyncio.shield(self._opening)
        self._native = None
        if native is not None:
            await asyncio.to_thread(native.close)

    async def __aenter__(self) -> "AsyncPrompts":
        return await self.open()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
