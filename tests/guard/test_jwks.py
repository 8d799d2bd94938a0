"""Keys through discovery: caching, rate-limited refetch on unknown kids, rotation, outages."""

from __future__ import annotations

import asyncio

import pytest
from freshid_guard import Denial, Guard, InvalidToken, ProviderUnavailable, StepUpRequired
from freshid_guard.jwks import JWKSCache, discovery_url, parse_metadata

from tests.guard.issuer import NOW, Clock, FakeIssuer


def test_discovery_then_jwks_then_cached() -> None:
    issuer = FakeIssuer()
    guard = issuer.guard()
    guard.authenticate(issuer.token())
    guard.authenticate(issuer.token())
    assert issuer.requests == ["/.well-known/openid-configuration", "/jwks"]


def test_garbage_kids_cannot_make_the_guard_hammer_the_provider() -> None:
    issuer = FakeIssuer()
    clock = Clock()
    guard = issuer.guard(clock, jwks_min_refetch_interval=30)
    guard.authenticate(issuer.token())
    with pytest.raises(InvalidToken):  # within 30 s of the first fetch: no refetch at all
        guard.authenticate(issuer.sign(issuer.claims(), issuer.header(kid="garbage")))
    assert issuer.requests.count("/jwks") == 1
    clock.now += 30
    for n in range(50):
        with pytest.raises(InvalidToken):
            guard.authenticate(issuer.sign(issuer.claims(), issuer.header(kid=f"garbage-{n}")))
    assert issuer.requests.count("/jwks") == 2  # one refetch for fifty unknown kids
    clock.now += 30
    with pytest.raises(InvalidToken):
        guard.authenticate(issuer.sign(issuer.claims(), issuer.header(kid="garbage")))
    assert issuer.requests.count("/jwks") == 3


def test_a_rotated_key_is_picked_up_and_the_cache_cleared() -> None:
    issuer = FakeIssuer()
    clock = Clock()
    guard = issuer.guard(clock)
    old_token = issuer.token()
    guard.authenticate(old_token)
    assert len(guard.cache) == 1
    clock.now += 31
    issuer.rotate("k2")  # the provider now publishes only k2
    new = guard.authenticate(issuer.token(now=clock.now))
    assert new.sub == "user-1"
    assert len(guard.cache) == 1  # the old key's tokens were forgotten
    with pytest.raises(InvalidToken):
        guard.authenticate(old_token)  # its key is gone


def test_keys_are_refreshed_after_their_ttl() -> None:
    issuer = FakeIssuer()
    clock = Clock()
    guard = issuer.guard(clock, jwks_ttl=300)
    guard.authenticate(issuer.token())
    clock.now += 301
    guard.authenticate(issuer.token(now=clock.now))
    assert issuer.requests.count("/jwks") == 2


def test_an_outage_keeps_the_old_keys_for_a_while_then_answers_503() -> None:
    issuer = FakeIssuer()
    clock = Clock()
    guard = issuer.guard(clock, jwks_ttl=300, jwks_max_stale=3600)
    guard.authenticate(issuer.token())
    issuer.fail = True
    clock.now += 400
    assert guard.authenticate(issuer.token(now=clock.now)).sub == "user-1"  # stale keys serve
    clock.now += 3600
    with pytest.raises(ProviderUnavailable):
        guard.authenticate(issuer.token(now=clock.now))
    denial = guard.protect(f"Bearer {issuer.token(now=clock.now)}", "keys.reveal")
    assert isinstance(denial, Denial) and denial.status == 503
    assert ("Retry-After", "30") in denial.headers


def test_no_provider_at_all_is_503_not_invalid_token() -> None:
    issuer = FakeIssuer()
    issuer.fail = True
    guard = issuer.guard()
    with pytest.raises(ProviderUnavailable):
        guard.authenticate(issuer.token())
    with pytest.raises(ProviderUnavailable):
        guard.authenticate(issuer.token())
    assert issuer.requests == ["/.well-known/openid-configuration"]  # rate limited too


def test_metadata_must_name_the_configured_issuer() -> None:
    with pytest.raises(ValueError, match="another issuer"):
        parse_metadata({"issuer": "https://evil", "jwks_uri": "https://evil/jwks"}, "https://id")
    with pytest.raises(ValueError, match="jwks_uri"):
        parse_metadata({"issuer": "https://id", "jwks_uri": "http://id/jwks"}, "https://id")
    with pytest.raises(ValueError):
        parse_metadata(["x"], "https://id")
    meta = parse_metadata(
        {"issuer": "https://id", "jwks_uri": "https://id/jwks", "authorization_endpoint": 3},
        "https://id",
    )
    assert meta.authorization_endpoint is None
    assert discovery_url("https://id/tenant/") == (
        "https://id/tenant/.well-known/openid-configuration"
    )


def test_the_rate_limit_core() -> None:
    cache = JWKSCache("https://id", ttl=300, min_refetch_interval=30)
    assert cache.should_fetch(NOW)
    cache.begin(NOW)
    assert not cache.should_fetch(NOW + 29, unknown_kid=True)
    assert cache.should_fetch(NOW + 30, unknown_kid=True)
    with pytest.raises(ProviderUnavailable):
        cache.result(NOW)


def test_async_path_shares_the_cache() -> None:
    issuer = FakeIssuer()
    clock = Clock()
    guard = issuer.guard(clock)

    async def run() -> None:
        await asyncio.gather(*(guard.authenticate_async(issuer.token()) for _ in range(20)))
        with pytest.raises(InvalidToken):
            await guard.authenticate_async(issuer.sign(issuer.claims(), issuer.header(kid="x")))
        with pytest.raises(StepUpRequired):
            await guard.check_async(f"Bearer {issuer.token(auth_time=NOW - 400)}", "billing.update")

    asyncio.run(run())
    assert issuer.requests.count("/jwks") == 1  # one fetch for 20 concurrent requests


def test_guard_without_injected_clients_uses_its_own() -> None:
    guard = Guard("https://127.0.0.1:9", {}, jwks_min_refetch_interval=0)
    with pytest.raises(ProviderUnavailable):
        guard.authenticate(FakeIssuer("https://127.0.0.1:9").token())
    guard.close()
