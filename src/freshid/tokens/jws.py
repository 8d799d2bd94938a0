"""Compact JWS (RFC 7515 §7.1) for ES256 (RFC 7518 §3.4), and JWT claims (RFC 7519).

Verification takes an explicit algorithm allow-list and refuses every header that would let a token
choose its own key (``jwk``, ``jku``, ``x5u``, ``x5c``) or demand extensions (``crit``): the key is
looked up by ``kid`` in keys we hold, never taken from the token (RFC 8725 §3.1, §3.10).
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

_ES256 = ec.ECDSA(hashes.SHA256())
_FORBIDDEN_HEADERS = frozenset({"jwk", "jku", "x5u", "x5c", "crit"})
_MAX_TOKEN_LENGTH = 16_384


class JWSError(ValueError):
    """The token is malformed, uses a forbidden algorithm or header, or its signature is wrong."""


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    if any(c in text for c in "=+/ \n"):
        raise JWSError("invalid base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise JWSError("invalid base64url") from None


def _json_segment(obj: Mapping[str, Any]) -> str:
    # Sorted, compact UTF-8 (RFC 7519 §7.1 wants UTF-8; any member order is valid JSON, sorted
    # keeps tokens reproducible for tests).
    return b64url_encode(orjson.dumps(obj, option=orjson.OPT_SORT_KEYS))


@functools.lru_cache(maxsize=64)
def _header_segment(kid: str, typ: str) -> str:
    """A signing key's protected header is the same for every token of a type."""
    return _json_segment({"alg": "ES256", "kid": kid, "typ": typ})


def sign_es256(
    claims: Mapping[str, Any], key: ec.EllipticCurvePrivateKey, kid: str, typ: str = "JWT"
) -> str:
    signing_input = f"{_header_segment(kid, typ)}.{_json_segment(claims)}"
    der = key.sign(signing_input.encode("ascii"), _ES256)
    r, s = decode_dss_signature(der)
    return f"{signing_input}.{b64url_encode(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def peek_header(token: str) -> dict[str, Any]:
    """The unverified protected header; for choosing a key, never for trusting anything."""
    if not isinstance(token, str) or len(token) > _MAX_TOKEN_LENGTH or token.count(".") != 2:
        raise JWSError("not a compact JWS")
    return _load_json(token.split(".", 1)[0], "header")


def _load_json(segment: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(b64url_decode(segment))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise JWSError(f"{what} is not JSON") from None
    if not isinstance(value, dict):
        raise JWSError(f"{what} is not a JSON object")
    return value


KeyLookup = Callable[[str], ec.EllipticCurvePublicKey | None]


def verify(
    token: str,
    lookup: KeyLookup,
    *,
    allowed_algs: frozenset[str] = frozenset({"ES256"}),
    expected_typ: str | None = None,
) -> dict[str, Any]:
    """Verify signature and header rules; returns the payload. Claims are the caller's job."""
    header = peek_header(token)
    alg = header.get("alg")
    # isinstance first: a JSON array or object as "alg" is unhashable in a set lookup.
    if not isinstance(alg, str) or alg not in allowed_algs or alg != "ES256":
        raise JWSError(f"algorithm {alg!r} is not allowed")
    if _FORBIDDEN_HEADERS & header.keys():
        raise JWSError("forbidden header parameter")
    if expected_typ is not None and str(header.get("typ", "")).lower() not in {
        expected_typ.lower(),
        f"application/{expected_typ.lower()}",
    }:
        raise JWSError(f"typ must be {expected_typ}")
    kid = header.get("kid")
    if not isinstance(kid, str):
        raise JWSError("missing kid")
    public_key = lookup(kid)
    if public_key is None:
        raise JWSError("unknown kid")
    header_b64, payload_b64, sig_b64 = token.split(".")
    sig = b64url_decode(sig_b64)
    if len(sig) != 64:
        raise JWSError("bad signature length")
    der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    try:
        public_key.verify(der, f"{header_b64}.{payload_b64}".encode("ascii"), _ES256)
    except InvalidSignature:
        raise JWSError("signature mismatch") from None
    return _load_json(payload_b64, "payload")
