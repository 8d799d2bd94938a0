"""The session and what happens to it when the user proves who they are.

A session keeps its ``sid`` for its whole life. Every completed authentication is appended to its
history; ``auth_time`` is the latest completion. Re-authentication of the *same* subject keeps the
session; another subject always gets a new one (OIDC Core §2 ``sid``; OWASP ASVS 5.0 V7). Either
way the cookie secret is replaced, so a cookie planted before sign-in is worthless after it
(session fixation).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from freshid.freshness.decision import SessionState
from freshid.freshness.levels import event_acr


@dataclass(frozen=True)
class Session:
    id: str
    user_id: str
    created_at: int
    auth_time: int
    last_seen_at: int
    expires_at: int
    acr: str
    amr: tuple[str, ...]
    revoked_at: int | None = None
    event_id: str | None = None
    """The latest authentication event: the methods completed together in one interaction."""
    methods: tuple[str, ...] = ()
    factors: frozenset[str] = frozenset()
    phishing_resistant: bool = False

    def alive(self, now: int, idle_ttl: int) -> bool:
        return (
            self.revoked_at is None and now < self.expires_at and now - self.last_seen_at < idle_ttl
        )

    def state(self) -> SessionState:
        return SessionState(
            self.id,
            self.user_id,
            self.auth_time,
            self.acr,
            self.amr,
            self.methods,
            self.factors,
            self.phishing_resistant,
            self.event_id,
        )


class Continuation(Enum):
    """What a successful authentication does to the browser's current session."""

    EXTEND = "extend"
    """Same subject: same sid, later auth_time, new cookie secret."""
    REPLACE = "replace"
    """Another subject: the old session is revoked and a new one starts."""
    CREATE = "create"
    """No session yet."""


def continuation(current: Session | None, user_id: str) -> Continuation:
    if current is None:
        return Continuation.CREATE
    if current.user_id == user_id:
        return Continuation.EXTEND
    return Continuation.REPLACE


@dataclass(frozen=True)
class AuthenticationEvent:
    """What the methods completed together prove (OIDC Core §2 ``acr``/``amr``; RFC 8176 §2:
    ``mfa`` when more than one kind of factor was used)."""

    methods: tuple[str, ...]
    amr: tuple[str, ...]
    acr: str
    factors: frozenset[str]
    phishing_resistant: bool


def combine(parts: list[tuple[str, tuple[str, ...], frozenset[str], bool]]) -> AuthenticationEvent:
    """Combine ``(method, amr, factors, phishing_resistant)`` completions of one event."""
    methods = tuple(dict.fromkeys(p[0] for p in parts))
    factors = frozenset().union(*(p[2] for p in parts))
    phr = any(p[3] for p in parts)
    amr = list(dict.fromkeys(v for p in parts for v in p[1] if v != "mfa"))
    if len(factors) >= 2:
        amr.append("mfa")
    return AuthenticationEvent(methods, tuple(amr), event_acr(factors, phr), factors, phr)
