"""The shortcuts the per-request path takes must change no answer: the DER conversion, objects
built without their dataclass ``__init__``, the verified-token cache keyed by a token's tail,
``Guard.protect_cached`` and the strict base64url/JSON decoding."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from freshid_guard import (
    Allowed,
    Denial,
    Evidence,
    InvalidToken,
    KeySet,
    TokenVerifier,
    VerifiedToken,
    VerifiedTokenCache,
    judge,
)
from freshid_guard.adapters.asgi import FreshnessMiddleware, Rule
from freshid_guard.decision import InMemoryReplayStore
from freshid_guard.jose import (
    b64url_bytes,
    b64url_decode,
    b64url_encode,
    der_signature,
    payload_object,
)
from freshid_guard.verify import _KEY_CHARS

from tests.guard.issuer import NOW, Clock, FakeIssuer, b64, b64json


@pytest.fixture
def issuer() -> FakeIssuer:
    return FakeIssuer()


# --- DER ------------------------------------------------------------------------------------


def _integers(size: int, rng: random.Random) -> list[bytes]:
    edge = [
        bytes(size),
        b"\x00" * (size - 1) + b"\x01",
        b"\x00" + b"\xff" * (size - 1),
        b"\x00\x80" + bytes(size - 2),
        b"\x7f" + b"\xff" * (size - 1),
        b"\x80" + bytes(size - 1),
        b"\xff" * size,
        b"\x01" * size,
    ]
    return edge + [rng.randbytes(size) for _ in range(200)]


@pytest.mark.parametrize("size", [32, 48, 66])
def test_der_signature_is_what_cryptography_encodes(size: int) -> None:
    rng = random.Random(size)
    values = _integers(size, rng)
    for r in values:
        for s in rng.sample(values, 8) + values[:8]:
            expected = encode_dss_signature(int.from_bytes(r, "big"), int.from_bytes(s, "big"))
            assert der_signature(r + s, size) == expected, (r.hex(), s.hex())


def test_der_signature_wants_r_and_s_of_the_stated_size() -> None:
    with pytest.raises(ValueError):
        der_signature(bytes(63), 32)


# --- objects built without __init__ ---------------------------------------------------------


def test_a_verified_token_has_every_field_and_stays_frozen(issuer: FakeIssuer) -> None:
    token = TokenVerifier(issuer.issuer).verify(
        issuer.token(), KeySet.from_jwks(issuer.jwks()), NOW
    )
    assert set(vars(token)) == {f.name for f in dataclasses.fields(VerifiedToken)}
    with pytest.raises(dataclasses.FrozenInstanceError):
        token.sub = "someone else"  # type: ignore[misc]
    copy = dataclasses.replace(token, jti="other")
    assert (copy.jti, copy.sub, copy.claims) == ("other", token.sub, token.claims)
    assert token.bound_actions == frozenset()
    with pytest.raises(TypeError):
        token.claims["sub"] = "x"  # type: ignore[index]


def test_an_allowed_outcome_is_the_dataclass_it_would_have_been(issuer: FakeIssuer) -> None:
    guard = issuer.guard()
    token = guard.verifier.verify(issuer.token(), KeySet.from_jwks(issuer.jwks()), NOW)
    policy = guard.policy("keys.reveal")
    outcome = judge(token, policy, NOW)
    assert isinstance(outcome, Allowed)
    assert set(vars(outcome)) == {f.name for f in dataclasses.fields(Allowed)}
    same = Allowed(token, policy, 60, bound=False)
    assert outcome == same and hash(outcome) == hash(same) and repr(outcome) == repr(same)
    with pytest.raises(dataclasses.FrozenInstanceError):
        outcome.proof_age = 0  # type: ignore[misc]


# --- the cache ------------------------------------------------------------------------------


def _verified(issuer: FakeIssuer, raw: str) -> VerifiedToken:
    return TokenVerifier(issuer.issuer).verify(raw, KeySet.from_jwks(issuer.jwks()), NOW)


def test_a_token_sharing_a_cached_tokens_tail_is_not_served_its_entry(
    issuer: FakeIssuer,
) -> None:
    cache = VerifiedTokenCache()
    raw = issuer.token(sub="victim")
    cache.put(raw, _verified(issuer, raw), "keys")
    other = issuer.token(sub="attacker")
    forged = other.rsplit(".", 1)[0] + "." + raw[-_KEY_CHARS:]  # same tail, other token
    assert forged[-_KEY_CHARS:] == raw[-_KEY_CHARS:] and forged != raw
    assert cache.get(forged, NOW) is None
    found = cache.get(raw, NOW)
    assert found is not None and found.sub == "victim"
    # A second token with the same tail replaces the first: a miss, never a wrong answer.
    cache.put(forged, _verified(issuer, other), "keys")
    assert cache.get(raw, NOW) is None
    assert len(cache) == 1


def test_the_cache_forgets_the_oldest_first_and_expired_entries(issuer: FakeIssuer) -> None:
    cache = VerifiedTokenCache(maxsize=3)
    tokens = [issuer.token() for _ in range(4)]
    for raw in tokens:
        cache.put(raw, _verified(issuer, raw), "keys")
        cache.get(tokens[0], NOW)  # a hit does not keep an entry (first in, first out)
    assert [cache.get(t, NOW) is not None for t in tokens] == [False, True, True, True]
    assert cache.get(tokens[1], NOW + 600) is None
    assert len(cache) == 2
    assert cache.get(tokens[1], NOW) is None  # gone for good


# --- Guard.protect_cached -------------------------------------------------------------------


def test_protect_cached_answers_only_for_known_tokens(issuer: FakeIssuer) -> None:
    guard = issuer.guard()
    header = f"Bearer {issuer.token()}"
    assert guard.protect_cached(header, "keys.reveal") is None  # not verified yet
    assert isinstance(guard.protect(header, "keys.reveal"), Allowed)
    outcome = guard.protect_cached(header, "keys.reveal")
    assert isinstance(outcome, Allowed) and outcome.proof_age == 60
    assert outcome == guard.check(header, "keys.reveal")
    # The scheme in another case, or a list, take _bearer_credentials: the same token.
    for variant in (f"bearer {header[7:]}", f" BEARER {header[7:]}", [header]):
        assert isinstance(guard.protect_cached(variant, "keys.reveal"), Allowed), variant
    # "Bearer " then anything but the bare token: the full path, which finds the same token.
    spaced = f"Bearer   {header[7:]} "
    assert guard.protect_cached(spaced, "keys.reveal") is None
    assert isinstance(asyncio.run(guard.protect_async(spaced, "keys.reveal")), Allowed)
    for refused in (None, [header, header], "Basic abc", "Bearer x", f"Bearer {header[7:-1]}"):
        assert guard.protect_cached(refused, "keys.reveal") is None, refused
    assert guard.protect_cached(header, "no.such.action") is None
    assert guard.protect_cached(header, "keys.reveal", scopes=frozenset({"admin"})) is None
    assert isinstance(
        guard.protect_cached(header, "keys.reveal", scopes=frozenset({"email"})), Allowed
    )


def test_protect_cached_leaves_refusals_to_protect_async(issuer: FakeIssuer) -> None:
    clock = Clock()
    guard = issuer.guard(clock)
    header = f"Bearer {issuer.token()}"
    guard.check(header, "keys.reveal")
    clock.now += 1000  # older than keys.reveal's 600 s, still unexpired
    assert guard.protect_cached(header, "keys.reveal") is None
    denial = asyncio.run(guard.protect_async(header, "keys.reveal"))
    assert isinstance(denial, Denial) and denial.status == 401


def test_protect_cached_consumes_a_bound_proof_once(issuer: FakeIssuer) -> None:
    guard = issuer.guard()
    details = [{"type": "urn:freshid:action", "action": "project.transfer"}]
    header = f"Bearer {issuer.token(authorization_details=details)}"
    guard.authenticate(header[7:])
    assert isinstance(guard.protect_cached(header, "project.transfer"), Allowed)
    assert guard.protect_cached(header, "project.transfer") is None  # replayed: no side effect
    denial = asyncio.run(guard.protect_async(header, "project.transfer"))
    assert isinstance(denial, Denial) and denial.status == 401
    assert denial.refusal is not None and "already been used" in denial.refusal.description


def test_protect_cached_defers_to_a_blocking_replay_store(issuer: FakeIssuer) -> None:
    class Blocking(InMemoryReplayStore):
        blocking = True

    store = Blocking()
    guard = issuer.guard(replay_store=store)
    details = [{"type": "urn:freshid:action", "action": "project.transfer"}]
    header = f"Bearer {issuer.token(authorization_details=details)}"
    guard.authenticate(header[7:])
    assert guard.protect_cached(header, "project.transfer") is None
    assert len(store) == 0
    assert isinstance(asyncio.run(guard.protect_async(header, "project.transfer")), Allowed)
    assert len(store) == 1


def test_protect_cached_answers_500_when_the_evidence_hook_fails(issuer: FakeIssuer) -> None:
    seen: list[Evidence] = []

    def hook(evidence: Evidence) -> None:
        seen.append(evidence)
        raise RuntimeError("audit store down")

    guard = issuer.guard(on_evidence=hook)
    raw = issuer.token()
    guard.authenticate(raw)
    outcome = guard.protect_cached(f"Bearer {raw}", "keys.reveal")
    assert isinstance(outcome, Denial) and outcome.status == 500
    assert len(seen) == 1


def test_a_malformed_token_is_refused_before_any_key_fetch(issuer: FakeIssuer) -> None:
    guard = issuer.guard()
    for junk in ("a.b", "a.b.c.d", "Zm9v.YmFy.YmF6!", "x" * 20_000, "é.é.é"):
        with pytest.raises(InvalidToken):
            guard.check(f"Bearer {junk}", "keys.reveal")
    assert issuer.requests == []


def test_the_middleware_finds_the_header_however_it_is_spelled(issuer: FakeIssuer) -> None:
    guard = issuer.guard()
    raw = issuer.token()
    statuses: list[int] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        statuses.append(0)

    middleware = FreshnessMiddleware(app, guard=guard, rules=[Rule("/keys", "keys.reveal")])

    def call(headers: list[tuple[bytes, bytes]]) -> int:
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b""}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {"type": "http", "method": "GET", "path": "/keys", "headers": headers}
        asyncio.run(middleware(scope, receive, send))
        return int(sent[0]["status"]) if sent else 200

    value = f"Bearer {raw}".encode()
    assert call([(b"authorization", value)]) == 200  # verified, then
    assert call([(b"Authorization", value)]) == 200  # from the cache
    assert call([(b"authorization", value), (b"AUTHORIZATION", value)]) == 400
    assert call([]) == 401
    assert statuses == [0, 0]


# --- decoding -------------------------------------------------------------------------------


def test_base64url_decoding_is_strict() -> None:
    assert b64url_decode("Zm9vYg") == b"foob"
    assert b64url_bytes(b"-_8") == b"\xfb\xff"
    for bad in ("Zm9vYg==", "Zm9v+g", "Zm9v/g", "Zm9 vYg", "Zm9vY", "Zm9v\nYg", "Zm.9", "é"):
        with pytest.raises(InvalidToken):
            b64url_decode(bad)


def test_payloads_are_json_objects_with_or_without_surrounding_whitespace() -> None:
    assert payload_object(b'{"a": 1}') == {"a": 1}
    assert payload_object(b' \n{"a": [1, 2]}\t ') == {"a": [1, 2]}
    assert payload_object(b'{"a": 1, "a": 2}') == {"a": 2}
    for bad in (b'{"a": 1} x', b"[1]", b"", b"  ", b'{"a": 1', b'"x"', b"\xff"):
        with pytest.raises(InvalidToken):
            payload_object(bad)


def test_tokens_with_whitespace_in_their_payload_json_verify(issuer: FakeIssuer) -> None:
    pretty = b"  " + json.dumps(issuer.claims(), indent=2).encode() + b"\n"
    signing_input = f"{b64json(issuer.header())}.{b64url_encode(pretty)}"
    der = issuer.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    raw = f"{signing_input}.{b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"
    keys = KeySet.from_jwks(issuer.jwks())
    assert TokenVerifier(issuer.issuer).verify(raw, keys, NOW).sub == "user-1"
