"""PromptOS for Python: the prompt live in an environment with one call, cached, and
refreshed by push the moment someone deploys.

>>> import promptos
>>> prompts = promptos.Prompts("http://127.0.0.1:8080", api_key="pos_…")  # doctest: +SKIP
>>> prompts.get("greeting", name="Alex")  # doctest: +SKIP
'Hello Alex!'

:class:`AsyncPrompts` is the same client for asyncio. Both are safe to use across
``fork()`` (gunicorn ``--preload``, uWSGI, Celery's prefork pool): a child process builds
its own connections and change feed on first use.

The client is the Rust SDK's (one cache, one change-feed client, one renderer and one
A/B bucketing function for every language), loaded as ``promptos._native``.
"""

from ._async import AsyncPrompts
from ._client import Change, Chat, Prompts, Served, Template
from ._native import __version__
from . import errors
from .errors import *  # noqa: F403 - every exception, listed in errors.__all__

__all__ = ["Prompts", "AsyncPrompts", "Chat", "Served", "Template", "Change", "__version__", *errors.__all__]
