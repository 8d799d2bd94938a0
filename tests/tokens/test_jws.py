"""JWS signing and verification: round trip, and every attack the allow-list must refuse."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from freshid.tokens import keys
from freshid.tokens.jws import JWSError, b64url_encode, sign_es256, verify

KEY = keys.generate(now=1_700_000_000)
OTHER = keys.generate(now=1_700_000_000)


def lookup(kid: str) -> ec.EllipticCurvePublicKey | None:
    return KEY.public_key if kid == KEY.kid else None


def forge(header: dict[str, object], payload: dict[str, object], sig: bytes = b"") -> str:
    h = b64url_encode(json.dumps(header).encode())
    p = b64url_encode(json.dumps(payload).encode())
    return f"{h}.{p}.{b64url_encode(sig)}"


def test_round_trip_and_header() -> None:
    token = sign_es256({"sub": "u1"}, KEY.private_key, KEY.kid, typ="at+jwt")
    assert verify(token, lookup, expected_typ="at+jwt") == {"sub": "u1"}
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header == {"alg": "ES256", "kid": KEY.kid, "typ": "at+jwt"}


def test_signature_is_raw_r_s_and_verifies_with_cryptography() -> None:
    token = sign_es256({"a": 1}, KEY.private_key, KEY.kid)
    h, p, s = token.split(".")
    raw = base64.urlsafe_b64decode(s + "==")
    assert len(raw) == 64
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    KEY.public_key.verify(der, f"{h}.{p}".encode(), ec.ECDSA(hashes.SHA256()))


@pytest.mark.parametrize(
    "token",
    [
        forge({"alg": "none", "kid": KEY.kid}, {"sub": "x"}),
        forge({"alg": "HS256", "kid": KEY.kid}, {"sub": "x"}),
        forge({"alg": "RS256", "kid": KEY.kid}, {"sub": "x"}, b"\0" * 256),
        forge({"alg": "ES256", "kid": "attacker"}, {"sub": "x"}, b"\0" * 64),
        forge(
            {"alg": "ES256", "kid": KEY.kid, "jku": "https://evil/jwks"}, {"sub": "x"}, b"\0" * 64
        ),
        forge({"alg": "ES256", "kid": KEY.kid, "jwk": {"kty": "EC"}}, {"sub": "x"}, b"\0" * 64),
        forge({"alg": "ES256", "kid": KEY.kid, "crit": ["exp"]}, {"sub": "x"}, b"\0" * 64),
        forge({"alg": "ES256", "kid": KEY.kid}, {"sub": "x"}, b"\0" * 64),
        "not-a-jwt",
        "a.b",
        "a.b.c.d",
        "!!!.###.$$$",
        "e30.e30.",
        "W10.e30.AAAA",  # header is a JSON array
        "x" * 20_000,
    ],
)
def test_refused(token: str) -> None:
    with pytest.raises(JWSError):
        verify(token, lookup)


def test_hs256_confusion_with_public_key_as_secret_is_refused() -> None:
    pub = KEY.public_key.public_bytes(
        encoding=__import__(
            "cryptography.hazmat.primitives.serialization", fromlist=["x"]
        ).Encoding.PEM,
        format=__import__(
            "cryptography.hazmat.primitives.serialization", fromlist=["x"]
        ).PublicFormat.SubjectPublicKeyInfo,
    )
    h = b64url_encode(json.dumps({"alg": "HS256", "kid": KEY.kid}).encode())
    p = b64url_encode(b'{"sub":"admin"}')
    sig = hmac.new(pub, f"{h}.{p}".encode(), hashlib.sha256).digest()
    with pytest.raises(JWSError, match="not allowed"):
        verify(f"{h}.{p}.{b64url_encode(sig)}", lookup)


def test_signature_by_another_key_with_our_kid_is_refused() -> None:
    token = sign_es256({"sub": "u1"}, OTHER.private_key, KEY.kid)
    with pytest.raises(JWSError, match="signature"):
        verify(token, lookup)


def test_payload_tampering_is_refused() -> None:
    h, _p, s = sign_es256({"sub": "u1"}, KEY.private_key, KEY.kid).split(".")
    evil = b64url_encode(b'{"sub":"admin"}')
    with pytest.raises(JWSError):
        verify(f"{h}.{evil}.{s}", lookup)


def test_wrong_typ_is_refused() -> None:
    token = sign_es256({"sub": "u1"}, KEY.private_key, KEY.kid, typ="JWT")
    with pytest.raises(JWSError, match="typ"):
        verify(token, lookup, expected_typ="at+jwt")
