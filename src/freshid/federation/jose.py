"""Verifying an upstream's signed JWT (RFC 7515 compact JWS) with a key from its JWKS (RFC 7517).

FreshID signs its own tokens with ES256 only (:mod:`freshid.tokens.jws`); upstream providers mostly
sign with RS256 (OIDC Core §15.1 makes it the one algorithm every provider supports), so this module
verifies the asymmetric algorithms of RFC 7518 §3 and RFC 8037 that identity providers use. The
rules are those of :mod:`freshid.tokens.jws` and RFC 8725: an explicit allow-list (never ``none``,
never an HMAC keyed by the client secret), no header that lets the token pick its own key (``jwk``,
``jku``, ``x5u``, ``x5c``) and no ``crit``; the key is found by ``kid`` in the JWKS we fetched, and
its ``kty``/``crv``/``use``/``alg`` must fit the algorithm.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from freshid.tokens.jws import JWSError, b64url_decode, peek_header

SUPPORTED_ALGS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"}
)
_FORBIDDEN_HEADERS = frozenset({"jwk", "jku", "x5u", "x5c", "crit"})
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "256": hashes.SHA256,
    "384": hashes.SHA384,
    "512": hashes.SHA512,
}
_CURVES: dict[str, tuple[str, ec.EllipticCurve, int]] = {
    "ES256": ("P-256", ec.SECP256R1(), 32),
    "ES384": ("P-384", ec.SECP384R1(), 48),
}


class UnknownKid(JWSError):
    """No key in the JWKS has the token's ``kid``: fetch the JWKS again (key rotation), once."""


def _int(jwk: Mapping[str, Any], name: str) -> int:
    value = jwk.get(name)
    if not isinstance(value, str):
        raise JWSError(f"JWK member {name} missing")
    return int.from_bytes(b64url_decode(value), "big")


def _usable(jwk: Mapping[str, Any], alg: str) -> bool:
    if jwk.get("use", "sig") != "sig":
        return False
    if "alg" in jwk and jwk["alg"] != alg:
        return False
    ops = jwk.get("key_ops")
    return not (isinstance(ops, list) and "verify" not in ops)


def _find(jwks: Mapping[str, Any], kid: str | None, alg: str) -> Mapping[str, Any]:
    keys = jwks.get("keys")
    if not isinstance(keys, list):
        raise JWSError("JWKS has no keys")
    kty = "RSA" if alg[:2] in {"RS", "PS"} else "EC" if alg.startswith("ES") else "OKP"
    candidates = [
        k
        for k in keys
        if isinstance(k, dict) and k.get("kty") == kty and _usable(k, alg) and k.get("kid") == kid
    ]
    if not candidates:
        # RFC 7517 §4.5: without a kid, a JWKS with a single fitting key names it unambiguously.
        fitting = [k for k in keys if isinstance(k, dict) and k.get("kty") == kty]
        if kid is None and len(fitting) == 1 and _usable(fitting[0], alg):
            return dict(fitting[0])
        raise UnknownKid("no key with this kid")
    return dict(candidates[0])


def _verify(alg: str, jwk: Mapping[str, Any], signing_input: bytes, sig: bytes) -> None:
    try:
        if alg[:2] in {"RS", "PS"}:
            key = rsa.RSAPublicNumbers(_int(jwk, "e"), _int(jwk, "n")).public_key()
            if key.key_size < 2048:
                raise JWSError("RSA key shorter than 2048 bits")  # RFC 7518 §3.3
            hash_alg = _HASHES[alg[2:]]()
            pad: padding.AsymmetricPadding = (
                padding.PKCS1v15()
                if alg.startswith("RS")
                else padding.PSS(padding.MGF1(hash_alg), hash_alg.digest_size)
            )
            key.verify(sig, signing_input, pad, hash_alg)
        elif alg in _CURVES:
            crv, curve, size = _CURVES[alg]
            if jwk.get("crv") != crv or len(sig) != 2 * size:
                raise JWSError("EC key or signature does not fit the algorithm")
            numbers = ec.EllipticCurvePublicNumbers(_int(jwk, "x"), _int(jwk, "y"), curve)
            ec_key = numbers.public_key()
            der = encode_dss_signature(
                int.from_bytes(sig[:size], "big"), int.from_bytes(sig[size:], "big")
            )
            ec_key.verify(der, signing_input, ec.ECDSA(_HASHES[alg[2:]]()))
        elif alg == "EdDSA":
            if jwk.get("crv") != "Ed25519":
                raise JWSError("only Ed25519 is supported for EdDSA")
            x = jwk.get("x")
            if not isinstance(x, str):
                raise JWSError("JWK member x missing")
            ed25519.Ed25519PublicKey.from_public_bytes(b64url_decode(x)).verify(sig, signing_input)
        else:  # pragma: no cover - guarded by the allow-list
            raise JWSError(f"algorithm {alg!r} is not supported")
    except InvalidSignature:
        raise JWSError("signature mismatch") from None
    except ValueError as exc:
        if isinstance(exc, JWSError):
            raise
        raise JWSError("unusable key") from None


def verify(token: str, jwks: Mapping[str, Any], allowed_algs: Sequence[str]) -> dict[str, Any]:
    """Verify the signature of ``token`` with a key of ``jwks``; returns the unvalidated claims.

    Raises :class:`UnknownKid` when no key has the token's ``kid`` (the caller may refresh the
    JWKS once), :class:`JWSError` for anything else.
    """
    header = peek_header(token)
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in SUPPORTED_ALGS or alg not in allowed_algs:
        raise JWSError(f"algorithm {alg!r} is not allowed")
    if _FORBIDDEN_HEADERS & header.keys():
        raise JWSError("forbidden header parameter")
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise JWSError("kid is not a string")
    jwk = _find(jwks, kid, alg)
    header_b64, payload_b64, sig_b64 = token.split(".")
    _verify(alg, jwk, f"{header_b64}.{payload_b64}".encode("ascii"), b64url_decode(sig_b64))
    try:
        payload = json.loads(b64url_decode(payload_b64))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise JWSError("payload is not JSON") from None
    if not isinstance(payload, dict):
        raise JWSError("payload is not a JSON object")
    return payload
