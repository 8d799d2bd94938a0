"""Single-use recovery codes, the fallback when the authenticator app is lost.

- NIST SP 800-63B §5.1.2 (look-up secrets): at least 64 bits from an approved RBG when stored as
  a plain hash; each code is single use. FreshID uses 80 bits from :mod:`secrets`, written as
  16 RFC 4648 §6 base32 characters in four groups (``K7QH-2MXP-R4TA-9...``) so they can be typed.
- OWASP ASVS 5.0 V6.6 (out-of-band and look-up secrets): stored only as a digest, used once.
- RFC 8176 §2: ``amr`` is ``otp``: a code valid for a single use is a one-time password. It is
  one possession factor (the paper or file the codes were saved to).

Storage keeps only :func:`digest`: SHA-256 of the normalised code, base64url. No salt or slow hash
is needed: with 80 bits of entropy an offline search of the digest space (2^80 SHA-256
evaluations per code) is infeasible, unlike for a password chosen by a person. The digest is
also what the caller looks codes up by; it marks the matched one used with a compare-and-set
(``UPDATE ... SET used_at = :now WHERE digest = :d AND used_at IS NULL``, one row) in the same
transaction that accepts the sign-in, so two parallel submissions cannot both succeed. Attempts
are capped by the caller like TOTP (:data:`freshid.methods.totp.MAX_ATTEMPTS`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterable

from freshid.freshness.levels import ACR_1FA
from freshid.methods.base import CompletedMethod, Factor, MethodFailed, MethodInfo

INFO = MethodInfo("recovery_code", "Recovery code", frozenset({Factor.POSSESSION}), rank=5)
AMR = ("otp",)

CODE_BYTES = 10
"""80 bits: exactly 16 base32 characters, no padding."""
DEFAULT_COUNT = 10
_GROUP = 4
_LENGTH = CODE_BYTES * 8 // 5
_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
# The base32 alphabet has no 0, 1 or 8, so a reader who typed the look-alike digit meant the letter.
_LOOKALIKES = str.maketrans({"0": "O", "1": "I", "8": "B"})


def generate(count: int = DEFAULT_COUNT) -> list[str]:
    """``count`` fresh codes for the user to save; show them once, store only their digests."""
    if count < 1:
        raise ValueError("count must be at least 1")
    codes = []
    for _ in range(count):
        raw = base64.b32encode(secrets.token_bytes(CODE_BYTES)).decode("ascii")
        codes.append("-".join(raw[i : i + _GROUP] for i in range(0, _LENGTH, _GROUP)))
    return codes


def normalise(code: str) -> str:
    """Upper case, without spaces or dashes; look-alike digits read as the letters they resemble."""
    cleaned = "".join(code.split()).replace("-", "").upper()
    return cleaned.translate(_LOOKALIKES)


def digest(code: str) -> str:
    """SHA-256 of the normalised code, base64url without padding: what storage keeps."""
    raw = hashlib.sha256(normalise(code).encode("utf-8")).digest()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def match(code: str, unused_digests: Iterable[str]) -> str:
    """The digest among ``unused_digests`` that ``code`` matches; the caller then marks it used.

    Raises MethodFailed("invalid_code") when the code is malformed or matches none.
    """
    normalised = normalise(code)
    if len(normalised) != _LENGTH or not set(normalised) <= _ALPHABET:
        raise MethodFailed("invalid_code")
    candidate = digest(normalised)
    found: str | None = None
    # Compare against every stored digest, no early exit: timing says nothing about which matched.
    for stored in unused_digests:
        if hmac.compare_digest(stored.encode("ascii"), candidate.encode("ascii")):
            found = stored
    if found is None:
        raise MethodFailed("invalid_code")
    return found


def completed(now: int) -> CompletedMethod:
    return CompletedMethod(
        method=INFO.name,
        amr=AMR,
        acr=ACR_1FA,
        completed_at=now,
        factors=INFO.factors,
        phishing_resistant=INFO.phishing_resistant,
    )
