"""Benchmark 6: each authentication method's verify cost next to its raw primitive.

In-process, one call at a time, on the pure method cores (no HTTP, no SQL):

- password: ``PasswordMethod`` verification (argon2id with FreshID's defaults) against a bare
  argon2-cffi ``verify`` with the same parameters;
- TOTP: ``totp.verify`` (±1 step window, replay rule) against one raw HMAC-SHA1;
- emailed code: ``email_code.check`` against one raw SHA-256;
- recovery code: ``recovery_codes.match`` against 10 stored digests, against one raw SHA-256;
- passkey: ``passkey.verify_assertion`` (client data, authenticator data, flags, counter,
  signature) against a raw ECDSA P-256 verify of the same signed bytes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass

from argon2 import PasswordHasher, Type
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from tests.methods.soft_authenticator import SoftAuthenticator, from_b64url

from bench.plan import Plan
from bench.stats import best_of
from freshid.methods import email_code, passkey, recovery_codes, totp
from freshid.methods.password import PasswordMethod
from freshid.settings import load_settings

_MAX_OPS = 200_000
_ECDSA = ec.ECDSA(hashes.SHA256())


@dataclass(frozen=True)
class MethodCost:
    method: str
    freshid: float
    """Verifications per second through FreshID's method core."""
    raw: float
    raw_name: str


def run(plan: Plan) -> list[MethodCost]:
    now = int(time.time())
    rounds, seconds = plan.es256_rounds, plan.es256_round_seconds
    settings = load_settings(environ={})
    method = PasswordMethod.from_settings(settings, concurrency=1)
    hasher = PasswordHasher(
        time_cost=settings.argon2_time_cost,
        memory_cost=settings.argon2_memory_kib,
        parallelism=settings.argon2_parallelism,
        hash_len=32,
        salt_len=16,
        type=Type.ID,
    )
    stored_hash = method.hash_sync("correct horse battery staple")

    secret = totp.new_secret()
    code = totp.code_at(secret, totp.step_at(now))
    key = hashlib.sha1(secret.encode()).digest()  # any 20-byte key: the raw cost is one HMAC

    issued = email_code.new_challenge(now)
    record = email_code.StoredEmailCode(
        issued.challenge_id,
        issued.code_digest,
        issued.link_digest,
        issued.expires_at,
        1,
        None,
        False,
    )

    codes = recovery_codes.generate()
    digests = [recovery_codes.digest(c) for c in codes]

    rp_id, origin = "localhost", "http://localhost:8000"
    authenticator = SoftAuthenticator(rp_id, origin, counter_step=0)
    authenticator.register(
        passkey.registration_options(rp_id, "FreshID", b"user", "ada@example.com", "Ada", [])[0]
    )
    options, challenge = passkey.authentication_options(rp_id, [], require_uv=True)
    assertion = authenticator.assertion(options)
    stored = passkey.StoredPasskey(
        authenticator.credential_id, authenticator.cose_public_key(), 0, b"user", False
    )
    response = json.loads(assertion)["response"]
    signed = (
        from_b64url(response["authenticatorData"])
        + hashlib.sha256(from_b64url(response["clientDataJSON"])).digest()
    )
    signature = from_b64url(response["signature"])
    public_key = authenticator.key.public_key()

    fast = best_of(
        {
            "totp": lambda: totp.verify(secret, code, now, None),
            "totp_raw": lambda: hmac.new(key, b"\0" * 8, hashlib.sha1).digest(),
            "email": lambda: email_code.check(record, issued.code, now),
            "email_raw": lambda: hashlib.sha256(b"challenge:123456").digest(),
            "recovery": lambda: recovery_codes.match(codes[-1], digests),
            "recovery_raw": lambda: hashlib.sha256(b"ABCDEFGHIJKLMNOP").digest(),
            "passkey": lambda: passkey.verify_assertion(
                assertion, challenge, origin, rp_id, stored, True, now
            ),
            "passkey_raw": lambda: public_key.verify(signature, signed, _ECDSA),
        },
        rounds,
        seconds,
        _MAX_OPS,
    )
    slow = best_of(
        {
            "password": lambda: method._verify_sync(stored_hash, "correct horse battery staple"),
            "password_raw": lambda: hasher.verify(stored_hash, "correct horse battery staple"),
        },
        rounds,
        max(seconds, 1.0),
        1_000,
    )
    rates = {**fast, **slow}
    return [
        MethodCost(
            "password (argon2id m=19456 KiB, t=2, p=1)",
            rates["password"],
            rates["password_raw"],
            "argon2-cffi verify, same hash",
        ),
        MethodCost(
            "TOTP (±1 step, replay rule)", rates["totp"], rates["totp_raw"], "one HMAC-SHA1"
        ),
        MethodCost("emailed code", rates["email"], rates["email_raw"], "one SHA-256"),
        MethodCost(
            "recovery code (10 stored)", rates["recovery"], rates["recovery_raw"], "one SHA-256"
        ),
        MethodCost(
            "passkey assertion (UV required)",
            rates["passkey"],
            rates["passkey_raw"],
            "ECDSA P-256 verify of the same signed bytes",
        ),
    ]
