"""The interface every authentication method implements.

A method neither speaks HTTP nor SQL: it is handed what the user submitted and what is stored for
the user, and answers with a :class:`CompletedMethod` (its RFC 8176 ``amr`` values and the ``acr``
it contributes) or raises :class:`MethodFailed`. The web layer turns either into a page; the
storage layer records the result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class CompletedMethod:
    method: str
    amr: tuple[str, ...]
    acr: str
    completed_at: int
    upstream: dict[str, Any] | None = field(default=None)


class MethodFailed(Exception):
    """The proof was wrong. ``reason`` goes into the ``authentication.failed`` event; the user sees
    only a generic message, so the reason never reveals whether an account exists."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
