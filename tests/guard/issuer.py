"""A fake issuer for unit tests: an ES256 key, a JWKS and discovery served by an httpx
MockTransport, and a token signer that lets tests forge any header or claim."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from typing import Any

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from freshid_guard import ActionPolicy, Guard, load_policies

ISSUER = "https://id.example.test"
NOW = 1_800_000_000

CATALOG = """
[actions."keys.reveal"]
label = "reveal an API key"
max_age = 600

[actions."billing.update"]
label = "change billing details"
max_age = 300
min_acr = "urn:freshid:acr:1fa"

[actions."account.delete"]
label = "delete your account"
max_age = 120
amr = ["hwk", "otp"]
bind = true

[actions."project.transfer"]
label = "transfer a project"
max_age = 300
bind = true
"""


def policies() -> dict[str, ActionPolicy]:
    return load_policies(CATALOG)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64json(obj: Any) -> str:
    return b64(json.dumps(obj).encode())


class FakeIssuer:
    def __init__(self, issuer: str = ISSUER, kid: str = "k1") -> None:
        self.issuer = issuer
        self.kid = kid
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.extra_keys: list[dict[str, Any]] = []
        self.requests: list[str] = []
        self.fail = False

    # --- keys ---

    def public_jwk(
        self, key: ec.EllipticCurvePrivateKey | None = None, kid: str | None = None
    ) -> dict[str, str]:
        numbers = (key or self.key).public_key().public_numbers()
        return {
            "kty": "EC",
            "crv": "P-256",
            "x": b64(numbers.x.to_bytes(32, "big")),
            "y": b64(numbers.y.to_bytes(32, "big")),
            "kid": kid or self.kid,
            "alg": "ES256",
            "use": "sig",
        }

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.public_jwk(), *self.extra_keys]}

    def public_pem(self) -> bytes:
        return self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def rotate(self, kid: str) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.kid = kid

    # --- HTTP ---

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request.url.path)
        if self.fail:
            return httpx.Response(500)
        if request.url.path == "/.well-known/openid-configuration":
            return httpx.Response(
                200,
                json={
                    "issuer": self.issuer,
                    "jwks_uri": f"{self.issuer}/jwks",
                    "authorization_endpoint": f"{self.issuer}/authorize",
                },
            )
        if request.url.path == "/jwks":
            return httpx.Response(200, json=self.jwks())
        return httpx.Response(404)

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self.handler))

    def async_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self.handler))

    def guard(self, clock: Clock | None = None, **options: Any) -> Guard:
        clock = clock or Clock()
        return Guard(
            self.issuer,
            options.pop("policies", None) or policies(),
            http_client=self.client(),
            async_http_client=self.async_client(),
            clock=clock,
            **options,
        )

    # --- tokens ---

    def claims(self, now: int = NOW, **overrides: Any) -> dict[str, Any]:
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.issuer,
            "sub": "user-1",
            "client_id": "rp-1",
            "iat": now,
            "exp": now + 600,
            "jti": secrets.token_urlsafe(12),
            "scope": "openid email",
            "auth_time": now - 60,
            "acr": "urn:freshid:acr:1fa",
            "amr": ["pwd"],
            "sid": "session-1",
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not REMOVE}

    def header(self, **overrides: Any) -> dict[str, Any]:
        header: dict[str, Any] = {"alg": "ES256", "kid": self.kid, "typ": "at+jwt"}
        header.update(overrides)
        return {k: v for k, v in header.items() if v is not REMOVE}

    def sign(
        self,
        claims: Mapping[str, Any] | None = None,
        header: Mapping[str, Any] | None = None,
        key: ec.EllipticCurvePrivateKey | None = None,
    ) -> str:
        signing_input = f"{b64json(header or self.header())}.{b64json(claims or self.claims())}"
        der = (key or self.key).sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return f"{signing_input}.{b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    def token(self, now: int = NOW, **claims: Any) -> str:
        return self.sign(self.claims(now, **claims))

    def sign_hs256(self, claims: Mapping[str, Any], secret: bytes) -> str:
        signing_input = f"{b64json(self.header(alg='HS256'))}.{b64json(claims)}"
        mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{b64(mac)}"


class _Remove:
    def __repr__(self) -> str:
        return "REMOVE"


REMOVE: Any = _Remove()


class Clock:
    """A settable clock for the guard."""

    def __init__(self, now: int = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return float(self.now)
