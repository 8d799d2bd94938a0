"""Benchmark 1: FreshID's ES256 signing and verification against raw ``cryptography`` ECDSA.

Both sides use the same P-256 key and the same message: the JWS signing input of a real RFC 9068
access token as FreshID mints it (the same claims and sizes as the token endpoint produces). The
raw side is the floor: ``EllipticCurvePrivateKey.sign`` / ``EllipticCurvePublicKey.verify`` with
ECDSA over SHA-256 on those bytes, nothing else. FreshID's side adds JSON encoding, base64url,
DER/raw signature conversion and the header checks of ``freshid.tokens.jws.verify``.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from bench.plan import Plan
from bench.stats import best_of
from freshid.freshness.levels import ACR_1FA
from freshid.protocol import minting
from freshid.storage.grants import Grant
from freshid.tokens import jws
from freshid.tokens import keys as keymod
from freshid.tokens.secrets import new_token

_ECDSA = ec.ECDSA(hashes.SHA256())
_MAX_OPS = 1_000_000


@dataclass(frozen=True)
class ES256Result:
    message_bytes: int
    token_bytes: int
    sign: float
    raw_sign: float
    verify: float
    raw_verify: float


def sample_access_token(key: keymod.SigningKey, now: int) -> str:
    """An access token exactly as the refresh grant mints one (claims, sizes, header)."""
    grant = Grant(
        id=new_token(16),
        client_id=new_token(16),
        user_id=new_token(16),
        session_id=new_token(16),
        scope="openid email",
        auth_time=now,
        acr=ACR_1FA,
        amr=("pwd",),
        offline=False,
        created_at=now,
        expires_at=now + 30 * 24 * 3600,
        revoked_at=None,
    )
    minted = minting.access_token(
        grant,
        issuer="http://127.0.0.1:8000",
        audience="http://127.0.0.1:8000",
        key=key,
        now=now,
        ttl=600,
        scope=grant.scope,
    )
    return minted.token


def run(plan: Plan, now: int) -> ES256Result:
    key = keymod.generate(now)
    token = sample_access_token(key, now)
    header_b64, payload_b64, sig_b64 = token.split(".")
    message = f"{header_b64}.{payload_b64}".encode("ascii")
    claims = jws.verify(token, {key.kid: key.public_key}.get)
    sig = jws.b64url_decode(sig_b64)
    der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    private_key, public_key = key.private_key, key.public_key
    lookup = {key.kid: public_key}.get

    def raw_sign() -> object:
        return private_key.sign(message, _ECDSA)

    def freshid_sign() -> object:
        return jws.sign_es256(claims, private_key, key.kid, typ="at+jwt")

    def raw_verify() -> object:
        public_key.verify(der, message, _ECDSA)
        return None

    def freshid_verify() -> object:
        return jws.verify(token, lookup)

    rates = best_of(
        {
            "raw_sign": raw_sign,
            "sign": freshid_sign,
            "raw_verify": raw_verify,
            "verify": freshid_verify,
        },
        plan.es256_rounds,
        plan.es256_round_seconds,
        _MAX_OPS,
    )
    return ES256Result(
        message_bytes=len(message),
        token_bytes=len(token),
        sign=rates["sign"],
        raw_sign=rates["raw_sign"],
        verify=rates["verify"],
        raw_verify=rates["raw_verify"],
    )
