"""Time-based one-time passwords from an authenticator app (RFC 6238 on top of RFC 4226).

- RFC 4226 §5.3: HOTP = Truncate(HMAC-SHA-1(K, C)) mod 10^Digit, dynamic truncation.
- RFC 6238 §4: TOTP is HOTP with ``C = floor((now - T0) / X)``, ``T0 = 0``, ``X = 30`` s.
- RFC 6238 §5.2: accept at most one step of clock drift either way (the current step ±1).
- RFC 4226 §7.2 / RFC 6238 §5.2 and OWASP ASVS 5.0 V6.5: a code is single use. The caller stores
  the last matched step per enrolment and passes it back as ``last_used_step``; any step at or
  below it is refused, so neither the same code nor a neighbouring, older one can be replayed.
- Key URI Format (google-authenticator wiki, "Key-Uri-Format"): the ``otpauth://totp/`` URI an
  app scans from the enrolment QR code.
- RFC 8176 §2: ``amr`` is ``otp``; an authenticator app is one possession factor (NIST SP 800-63B
  §5.1.4.1 single-factor OTP device).

Attempt caps (ASVS V6.3 / RFC 4226 §7.3 throttling) are enforced by the caller's storage, which
counts failed attempts per enrolment atomically: at most :data:`MAX_ATTEMPTS` in any
:data:`ATTEMPT_WINDOW` seconds, checked *before* :func:`verify` is called. With 3 valid codes per
attempt out of 10^6, that bounds an online guesser to ~1.5e-5 per window.

Everything here is pure: no clock (``now`` is an argument), no HTTP, no SQL.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import io
import secrets
import struct
from urllib.parse import quote, urlencode

import segno

from freshid.freshness.levels import ACR_1FA
from freshid.methods.base import CompletedMethod, Factor, MethodFailed, MethodInfo

INFO = MethodInfo("totp", "Authenticator app", frozenset({Factor.POSSESSION}), rank=30)
AMR = ("otp",)

PERIOD = 30
"""RFC 6238 §5.2 recommends 30 s; every common authenticator app assumes it."""
DIGITS = 6
DRIFT_STEPS = 1
SECRET_BYTES = 20
"""160 bits: RFC 4226 §4 R6 requires at least 128 bits and recommends 160 (the SHA-1 block)."""

MAX_ATTEMPTS = 5
ATTEMPT_WINDOW = 300


def new_secret() -> str:
    """A fresh 160-bit shared secret, base32 without padding (what authenticator apps expect)."""
    return base64.b32encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii").rstrip("=")


def _key(secret: str) -> bytes:
    # Accept the forms a human might copy: lower case, spaces, missing padding.
    cleaned = secret.replace(" ", "").upper()
    cleaned += "=" * (-len(cleaned) % 8)
    try:
        key = base64.b32decode(cleaned)
    except (binascii.Error, ValueError) as exc:
        # A malformed stored secret is a server-side fault, not a wrong code: do not turn it
        # into a MethodFailed that would be blamed on the user.
        raise ValueError("TOTP secret is not valid base32") from exc
    if not key:
        raise ValueError("TOTP secret is empty")
    return key


def _hotp(key: bytes, counter: int, digits: int) -> str:
    """RFC 4226 §5.3, with SHA-1 (the only algorithm authenticator apps reliably support)."""
    mac = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    binary = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(binary % 10**digits).zfill(digits)


def step_at(now: int) -> int:
    """RFC 6238 §4.2: the time step containing ``now`` (epoch seconds, T0 = 0)."""
    return now // PERIOD


def code_at(secret: str, step: int, *, digits: int = DIGITS) -> str:
    """The code for one time step. ``digits`` exists so RFC 6238 Appendix B (8 digits) can be
    checked; FreshID enrols and verifies 6-digit codes."""
    if step < 0:
        raise ValueError("time step must not be negative")
    return _hotp(_key(secret), step, digits)


def provisioning_uri(secret: str, account_name: str, issuer_name: str) -> str:
    """The ``otpauth://totp/ISSUER:ACCOUNT?secret=...&issuer=...`` URI for the enrolment QR code.

    Label parts are percent-encoded with ``quote(safe="")`` so a ``:`` or ``/`` inside the issuer or
    account cannot shift the label, and spaces become ``%20`` (some apps show a literal ``+``).
    The issuer is repeated as a parameter, as the Key URI Format recommends.
    """
    _key(secret)  # refuse to encode a secret no app could use
    label = f"{quote(issuer_name, safe='')}:{quote(account_name, safe='')}"
    params = {
        "secret": secret,
        "issuer": issuer_name,
        "algorithm": "SHA1",
        "digits": str(DIGITS),
        "period": str(PERIOD),
    }
    return f"otpauth://totp/{label}?{urlencode(params, quote_via=quote)}"


def qr_svg_data_uri(uri: str) -> str:
    """The QR code of ``uri`` as ``data:image/svg+xml;base64,...`` for an ``<img src>``.

    A data URI keeps the secret out of any URL the server would log and works under a CSP of
    ``img-src 'self' data:``. It embeds the secret: serve the page with ``Cache-Control: no-store``.
    Dark modules on an opaque white background so the code scans in dark-mode themes too.
    """
    qr = segno.make(uri, error="m", micro=False)
    buffer = io.BytesIO()
    qr.save(
        buffer,
        kind="svg",
        scale=4,
        border=4,
        dark="#000",
        light="#fff",
        xmldecl=False,
        title="QR code for your authenticator app",
    )
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _normalise_code(code: str) -> str:
    cleaned = code.replace(" ", "")
    # isascii() first: str.isdigit() also accepts non-ASCII digits such as "²" or "٣".
    if len(cleaned) != DIGITS or not cleaned.isascii() or not cleaned.isdigit():
        raise MethodFailed("invalid_code")
    return cleaned


def verify(secret: str, code: str, now: int, last_used_step: int | None) -> int:
    """Check ``code`` against the steps around ``now``; return the matched step.

    The caller stores the returned step as the new ``last_used_step`` in the same transaction that
    accepts the sign-in, with a compare-and-set (``WHERE last_used_step IS NULL OR < :step``) so two
    parallel submissions of one code cannot both succeed.

    Raises MethodFailed: ``invalid_code`` (malformed or wrong) or ``replayed_code`` (the code is
    right but its step was already used, or is older than one that was).
    """
    submitted = _normalise_code(code).encode("ascii")
    key = _key(secret)
    current = step_at(now)
    matched: list[int] = []
    # Compare against every candidate with no early exit, so timing does not say which step (if
    # any) matched.
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if step < 0:
            continue
        if hmac.compare_digest(_hotp(key, step, DIGITS).encode("ascii"), submitted):
            matched.append(step)
    if not matched:
        raise MethodFailed("invalid_code")
    # Two candidates can share a code (1e-6 chance); prefer a step that has not been used yet.
    fresh = [step for step in matched if last_used_step is None or step > last_used_step]
    if not fresh:
        raise MethodFailed("replayed_code")
    return max(fresh)


def completed(now: int) -> CompletedMethod:
    return CompletedMethod(
        method=INFO.name,
        amr=AMR,
        acr=ACR_1FA,
        completed_at=now,
        factors=INFO.factors,
        phishing_resistant=INFO.phishing_resistant,
    )
