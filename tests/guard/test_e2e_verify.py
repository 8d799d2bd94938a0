"""The guard against a real FreshID: JWKS over HTTP, real tokens, freshness by time travel."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from freshid_guard import (
    Allowed,
    Guard,
    InvalidToken,
    ProviderUnavailable,
    StepUp,
    StepUpRequired,
    load_policies,
)

from tests.conftest import RunningServer
from tests.guard.flow import User

CATALOG = """
[actions."keys.reveal"]
label = "reveal an API key"
max_age = 600

[actions."billing.update"]
label = "change billing details"
max_age = 300

[actions."admin.grant"]
label = "grant admin rights"
max_age = 300
min_acr = "urn:freshid:acr:mfa"

[actions."account.delete"]
label = "delete your account"
max_age = 120
amr = ["hwk", "otp"]
"""


@pytest.fixture
def user(server: RunningServer) -> Iterator[User]:
    u = User(server)
    yield u
    u.close()


@pytest.fixture
def guard(server: RunningServer) -> Iterator[Guard]:
    g = Guard(server.url, load_policies(CATALOG))
    yield g
    g.close()


def test_a_fresh_real_token_verifies_and_is_allowed(guard: Guard, user: User) -> None:
    token = guard.authenticate(user.access_token())
    assert token.issuer == guard.issuer
    assert token.amr == ("pwd",) and token.acr == "urn:freshid:acr:1fa"
    assert token.sid and token.jti and token.client_id == user.client_id
    outcome = guard.require_fresh(token, "billing.update")
    assert isinstance(outcome, Allowed) and outcome.proof_age < 30


def test_freshness_of_a_real_400_second_old_proof(guard: Guard, user: User) -> None:
    token = guard.authenticate(user.access_token(age=400))
    assert guard.now() - token.auth_time >= 400
    assert guard.now() - token.iat < 30  # the token itself is current
    expected = {
        "keys.reveal": "allowed",  # 600 s allowed
        "billing.update": "stale",  # 300 s allowed
        "admin.grant": "stale",
        "account.delete": "stale",
    }
    for action, verdict in expected.items():
        outcome = guard.require_fresh(token, action)
        got = "allowed" if isinstance(outcome, Allowed) else outcome.reason
        assert got == verdict, action


def test_a_fresh_password_proof_is_too_weak_for_mfa_and_hardware_actions(
    guard: Guard, user: User
) -> None:
    token = guard.authenticate(user.access_token())
    reasons = {}
    for action in ("admin.grant", "account.delete"):
        outcome = guard.require_fresh(token, action)
        assert isinstance(outcome, StepUp)
        reasons[action] = outcome.reason
    assert reasons == {"admin.grant": "acr", "account.delete": "amr"}


def test_an_old_proof_becomes_fresh_after_reauthentication_in_the_same_session(
    guard: Guard, user: User
) -> None:
    old = guard.authenticate(user.access_token(age=400))
    assert isinstance(guard.require_fresh(old, "billing.update"), StepUp)
    new = guard.authenticate(user.tokens(max_age="300")["access_token"])
    assert new.sid == old.sid and new.auth_time > old.auth_time
    assert isinstance(guard.require_fresh(new, "billing.update"), Allowed)


def test_keys_are_fetched_once_and_verified_tokens_cached(guard: Guard, user: User) -> None:
    raw = user.access_token()
    first = guard.authenticate(raw)
    assert guard.jwks.fetch_count == 1
    assert guard.authenticate(raw) is first  # cache hit
    guard.authenticate(user.access_token())
    assert guard.jwks.fetch_count == 1


def test_async_verification_against_the_real_server(server: RunningServer, user: User) -> None:
    guard = Guard(server.url, load_policies(CATALOG))
    raw = user.access_token(age=400)

    async def run() -> None:
        allowed = await guard.check_async(f"Bearer {raw}", "keys.reveal")
        assert allowed.token.sub
        with pytest.raises(StepUpRequired) as refused:
            await guard.check_async(f"Bearer {raw}", "billing.update")
        assert refused.value.step_up.reason == "stale"

    asyncio.run(run())


def test_a_real_token_for_another_audience_or_issuer_is_refused(
    server: RunningServer, user: User
) -> None:
    raw = user.access_token()
    other_audience = Guard(server.url, load_policies(CATALOG), audience="https://api.example")
    with pytest.raises(InvalidToken, match="audience"):
        other_audience.authenticate(raw)
    # An issuer spelled differently is another issuer: discovery itself refuses it.
    other_issuer = Guard(server.url + "/", load_policies(CATALOG))
    with pytest.raises(ProviderUnavailable):
        other_issuer.authenticate(raw)
