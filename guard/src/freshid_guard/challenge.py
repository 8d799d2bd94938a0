"""Answers to a refused request: ``WWW-Authenticate`` challenges for APIs, redirects for browsers.

**APIs.** RFC 6750 §3 ``Bearer`` challenges: ``invalid_token`` / ``insufficient_scope`` /
``invalid_request``, or no error code at all when no token was presented (§3.1). A step-up is RFC
9470 §3::

    Bearer error="insufficient_user_authentication",
      error_description="Confirm it's you to change billing details: the last proof is too old",
      max_age="300", acr_values="urn:freshid:acr:mfa"

Every value is a quoted-string (RFC 9110 §11.2, §5.6.4). ``error_description`` is reduced to the
characters RFC 6749 §5.2 / RFC 6750 §3 allow (``%x20-21 / %x23-5B / %x5D-7E``: printable ASCII
without ``"`` and ``\\``); other values are escaped and refused if they cannot be quoted.

**Browsers.** :func:`step_up_redirect` builds the provider's authorization request (OIDC Core
§3.1.2.1) for a re-authentication: ``max_age`` and ``acr_values`` from the policy, ``login_hint`` or
``id_token_hint``, PKCE S256 (RFC 7636 §4) and a ``nonce``, and for a ``bind`` action RFC 9396 §2
``authorization_details=[{"type":"urn:freshid:action","action":"..."}]`` — JSON, URL-encoded by
:func:`urllib.parse.urlencode`, never by concatenation. ``max_age`` is ``0`` (a new proof whatever
the session's age) when the proof is wanted for its method, its binding or because it was used.

The ``state`` is an opaque random value; the return path is stored *with* it on the app side
(:class:`PendingStepUp`, e.g. in :class:`InMemoryPendingStore`), never sent through the provider.
Return paths must be same-origin relative paths (:func:`safe_return_path`): ``//evil``,
``/\\evil``, ``javascript:``, absolute URLs and control characters are refused, so the callback can
never become an open redirect (RFC 9700 §4.11).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from freshid_guard.decision import StepUp, StepUpReason
from freshid_guard.errors import GuardRefusal, InsufficientScope, StepUpRequired
from freshid_guard.policy import ActionPolicy

STEP_UP_ERROR = "insufficient_user_authentication"


# --- WWW-Authenticate ---------------------------------------------------------------------------


def _description_char(c: str) -> bool:
    o = ord(c)
    return 0x20 <= o <= 0x21 or 0x23 <= o <= 0x5B or 0x5D <= o <= 0x7E


def sanitize_description(text: str, limit: int = 300) -> str:
    """Keep only RFC 6749 ``error_description`` characters (``"`` becomes ``'``, ``\\`` ``/``)."""
    text = text.replace('"', "'").replace("\\", "/")
    cleaned = "".join(c if _description_char(c) else " " for c in text)
    return " ".join(cleaned.split())[:limit]


def quoted_string(value: str) -> str:
    """RFC 9110 §5.6.4: ``"`` + value with ``"`` and ``\\`` escaped + ``"``."""
    for c in value:
        o = ord(c)
        if (o < 0x20 and c != "\t") or o == 0x7F or o > 0xFF:
            raise ValueError("value cannot be sent as an HTTP quoted-string")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def bearer_challenge(
    *,
    error: str | None = None,
    error_description: str | None = None,
    realm: str | None = None,
    scope: str | None = None,
    max_age: int | None = None,
    acr_values: str | None = None,
) -> str:
    """A ``Bearer`` challenge (RFC 6750 §3, RFC 9470 §3) with parameters in a fixed order."""
    params: list[tuple[str, str]] = []
    if realm is not None:
        params.append(("realm", realm))
    if error is not None:
        if not error or not all(_description_char(c) for c in error):
            raise ValueError("error codes are RFC 6749 NQSCHAR strings")
        params.append(("error", error))
        if error_description:
            description = sanitize_description(error_description)
            if description:
                params.append(("error_description", description))
    if scope is not None:
        params.append(("scope", scope))
    if max_age is not None:
        if isinstance(max_age, bool) or max_age < 0:
            raise ValueError("max_age must be a non-negative integer")
        params.append(("max_age", str(max_age)))
    if acr_values is not None:
        params.append(("acr_values", acr_values))
    if not params:
        return "Bearer"
    return "Bearer " + ", ".join(f"{name}={quoted_string(value)}" for name, value in params)


def step_up_challenge(step_up: StepUp, *, realm: str | None = None) -> str:
    """RFC 9470 §3 for a :class:`~freshid_guard.decision.StepUp`."""
    return bearer_challenge(
        realm=realm,
        error=STEP_UP_ERROR,
        error_description=step_up.description,
        max_age=step_up.max_age,
        acr_values=step_up.acr_values,
    )


def refusal_challenge(refusal: GuardRefusal, *, realm: str | None = None) -> str:
    """The challenge answering any refusal of the guard's family."""
    if isinstance(refusal, StepUpRequired):
        return step_up_challenge(refusal.step_up, realm=realm)
    scope = " ".join(sorted(refusal.scope)) if isinstance(refusal, InsufficientScope) else None
    return bearer_challenge(
        realm=realm, error=refusal.error, error_description=refusal.description, scope=scope
    )


# --- browser step-up ----------------------------------------------------------------------------


class UnsafeReturnPath(ValueError):
    """The return target is not a same-origin relative path."""


def safe_return_path(value: str, max_length: int = 2048) -> str:
    """Accept only ``/path?query`` on this origin; raise :class:`UnsafeReturnPath` otherwise."""
    if not isinstance(value, str) or not value or len(value) > max_length:
        raise UnsafeReturnPath("the return path is empty or too long")
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in value) or "\\" in value:
        raise UnsafeReturnPath("the return path has control characters, spaces or backslashes")
    if not value.startswith("/") or value.startswith("//"):
        raise UnsafeReturnPath("the return path must start with a single '/'")
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        raise UnsafeReturnPath("the return path must be relative")
    return value


@dataclass(frozen=True)
class PendingStepUp:
    """What the app keeps, under ``state``, until the user comes back from the provider."""

    state: str
    return_to: str
    action: str
    code_verifier: str
    nonce: str
    created_at: int


@dataclass(frozen=True)
class StepUpRedirect:
    url: str
    pending: PendingStepUp


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def build_url(base: str, params: list[tuple[str, str]]) -> str:
    """Add query parameters to ``base`` (keeping its own), every value URL-encoded."""
    parts = urlsplit(base)
    if parts.scheme not in {"https", "http"} or not parts.netloc or parts.fragment:
        raise ValueError("the endpoint must be an absolute http(s) URL without a fragment")
    query = parse_qsl(parts.query, keep_blank_values=True) + params
    return urlunsplit(parts._replace(query=urlencode(query, quote_via=quote)))


_FORCING_REASONS: frozenset[StepUpReason | None] = frozenset(
    {"acr", "amr", "unbound", "replayed", "other_action"}
)


def step_up_redirect(
    *,
    authorization_endpoint: str,
    client_id: str,
    redirect_uri: str,
    policy: ActionPolicy,
    return_to: str,
    now: int,
    reason: StepUpReason | None = None,
    scope: str = "openid",
    login_hint: str | None = None,
    id_token_hint: str | None = None,
) -> StepUpRedirect:
    """The authorization request that re-authenticates the user for ``policy``'s action.

    Store ``result.pending`` under ``result.pending.state`` before redirecting to ``result.url``.
    """
    return_to = safe_return_path(return_to)
    state = secrets.token_urlsafe(24)
    verifier = secrets.token_urlsafe(48)
    nonce = secrets.token_urlsafe(16)
    max_age = 0 if policy.bind or reason in _FORCING_REASONS else policy.max_age
    params: list[tuple[str, str]] = [
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", redirect_uri),
        ("scope", scope),
        ("state", state),
        ("nonce", nonce),
        ("code_challenge", _s256(verifier)),
        ("code_challenge_method", "S256"),
        ("max_age", str(max_age)),
    ]
    if policy.min_acr is not None:
        params.append(("acr_values", policy.min_acr))
    if id_token_hint is not None:
        params.append(("id_token_hint", id_token_hint))
    if login_hint is not None:
        params.append(("login_hint", login_hint))
    if policy.bind:
        details = json.dumps(policy.authorization_details(), separators=(",", ":"))
        params.append(("authorization_details", details))
    url = build_url(authorization_endpoint, params)
    pending = PendingStepUp(state, return_to, policy.action, verifier, nonce, now)
    return StepUpRedirect(url, pending)


class PendingStore(Protocol):
    """Where an app keeps :class:`PendingStepUp` records between redirect and callback."""

    def save(self, pending: PendingStepUp) -> None: ...

    def pop(self, state: str, now: int) -> PendingStepUp | None:
        """The record for ``state``, removed (one use), or ``None`` if unknown or expired."""
        ...


class InMemoryPendingStore:
    """A bounded, per-process :class:`PendingStore` whose records expire after ``ttl`` seconds."""

    def __init__(self, ttl: int = 900, maxsize: int = 10_000) -> None:
        self.ttl = ttl
        self.maxsize = maxsize
        self._items: OrderedDict[str, PendingStepUp] = OrderedDict()
        self._lock = threading.Lock()

    def save(self, pending: PendingStepUp) -> None:
        with self._lock:
            self._items[pending.state] = pending
            while len(self._items) > self.maxsize:
                self._items.popitem(last=False)

    def pop(self, state: str, now: int) -> PendingStepUp | None:
        with self._lock:
            pending = self._items.pop(state, None)
        if pending is None or now - pending.created_at > self.ttl:
            return None
        return pending
