"""A tiny software WebAuthn authenticator, enough to produce real registration and assertion
responses for py_webauthn (WebAuthn L2 §6.1 authenticator data, §6.5.4 "none" attestation,
§5.8.1 client data). ES256 (EC P-256) keys only; every output is the browser's JSON form."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import struct
from dataclasses import dataclass, field
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

UP, UV, BE, BS, AT = 0x01, 0x04, 0x08, 0x10, 0x40
AAGUID = bytes.fromhex("0123456789abcdef0123456789abcdef")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def from_b64url(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


@dataclass
class SoftAuthenticator:
    rp_id: str
    origin: str
    backup_eligible: bool = False
    counter_step: int = 1
    """0 imitates synced passkeys, which always report a zero counter."""
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    credential_id: bytes = field(default_factory=lambda: secrets.token_bytes(16))
    user_handle: bytes = b""
    sign_count: int = 0

    def cose_public_key(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        return cbor2.dumps(
            {
                1: 2,
                3: -7,
                -1: 1,
                -2: numbers.x.to_bytes(32, "big"),
                -3: numbers.y.to_bytes(32, "big"),
            }
        )

    def _flags(self, uv: bool, attested: bool) -> int:
        flags = UP | (UV if uv else 0)
        if self.backup_eligible:
            flags |= BE | BS
        return flags | (AT if attested else 0)

    def _client_data(self, kind: str, challenge: str, origin: str | None, **extra: Any) -> bytes:
        data = {"type": kind, "challenge": challenge, "origin": origin or self.origin, **extra}
        return json.dumps(data, separators=(",", ":")).encode()

    def register(
        self,
        options_json: str,
        *,
        uv: bool = True,
        origin: str | None = None,
        challenge: str | None = None,
    ) -> str:
        options = json.loads(options_json)
        self.user_handle = from_b64url(options["user"]["id"])
        client_data = self._client_data(
            "webauthn.create", challenge or options["challenge"], origin
        )
        auth_data = (
            hashlib.sha256(self.rp_id.encode()).digest()
            + bytes([self._flags(uv, attested=True)])
            + struct.pack(">I", self.sign_count)
            + AAGUID
            + struct.pack(">H", len(self.credential_id))
            + self.credential_id
            + self.cose_public_key()
        )
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        return json.dumps(
            {
                "id": b64url(self.credential_id),
                "rawId": b64url(self.credential_id),
                "type": "public-key",
                "authenticatorAttachment": "platform",
                "clientExtensionResults": {},
                "response": {
                    "clientDataJSON": b64url(client_data),
                    "attestationObject": b64url(attestation),
                    "transports": ["internal", "hybrid"],
                },
            }
        )

    def assertion(
        self,
        options_json: str,
        *,
        uv: bool = True,
        origin: str | None = None,
        challenge: str | None = None,
        rp_id: str | None = None,
        client_data_extra: dict[str, Any] | None = None,
        user_handle: bool = True,
    ) -> str:
        options = json.loads(options_json)
        self.sign_count += self.counter_step
        client_data = self._client_data(
            "webauthn.get",
            challenge or options["challenge"],
            origin,
            **(client_data_extra or {}),
        )
        auth_data = (
            hashlib.sha256((rp_id or self.rp_id).encode()).digest()
            + bytes([self._flags(uv, attested=False)])
            + struct.pack(">I", self.sign_count)
        )
        signature = self.key.sign(
            auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256())
        )
        return json.dumps(
            {
                "id": b64url(self.credential_id),
                "rawId": b64url(self.credential_id),
                "type": "public-key",
                "authenticatorAttachment": "platform",
                "clientExtensionResults": {},
                "response": {
                    "clientDataJSON": b64url(client_data),
                    "authenticatorData": b64url(auth_data),
                    "signature": b64url(signature),
                    "userHandle": b64url(self.user_handle) if user_handle else None,
                },
            }
        )
