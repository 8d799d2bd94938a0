"""Minting ID tokens (OIDC Core §2) and JWT access tokens (RFC 9068 §2).

Both state the proof behind the grant — ``auth_time``, ``acr``, ``amr``, ``sid`` — which never
changes for the grant's life, so a token minted on refresh says exactly what the first one said
about how fresh the proof is (OIDC Core §12.2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from freshid.storage.grants import Grant
from freshid.tokens.jws import sign_es256
from freshid.tokens.keys import SigningKey
from freshid.tokens.secrets import new_token


@dataclass(frozen=True)
class Minted:
    token: str
    jti: str
    expires_at: int


def _proof(grant: Grant) -> dict[str, Any]:
    return {
        "sub": grant.user_id,
        "auth_time": grant.auth_time,
        "acr": grant.acr,
        "amr": list(grant.amr),
        "sid": grant.session_id,
    }


def id_token(
    grant: Grant,
    *,
    issuer: str,
    key: SigningKey,
    now: int,
    ttl: int,
    nonce: str | None,
    email: str | None,
) -> str:
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": grant.client_id,
        "azp": grant.client_id,
        "iat": now,
        "exp": now + ttl,
        **_proof(grant),
    }
    if nonce is not None:
        claims["nonce"] = nonce
    if email is not None and "email" in grant.scope.split():
        claims["email"] = email
        claims["email_verified"] = False
    return sign_es256(claims, key.private_key, key.kid, typ="JWT")


def access_token(
    grant: Grant, *, issuer: str, audience: str, key: SigningKey, now: int, ttl: int, scope: str
) -> Minted:
    jti = new_token(16)
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": audience,
        "client_id": grant.client_id,
        "iat": now,
        "exp": now + ttl,
        "jti": jti,
        "scope": scope,
        **_proof(grant),
    }
    details = grant.authorization_details()
    if details is not None:
        claims["authorization_details"] = details
    return Minted(sign_es256(claims, key.private_key, key.kid, typ="at+jwt"), jti, now + ttl)
