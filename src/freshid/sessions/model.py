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

    def alive(self, now: int, idle_ttl: int) -> bool:
        return (
            self.revoked_at is None and now < self.expires_at and now - self.last_seen_at < idle_ttl
        )

    def state(self) -> SessionState:
        return SessionState(self.id, self.user_id, self.auth_time, self.acr, self.amr)


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
