"""The interface every authentication method implements.

A method neither speaks HTTP nor SQL: it is handed what the user submitted and what is stored for
the user, and answers with a :class:`CompletedMethod` (its RFC 8176 ``amr`` values) or raises
:class:`MethodFailed`. The web layer turns either into a page; the storage layer records the
result. What a method proves is described by its :class:`MethodInfo`: which factors (NIST SP
800-63B §5.1) it stands for and whether it resists phishing; the ``acr`` of an authentication
event is computed from the methods completed in it (:func:`freshid.freshness.levels.event_acr`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Factor(StrEnum):
    KNOWLEDGE = "knowledge"
    POSSESSION = "possession"
    INHERENCE = "inherence"


@dataclass(frozen=True)
class MethodInfo:
    name: str
    """Stable identifier: ``password``, ``email_code``, ``totp``, ``recovery_code``, ``passkey``."""
    label: str
    """What the user sees: "Password", "Code by email", "Authenticator app", ..."""
    factors: frozenset[Factor]
    phishing_resistant: bool = False
    rank: int = 0
    """Order on the choice page, strongest first (higher first)."""


@dataclass(frozen=True)
class CompletedMethod:
    method: str
    amr: tuple[str, ...]
    acr: str
    completed_at: int
    upstream: dict[str, Any] | None = field(default=None)
    factors: frozenset[Factor] = frozenset()
    phishing_resistant: bool = False


class MethodFailed(Exception):
    """The proof was wrong. ``reason`` goes into the ``authentication.failed`` event; the user sees
    only a generic message, so the reason never reveals whether an account exists."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
