"""The exceptions the PromptOS SDK raises, all under :class:`PromptosError`.

>>> import promptos
>>> issubclass(promptos.Unavailable, ConnectionError)
True
"""

from __future__ import annotations

from typing import Optional


class PromptosError(Exception):
    """Base class of every error the SDK raises.

    Attributes set where they apply: ``prompt``, ``environment``, ``variable``, ``kind``.
    """

    prompt: Optional[str] = None
    environment: Optional[str] = None


class PromptNotFound(PromptosError, LookupError):
    """Nothing is deployed under that name in that environment."""


class MissingVariable(PromptosError, KeyError):
    """The template reads a variable the call did not pass; ``variable`` names it."""

    variable: Optional[str] = None

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class RenderError(PromptosError):
    """The template failed while rendering."""


class Unauthorized(PromptosError):
    """The server refused the API key (401), or it lacks the right to the environment (403)."""


class Unavailable(PromptosError, ConnectionError):
    """The server could not be reached and nothing was cached for this prompt.

    Also a :class:`ConnectionError`, as the seed's client raised.
    """


class WrongKind(PromptosError, TypeError):
    """``get`` on a chat prompt (use ``get_chat``) or ``get_chat`` on a text prompt; ``kind`` says which it is."""

    kind: Optional[str] = None


class ProtocolError(PromptosError):
    """The server answered something this SDK does not understand."""


class ConfigurationError(PromptosError, ValueError):
    """The client was configured wrongly (a malformed URL or API key, say)."""


__all__ = [
    "PromptosError",
    "PromptNotFound",
    "MissingVariable",
    "RenderError",
    "Unauthorized",
    "Unavailable",
    "WrongKind",
    "ProtocolError",
    "ConfigurationError",
]
