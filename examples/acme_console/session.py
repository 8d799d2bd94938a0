"""A typed view over the signed ``acme_session`` cookie.

Starlette's SessionMiddleware hands views a plain ``dict``; this module is the only place that
knows its keys, so views never guess at shapes and a tampered or outdated cookie just reads as
"signed out". The cookie is signed, not encrypted: it holds only what the user may read (their
own ID token and claims), never the access token, and the API key is *derived* from a seed in the
cookie with the server's secret rather than stored in it.

Authlib keeps its own per-flow keys (``_state_freshid_<state>``: state, nonce, PKCE verifier) in
the same dict; this module never touches them.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["AcmeSession", "PendingAction", "SignedInUser"]

_USER = "user"
_ID_TOKEN = "id_token"
_CSRF = "csrf_token"
_KEY_SEED = "api_key_seed"
_PENDING = "pending_action"
_PENDING_MAX_AGE = "pending_max_age"
_LOGOUT_STATE = "logout_state"

PENDING_ACTIONS = frozenset({"/api-key"})
"""The only places a callback may send the browser back to: never an open redirect."""

API_KEY_PREFIX = "acme_live_"


def _opt_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _opt_time(value: object) -> int | None:
    # bool is an int in Python, but `"auth_time": true` is not a time.
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


@dataclass(frozen=True)
class SignedInUser:
    """The ID token claims the console shows and decides on; nothing else is kept."""

    sub: str
    email: str | None
    sid: str | None
    auth_time: int | None
    acr: str | None
    amr: tuple[str, ...]

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any]) -> SignedInUser:
        """Pick the claims we need out of a validated ID token; ``sub`` is mandatory."""
        sub = _opt_str(claims.get("sub"))
        if sub is None:
            raise ValueError("ID token has no usable 'sub'")
        raw_amr = claims.get("amr")
        amr = tuple(v for v in raw_amr if isinstance(v, str)) if isinstance(raw_amr, list) else ()
        return cls(
            sub=sub,
            email=_opt_str(claims.get("email")),
            sid=_opt_str(claims.get("sid")),
            auth_time=_opt_time(claims.get("auth_time")),
            acr=_opt_str(claims.get("acr")),
            amr=amr,
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable form for the cookie."""
        return {
            "sub": self.sub,
            "email": self.email,
            "sid": self.sid,
            "auth_time": self.auth_time,
            "acr": self.acr,
            "amr": list(self.amr),
        }


@dataclass(frozen=True)
class PendingAction:
    """Where to go back after a sign-in, and the freshness that sign-in was asked for (if any)."""

    path: str
    max_age: int | None


class AcmeSession:
    """Typed accessors over ``request.session``; construct one per request."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    # --- who is signed in ---------------------------------------------------------------

    def user(self) -> SignedInUser | None:
        """The signed-in user, or None when signed out or when the cookie has an odd shape."""
        raw = self._data.get(_USER)
        if not isinstance(raw, dict):
            return None
        try:
            return SignedInUser.from_claims(raw)
        except ValueError:
            return None

    def id_token(self) -> str | None:
        """The raw ID token, kept only to send as ``id_token_hint`` on logout."""
        return _opt_str(self._data.get(_ID_TOKEN))

    def sign_in(self, user: SignedInUser, id_token: str) -> None:
        """Replace the whole session with a fresh one for ``user``.

        Starting from an empty dict drops anything planted before sign-in and rotates the CSRF
        token. The API key seed survives only for the *same* subject, so a step-up keeps the key
        while a different person signing in gets a different one.
        """
        previous = self.user()
        seed = self._data.get(_KEY_SEED)
        keep_seed = previous is not None and previous.sub == user.sub and isinstance(seed, str)
        self._data.clear()
        self._data[_USER] = user.to_json()
        self._data[_ID_TOKEN] = id_token
        self._data[_CSRF] = secrets.token_urlsafe(32)
        self._data[_KEY_SEED] = seed if keep_seed else secrets.token_urlsafe(24)

    def clear(self) -> None:
        """Forget everything, including any sign-in flow in progress."""
        self._data.clear()

    # --- CSRF for the one state-changing form (logout) -------------------------------------

    def csrf_token(self) -> str:
        """The token to put in a hidden field; created on first use."""
        token = _opt_str(self._data.get(_CSRF))
        if token is None:
            token = secrets.token_urlsafe(32)
            self._data[_CSRF] = token
        return token

    def csrf_ok(self, submitted: object) -> bool:
        """Constant-time check of a submitted form token against the session's."""
        expected = _opt_str(self._data.get(_CSRF))
        if expected is None or not isinstance(submitted, str):
            return False
        return hmac.compare_digest(expected.encode(), submitted.encode())

    # --- the demo secret ------------------------------------------------------------------

    def api_key(self, secret: str) -> str:
        """A demo key fixed for this session: HMAC(secret, seed), so the cookie alone can't
        reveal it even though the cookie is readable."""
        seed = _opt_str(self._data.get(_KEY_SEED))
        if seed is None:
            seed = secrets.token_urlsafe(24)
            self._data[_KEY_SEED] = seed
        digest = hmac.new(secret.encode(), b"acme-api-key:" + seed.encode(), hashlib.sha256)
        return API_KEY_PREFIX + digest.hexdigest()[:32]

    # --- returning to an action after (re-)authentication --------------------------------

    def set_pending(self, path: str, max_age: int | None) -> None:
        """Remember to come back to ``path``; ``max_age`` marks a step-up whose result must be
        checked against it."""
        if path not in PENDING_ACTIONS:
            raise ValueError(f"not a known action: {path!r}")
        self._data[_PENDING] = path
        if max_age is None:
            self._data.pop(_PENDING_MAX_AGE, None)
        else:
            self._data[_PENDING_MAX_AGE] = max_age

    def take_pending(self) -> PendingAction | None:
        """Pop the pending action (one use only); unknown paths are dropped, not followed."""
        path = self._data.pop(_PENDING, None)
        max_age = self._data.pop(_PENDING_MAX_AGE, None)
        if path not in PENDING_ACTIONS:
            return None
        if isinstance(max_age, bool) or not isinstance(max_age, int):
            max_age = None
        return PendingAction(path=path, max_age=max_age)

    # --- the logout round trip ------------------------------------------------------------

    def remember_logout_state(self, state: str) -> None:
        """Keep the ``state`` sent to the end-session endpoint, to recognise the way back."""
        self._data[_LOGOUT_STATE] = state

    def take_logout_state(self, returned: str | None) -> bool:
        """True once if ``returned`` is the state we sent on logout; then forget it."""
        expected = _opt_str(self._data.get(_LOGOUT_STATE))
        if expected is None or returned is None:
            return False
        if not hmac.compare_digest(expected.encode(), returned.encode()):
            return False
        del self._data[_LOGOUT_STATE]
        return True
