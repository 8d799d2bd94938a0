"""Signing keys and their rotation; the JWKS document (RFC 7517 §5).

A key's ``kid`` is its RFC 7638 thumbprint. Rotation retires the active key rather than deleting
it: a retired public key stays published until every token it signed has expired (the longest
token lifetime plus a grace period), so relying parties never meet a valid token they cannot check.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from freshid.tokens.jws import b64url_encode


@dataclass(frozen=True)
class SigningKey:
    kid: str
    alg: str
    private_key: ec.EllipticCurvePrivateKey
    created_at: int
    retired_at: int | None = None

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self.private_key.public_key()

    def public_jwk(self) -> dict[str, str]:
        return {**_ec_jwk(self.public_key), "kid": self.kid, "alg": self.alg, "use": "sig"}

    def private_pem(self) -> str:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode("ascii")

    def published_until(self, longest_token_ttl: int, grace: int) -> int | None:
        if self.retired_at is None:
            return None
        return self.retired_at + longest_token_ttl + grace


def _ec_jwk(public_key: ec.EllipticCurvePublicKey) -> dict[str, str]:
    numbers = public_key.public_numbers()
    return {
        "kty": "EC",
        "crv": "P-256",
        "x": b64url_encode(numbers.x.to_bytes(32, "big")),
        "y": b64url_encode(numbers.y.to_bytes(32, "big")),
    }


def thumbprint(public_key: ec.EllipticCurvePublicKey) -> str:
    """RFC 7638 §3: SHA-256 over the required members in lexicographic order."""
    canonical = json.dumps(_ec_jwk(public_key), separators=(",", ":"), sort_keys=True)
    return b64url_encode(hashlib.sha256(canonical.encode("ascii")).digest())


def generate(now: int, alg: str = "ES256") -> SigningKey:
    private_key = ec.generate_private_key(ec.SECP256R1())
    return SigningKey(thumbprint(private_key.public_key()), alg, private_key, now)


def load(kid: str, alg: str, pem: str, created_at: int, retired_at: int | None) -> SigningKey:
    private_key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
    if not isinstance(private_key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"key {kid} is not an EC key")
    return SigningKey(kid, alg, private_key, created_at, retired_at)


class KeyRing:
    """The keys in force at one moment: one active signer and every key still published."""

    def __init__(
        self, keys: list[SigningKey], now: int, longest_token_ttl: int, grace: int
    ) -> None:
        live = [k for k in keys if k.retired_at is None]
        if not live:
            raise LookupError("no active signing key")
        self.active = max(live, key=lambda k: (k.created_at, k.kid))
        self.published = [
            k
            for k in keys
            if k.retired_at is None or (k.published_until(longest_token_ttl, grace) or 0) > now
        ]
        self._by_kid = {k.kid: k.public_key for k in self.published}
        self.jwks = {"keys": [k.public_jwk() for k in self.published]}

    def public_key(self, kid: str) -> ec.EllipticCurvePublicKey | None:
        return self._by_kid.get(kid)
