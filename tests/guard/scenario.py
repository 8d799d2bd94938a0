"""One scenario every adapter must pass against a real FreshID: a protected app answers 200 to a
fresh proof and 401 + RFC 9470 to a stale one, and refuses missing or broken tokens properly."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from freshid_guard import Guard, load_policies

from tests.conftest import RunningServer
from tests.guard.flow import User

CATALOG = """
[actions."keys.reveal"]
label = "reveal an API key"
max_age = 600

[actions."billing.update"]
label = "change billing details"
max_age = 300
"""

STALE_BILLING = (
    'Bearer error="insufficient_user_authentication", '
    'error_description="Confirm it\'s you to change billing details: the last proof is too old", '
    'max_age="300"'
)


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> dict[str, object]:
        value: dict[str, object] = json.loads(self.body)
        return value


Get = Callable[[str, dict[str, str]], Answer]
"""Send ``GET path`` with headers to the app under test."""


@dataclass(frozen=True)
class RealTokens:
    fresh: str
    old: str
    """Its proof is 400 s old: fine for keys.reveal (600 s), stale for billing.update (300 s)."""


def real_tokens(server: RunningServer) -> RealTokens:
    user = User(server)
    try:
        old = user.access_token(age=400)
        fresh = user.tokens(prompt="login")["access_token"]
    finally:
        user.close()
    return RealTokens(fresh=fresh, old=old)


def guard_for(server: RunningServer) -> Guard:
    return Guard(server.url, load_policies(CATALOG), realm=None)


def check_adapter(get: Get, tokens: RealTokens) -> None:
    """The app routes ``/billing`` (billing.update), ``/keys`` (keys.reveal) and ``/open``; the
    protected ones answer JSON ``{"sub": ..., "action": ..., "proof_age": ...}``."""

    fresh = get("/billing", {"Authorization": f"Bearer {tokens.fresh}"})
    assert fresh.status == 200, fresh.body
    assert fresh.json()["action"] == "billing.update"
    fresh_age = fresh.json()["proof_age"]
    assert isinstance(fresh_age, int) and fresh_age < 60

    stale = get("/billing", {"Authorization": f"Bearer {tokens.old}"})
    assert stale.status == 401, stale.body
    assert stale.headers["www-authenticate"] == STALE_BILLING
    assert stale.headers["cache-control"] == "no-store"
    assert stale.json()["error"] == "insufficient_user_authentication"
    assert stale.json()["max_age"] == 300

    keys = get("/keys", {"Authorization": f"bearer   {tokens.old}"})
    assert keys.status == 200, keys.body
    proof_age = keys.json()["proof_age"]
    assert isinstance(proof_age, int) and 400 <= proof_age < 460

    missing = get("/billing", {})
    assert missing.status == 401
    assert missing.headers["www-authenticate"] == "Bearer"

    basic = get("/billing", {"Authorization": "Basic YTpi"})
    assert basic.status == 401 and basic.headers["www-authenticate"] == "Bearer"

    for garbage in ("Bearer abc", "Bearer a.b.c", f"Bearer {tokens.fresh}x", "Bearer a b"):
        broken = get("/billing", {"Authorization": garbage})
        assert broken.status == 401, garbage
        assert broken.headers["www-authenticate"].startswith('Bearer error="invalid_token"')

    assert get("/open", {}).status == 200
