"""Forged JWTs: the classic attacks on JWT verification (RFC 8725 §2), built from a genuine token.

Each :class:`Forgery` is a token an attacker could make. Those marked ``needs_server_key`` are
signed with the provider's own key by the test (as if the key were right but the claims wrong),
to prove the *claim* checks refuse them, not only the signature check.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from freshid.tokens.jws import b64url_decode, b64url_encode
from freshid.tokens.keys import SigningKey, thumbprint

Signer = Callable[[bytes], bytes]


def segment(obj: Any) -> str:
    return b64url_encode(json.dumps(obj, separators=(",", ":")).encode())


def parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    header_b64, payload_b64, _ = token.split(".")
    return json.loads(b64url_decode(header_b64)), json.loads(b64url_decode(payload_b64))


def compact(header: dict[str, Any], claims: dict[str, Any], sign: Signer | None) -> str:
    signing_input = f"{segment(header)}.{segment(claims)}"
    signature = sign(signing_input.encode("ascii")) if sign else b""
    return f"{signing_input}.{b64url_encode(signature)}"


def ec_signer(key: ec.EllipticCurvePrivateKey, algorithm: hashes.HashAlgorithm) -> Signer:
    size = (key.curve.key_size + 7) // 8

    def sign(data: bytes) -> bytes:
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(algorithm)))
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")

    return sign


def hs256_signer(secret: bytes) -> Signer:
    return lambda data: hmac.new(secret, data, hashlib.sha256).digest()


def rs256_signer(key: rsa.RSAPrivateKey) -> Signer:
    return lambda data: key.sign(data, padding.PKCS1v15(), hashes.SHA256())


@dataclass(frozen=True)
class Forgery:
    name: str
    token: str


KID_INJECTIONS: tuple[Any, ...] = (
    "../../../../../../dev/null",
    "/etc/passwd",
    "..%2f..%2f..%2fetc%2fpasswd",
    "' OR '1'='1",
    "x'; DROP TABLE signing_keys; --",
    '" UNION SELECT private_pem FROM signing_keys --',
    "",
    "\u0000",
    "k" * 5000,
    123,
    None,
    ["kid"],
    {"$ne": None},
)


def forgeries(genuine: str, server_key: SigningKey) -> list[Forgery]:
    """Every forged variant of ``genuine`` (an ID or access token FreshID issued)."""
    header, claims = parts(genuine)
    h_b64, p_b64, sig_b64 = genuine.split(".")
    kid = header["kid"]
    attacker = ec.generate_private_key(ec.SECP256R1())
    attacker_kid = thumbprint(attacker.public_key())
    p384 = ec.generate_private_key(ec.SECP384R1())
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = server_key.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    public_jwk = json.dumps(server_key.public_jwk(), separators=(",", ":")).encode()
    es256 = ec_signer(attacker, hashes.SHA256())
    attacker_jwk = {**_ec_public_jwk(attacker.public_key()), "kid": attacker_kid}
    other_sub = {**claims, "sub": "someone-else"}

    out = [
        Forgery("alg none, no signature", compact({**header, "alg": "none"}, claims, None)),
        Forgery("alg None", compact({**header, "alg": "None"}, claims, None)),
        Forgery("alg NONE", compact({**header, "alg": "NONE"}, claims, None)),
        Forgery(
            "alg none, genuine signature kept",
            f"{segment({**header, 'alg': 'none'})}.{p_b64}.{sig_b64}",
        ),
        Forgery("alg a JSON array", compact({**header, "alg": ["ES256"]}, claims, es256)),
        Forgery("alg a JSON object", compact({**header, "alg": {"ES256": True}}, claims, es256)),
        Forgery("no alg", compact({k: v for k, v in header.items() if k != "alg"}, claims, es256)),
        Forgery(
            "HS256 keyed with the public key PEM",
            compact({**header, "alg": "HS256"}, claims, hs256_signer(public_pem)),
        ),
        Forgery(
            "HS256 keyed with the public JWK",
            compact({**header, "alg": "HS256"}, claims, hs256_signer(public_jwk)),
        ),
        Forgery(
            "RS256 by an attacker key, our kid",
            compact({**header, "alg": "RS256"}, claims, rs256_signer(rsa_key)),
        ),
        Forgery(
            "ES384 by an attacker key, our kid",
            compact({**header, "alg": "ES384"}, claims, ec_signer(p384, hashes.SHA384())),
        ),
        Forgery("ES256 by an attacker key, our kid", compact(header, claims, es256)),
        Forgery(
            "ES256 by an attacker key, its own kid",
            compact({**header, "kid": attacker_kid}, claims, es256),
        ),
        Forgery(
            "jwk header with the attacker's key",
            compact({**header, "kid": attacker_kid, "jwk": attacker_jwk}, claims, es256),
        ),
        Forgery("jwk header, our kid", compact({**header, "jwk": attacker_jwk}, claims, es256)),
        Forgery(
            "jku header to the attacker's JWKS",
            compact(
                {**header, "kid": attacker_kid, "jku": "http://127.0.0.1:9/jwks"}, claims, es256
            ),
        ),
        Forgery(
            "x5u header", compact({**header, "x5u": "http://127.0.0.1:9/cert.pem"}, claims, es256)
        ),
        Forgery("x5c header", compact({**header, "x5c": ["MIIB"]}, claims, es256)),
        Forgery("crit header", compact({**header, "crit": ["exp"], "exp": 1}, claims, es256)),
        Forgery("payload changed, genuine signature", f"{h_b64}.{segment(other_sub)}.{sig_b64}"),
        Forgery("signature stripped", f"{h_b64}.{p_b64}."),
        Forgery("signature truncated", f"{h_b64}.{p_b64}.{sig_b64[:40]}"),
        Forgery("four segments", f"{genuine}.{sig_b64}"),
        Forgery("JWE-shaped", f"{segment({'alg': 'dir', 'enc': 'A128GCM'})}..iv.ct.tag"),
        Forgery("not base64url", f"{h_b64}.{p_b64}.!!!!"),
        Forgery("header not JSON", f"{b64url_encode(b'not json')}.{p_b64}.{sig_b64}"),
    ]
    for injected in KID_INJECTIONS:
        out.append(
            Forgery(
                f"kid injection {injected!r:.40}",
                compact({**header, "kid": injected}, claims, es256),
            )
        )
    out.append(
        Forgery(
            "kid: ours plus a traversal",
            compact({**header, "kid": f"{kid}/../{kid}"}, claims, es256),
        )
    )
    return out


def server_signed(genuine: str, server_key: SigningKey, payload: Any = None, **changes: Any) -> str:
    """``genuine`` with its claims changed (or replaced by ``payload``), signed with the provider's
    own key: what the claim checks, not the signature check, must refuse."""
    header, claims = parts(genuine)
    claims.update(changes)
    signer = ec_signer(server_key.private_key, hashes.SHA256())
    return compact(header, claims if payload is None else payload, signer)


def claim_forgeries(genuine: str, server_key: SigningKey) -> list[Forgery]:
    """Tokens with our genuine signature whose claims must still be refused."""
    _, claims = parts(genuine)
    without_sub = {k: v for k, v in claims.items() if k != "sub"}
    return [
        Forgery("wrong issuer", server_signed(genuine, server_key, iss="https://evil.example")),
        Forgery(
            "issuer with a trailing slash",
            server_signed(genuine, server_key, iss=claims["iss"] + "/"),
        ),
        Forgery("no issuer", server_signed(genuine, server_key, iss=None)),
        Forgery("sub missing", server_signed(genuine, server_key, payload=without_sub)),
        Forgery("sub not a string", server_signed(genuine, server_key, sub=12345)),
        Forgery("exp not a number", server_signed(genuine, server_key, exp="never")),
        Forgery("payload a JSON array", server_signed(genuine, server_key, payload=[claims])),
        Forgery("payload a JSON string", server_signed(genuine, server_key, payload="x")),
    ]


def _ec_public_jwk(key: ec.EllipticCurvePublicKey) -> dict[str, str]:
    numbers = key.public_numbers()
    return {
        "kty": "EC",
        "crv": "P-256",
        "x": b64url_encode(numbers.x.to_bytes(32, "big")),
        "y": b64url_encode(numbers.y.to_bytes(32, "big")),
    }
