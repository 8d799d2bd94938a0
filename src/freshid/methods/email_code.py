"""A one-time code and link sent by email ("magic auth").

- NIST SP 800-63B §5.1.3 (out-of-band) and OWASP ASVS 5.0 V6.6: the secret is random (a 6-digit
  code from :func:`secrets.randbelow`, and a 256-bit link token), single use, short lived
  (:data:`CODE_TTL` = 10 minutes), and tried at most :data:`MAX_ATTEMPTS` times.
- Bound to the flow that asked for it: the code's digest includes the challenge id, so the same
  six digits issued to another flow do not match, and a code is only ever checked against the
  record of the flow that submits it. A new request for the same flow marks the previous record
  ``superseded``.
- The link only opens a confirm page; the sign-in happens on the POST from that page, so a mail
  scanner that follows links (a GET) consumes nothing.
- ``amr`` is ``email``. RFC 8176 registers no value for an emailed code; FreshID uses its own so
  that a policy asking for ``otp`` (an authenticator app or a recovery code) is not satisfied by
  an email, which proves control of a mailbox rather than of an enrolled device. It is one
  possession factor.

Storage keeps only digests: ``code_digest = SHA-256(challenge_id ":" code)`` and
``link_digest = SHA-256(link_token)`` (base64url). A leaked database reveals no link token, and a
6-digit code only for the 10 minutes it lives.

Concurrency contract for the caller (OWASP ASVS V6.3 / V2.4): **before** calling :func:`check`,
increment ``attempts`` atomically in storage (``UPDATE ... SET attempts = attempts + 1 WHERE id =
:id RETURNING ...``) and pass the updated record, like a reservation; this bounds the number of
comparisons even under parallel submissions. After a success, mark the record used with a
compare-and-set (``SET used_at = :now WHERE id = :id AND used_at IS NULL``) in the transaction
that accepts the sign-in, so that only one of two parallel correct submissions wins.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import secrets
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from urllib.parse import urlsplit

from freshid.freshness.levels import ACR_1FA
from freshid.methods.base import CompletedMethod, Factor, MethodFailed, MethodInfo

# Below the password (10): a code takes a trip to the inbox, so it is the fallback, not the default.
INFO = MethodInfo("email_code", "Code by email", frozenset({Factor.POSSESSION}), rank=8)
AMR = ("email",)

CODE_TTL = 600
MAX_ATTEMPTS = 5
CODE_DIGITS = 6
LINK_TOKEN_BYTES = 32


@dataclass(frozen=True)
class IssuedCode:
    """A new challenge. ``code`` and ``link_token`` go into the email only; store the rest."""

    challenge_id: str
    code: str
    link_token: str
    code_digest: str
    link_digest: str
    expires_at: int

    def __repr__(self) -> str:
        # Never let a log line or traceback print the secrets.
        return f"IssuedCode(challenge_id={self.challenge_id!r}, expires_at={self.expires_at})"


@dataclass(frozen=True)
class StoredEmailCode:
    id: str
    code_digest: str
    link_digest: str
    expires_at: int
    attempts: int
    """Already including the attempt being checked (see the module docstring)."""
    used_at: int | None
    superseded: bool


def _sha256(value: str) -> str:
    raw = hashlib.sha256(value.encode("utf-8")).digest()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def code_digest(challenge_id: str, code: str) -> str:
    return _sha256(f"{challenge_id}:{code}")


def link_digest(link_token: str) -> str:
    return _sha256(link_token)


def new_challenge(now: int) -> IssuedCode:
    challenge_id = secrets.token_urlsafe(16)
    # randbelow is uniform over 0..999999; zero-padding keeps every code exactly 6 digits.
    code = str(secrets.randbelow(10**CODE_DIGITS)).zfill(CODE_DIGITS)
    link_token = secrets.token_urlsafe(LINK_TOKEN_BYTES)
    return IssuedCode(
        challenge_id=challenge_id,
        code=code,
        link_token=link_token,
        code_digest=code_digest(challenge_id, code),
        link_digest=link_digest(link_token),
        expires_at=now + CODE_TTL,
    )


def _normalise_code(code: str) -> str | None:
    cleaned = code.replace(" ", "")
    if len(cleaned) != CODE_DIGITS or not cleaned.isascii() or not cleaned.isdigit():
        return None
    return cleaned


def check(
    record: StoredEmailCode,
    submitted_code: str | None,
    now: int,
    *,
    link_token: str | None = None,
) -> CompletedMethod:
    """Accept the code typed by the user, or the link token posted from the confirm page.

    Raises MethodFailed with ``used``, ``superseded``, ``expired``, ``too_many_attempts`` or
    ``invalid_code``. State is checked before the secret, so a correct code for a dead record
    still fails, and the attempt cap holds even for the right code.
    """
    if record.used_at is not None:
        raise MethodFailed("used")
    if record.superseded:
        raise MethodFailed("superseded")
    if now >= record.expires_at:
        raise MethodFailed("expired")
    if record.attempts > MAX_ATTEMPTS:
        raise MethodFailed("too_many_attempts")
    if link_token is not None:
        ok = hmac.compare_digest(
            link_digest(link_token).encode("ascii"), record.link_digest.encode("ascii")
        )
    elif submitted_code is not None and (code := _normalise_code(submitted_code)) is not None:
        ok = hmac.compare_digest(
            code_digest(record.id, code).encode("ascii"), record.code_digest.encode("ascii")
        )
    else:
        ok = False
    if not ok:
        raise MethodFailed("invalid_code")
    return completed(now)


def completed(now: int) -> CompletedMethod:
    return CompletedMethod(
        method=INFO.name,
        amr=AMR,
        acr=ACR_1FA,
        completed_at=now,
        factors=INFO.factors,
        phishing_resistant=INFO.phishing_resistant,
    )


def compose(
    to: str,
    code: str,
    link_url: str,
    product_name: str,
    client_name: str,
    now: int,
    *,
    mail_from: str | None = None,
) -> EmailMessage:
    """The sign-in email: plain text first, with a simple HTML alternative (RFC 2046 §5.1.4).

    The code is in the subject so it can be read from a notification without opening the mail.
    ``now`` sets the ``Date`` header (RFC 5322 §3.6.1); the Message-ID is random, not derived from
    the clock or the host name.
    """
    minutes = CODE_TTL // 60
    message = EmailMessage()
    message["Subject"] = f"Your {product_name} sign-in code: {code}"
    message["To"] = to
    if mail_from is not None:
        message["From"] = mail_from
    message["Date"] = formatdate(now, usegmt=True)
    domain = urlsplit(link_url).hostname or "freshid.invalid"
    message["Message-ID"] = f"<{secrets.token_hex(16)}@{domain}>"
    # Sign-in mail is time-critical and personal: ask auto-responders not to answer it.
    message["Auto-Submitted"] = "auto-generated"
    message["X-Auto-Response-Suppress"] = "All"

    text = (
        f"Your sign-in code for {client_name} is:\n\n"
        f"    {code}\n\n"
        f"It expires in {minutes} minutes and works once.\n\n"
        f"Or open this link, then confirm on the page it opens:\n{link_url}\n\n"
        f"If you did not try to sign in, ignore this email; nobody can sign in without the code.\n"
        f"-- {product_name}\n"
    )
    message.set_content(text)

    e = html.escape
    body = f"""\
<!doctype html>
<html lang="en">
<body style="font-family: system-ui, sans-serif; color: #1a1a1a; line-height: 1.5">
<p>Your sign-in code for {e(client_name)} is:</p>
<p style="font-size: 28px; font-weight: bold; letter-spacing: 4px">{e(code)}</p>
<p>It expires in {minutes} minutes and works once.</p>
<p>Or <a href="{e(link_url, quote=True)}">open this link</a>, then confirm on the page it opens.</p>
<p style="color: #555">If you did not try to sign in, ignore this email; nobody can sign in
without the code.</p>
<p style="color: #555">&mdash; {e(product_name)}</p>
</body>
</html>
"""
    message.add_alternative(body, subtype="html")
    return message
