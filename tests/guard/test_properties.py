"""Property tests: whatever a client sends, the guard answers with its own refusal family — never
with another exception — and the adapters' ``protect`` never raises at all."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from freshid_guard import (
    Allowed,
    Denial,
    GuardRefusal,
    InvalidToken,
    KeySet,
    TokenVerifier,
    bearer_token,
    safe_return_path,
)
from freshid_guard.challenge import UnsafeReturnPath, bearer_challenge
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.guard.issuer import NOW, FakeIssuer, b64, b64json

ISSUER = FakeIssuer()
KEYS = KeySet.from_jwks(ISSUER.jwks())
VERIFIER = TokenVerifier(ISSUER.issuer)
GUARD = ISSUER.guard()
GUARD.authenticate(ISSUER.token())  # keys fetched once; the properties then run without I/O

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=6,
)
CLAIMS = [
    "iss",
    "aud",
    "sub",
    "client_id",
    "iat",
    "exp",
    "nbf",
    "jti",
    "scope",
    "auth_time",
    "acr",
    "amr",
    "sid",
    "authorization_details",
]
fast = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _verify_only_refuses(token: str) -> None:
    with contextlib.suppress(GuardRefusal):
        VERIFIER.verify(token, KEYS, NOW)


@fast
@given(st.text(max_size=300))
def test_random_strings(token: str) -> None:
    _verify_only_refuses(token)


@fast
@given(st.lists(st.binary(max_size=120), min_size=1, max_size=5))
def test_random_base64_segments(segments: list[bytes]) -> None:
    _verify_only_refuses(".".join(b64(s) for s in segments))


@fast
@given(json_values, json_values, st.binary(max_size=80))
def test_random_json_header_and_payload(header: Any, payload: Any, signature: bytes) -> None:
    _verify_only_refuses(f"{b64json(header)}.{b64json(payload)}.{b64(signature)}")


@fast
@given(
    st.dictionaries(st.sampled_from(["alg", "kid", "typ", "jku", "crit", "x"]), json_values),
    json_values,
)
def test_random_headers_with_a_real_signature(header: dict[str, Any], payload: Any) -> None:
    signing_input = f"{b64json(header)}.{b64json(payload)}"
    _verify_only_refuses(ISSUER.sign(ISSUER.claims(), header))
    _verify_only_refuses(signing_input + "." + ISSUER.token().split(".")[2])


@fast
@given(st.dictionaries(st.sampled_from(CLAIMS), json_values, min_size=1))
def test_signed_tokens_with_random_claim_types(overrides: dict[str, Any]) -> None:
    claims = {**ISSUER.claims(), **overrides}
    try:
        token = VERIFIER.verify(ISSUER.sign(claims), KEYS, NOW)
    except GuardRefusal:
        return
    # Whatever got through is well typed.
    assert isinstance(token.sub, str) and isinstance(token.auth_time, int)
    assert all(isinstance(v, str) for v in token.amr)
    assert isinstance(token.bound_actions, frozenset)


@fast
@given(st.dictionaries(st.sampled_from(CLAIMS), json_values, min_size=1))
def test_signed_tokens_with_random_claims_through_the_whole_guard(
    overrides: dict[str, Any],
) -> None:
    raw = ISSUER.sign({**ISSUER.claims(), **overrides})
    for action in ("keys.reveal", "account.delete", "billing.update"):
        outcome = GUARD.protect(f"Bearer {raw}", action)
        assert isinstance(outcome, Allowed | Denial)
        if isinstance(outcome, Denial):
            assert outcome.status in (401, 403)
            assert dict(outcome.headers)["WWW-Authenticate"].startswith("Bearer")


@fast
@given(st.one_of(st.none(), st.text(max_size=200), st.lists(st.text(max_size=60), max_size=3)))
def test_authorization_headers(header: Any) -> None:
    with contextlib.suppress(GuardRefusal):
        bearer_token(header)
    outcome = GUARD.protect(header, "keys.reveal")
    assert isinstance(outcome, Denial) and outcome.status in (400, 401)


@fast
@given(st.text(max_size=200))
def test_error_descriptions_are_always_sendable(text: str) -> None:
    header = bearer_challenge(error="invalid_token", error_description=text)
    header.encode("ascii")
    assert "\n" not in header and "\r" not in header


@fast
@given(st.text(max_size=80))
def test_return_paths_are_same_origin_or_refused(path: str) -> None:
    from urllib.parse import urljoin, urlsplit

    try:
        accepted = safe_return_path(path)
    except UnsafeReturnPath:
        return
    resolved = urlsplit(urljoin("https://app.example/x/y", accepted))
    assert (resolved.scheme, resolved.netloc) == ("https", "app.example")


def test_a_deeply_nested_signed_payload_is_refused_not_crashing() -> None:
    deep = b"[" * 6000 + b"]" * 6000
    signing_input = f"{b64json(ISSUER.header())}.{b64(deep)}"
    der = ISSUER.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    raw = f"{signing_input}.{b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"
    with pytest.raises(InvalidToken, match="payload"):
        VERIFIER.verify(raw, KEYS, NOW)
