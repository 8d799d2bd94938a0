"""A typed view over the signed ``acme_session`` cookie.

Starlette's SessionMiddleware hands views a plain ``dict``; this module is the only place that
knows its keys, so views never guess at shapes and a tampered or outdated cookie just reads as
"signed out". The cookie is signed, not encrypted: it holds only what the user may read (their own
ID token and claims), the CSRF token, and the random key of their server-side session
(:class:`~acme_console.store.ServerSession`), which holds the access tokens. Access tokens never
go into the cookie.

Authlib keeps its own per-flow keys (``_state_freshid_<state>``: state, nonce, PKCE verifier) in
the same dict; this module never touches them.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from freshid_guard import UnsafeReturnPath, safe_return_path

__all__ = ["AcmeSession", "SignedInUser"]

_USER = "user"
_ID_TOKEN = "id_token"
_CSRF = "csrf_token"
_SERVER_KEY = "server_key"
_RETURN_TO = "return_to"
_LOGOUT_STATE = "logout_state"
_NOTICE = "notice"


def _opt_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _opt_time(value: object) -> int | None:
    # bool is an int in Python, but `"auth_time": true` is not a time.
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


@dataclass(frozen=True)
class SignedInUser:
    """The ID token claims the console shows; nothing else is kept."""

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

    def server_key(self) -> str | None:
        """The key of this browser's :class:`~acme_console.store.ServerSession`."""
        return _opt_str(self._data.get(_SERVER_KEY))

    def sign_in(self, user: SignedInUser, id_token: str, server_key: str) -> None:
        """Replace the whole session with a fresh one for ``user``.

        Starting from an empty dict drops anything planted before sign-in (session fixation) and
        rotates the CSRF token; the return path survives, to finish what the user started.
        """
        return_to = self._data.get(_RETURN_TO)
        self._data.clear()
        self._data[_USER] = user.to_json()
        self._data[_ID_TOKEN] = id_token
        self._data[_CSRF] = secrets.token_urlsafe(32)
        self._data[_SERVER_KEY] = server_key
        if isinstance(return_to, str):
            self._data[_RETURN_TO] = return_to

    def proved_again(self, user: SignedInUser, id_token: str) -> None:
        """After a step-up of the same user: the new ID token, with its new ``auth_time``."""
        self._data[_USER] = user.to_json()
        self._data[_ID_TOKEN] = id_token

    def clear(self) -> None:
        """Forget everything, including any sign-in flow in progress."""
        self._data.clear()

    # --- CSRF ---------------------------------------------------------------------------

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

    # --- where to go after signing in ---------------------------------------------------

    def set_return_to(self, path: str) -> None:
        """Remember a same-origin path to come back to after sign-in (never an open redirect)."""
        self._data[_RETURN_TO] = safe_return_path(path)

    def take_return_to(self) -> str:
        """Pop the remembered path; ``/`` when there is none or it is not a safe path."""
        value = self._data.pop(_RETURN_TO, None)
        try:
            return safe_return_path(value) if isinstance(value, str) else "/"
        except UnsafeReturnPath:
            return "/"

    # --- one-time notices ---------------------------------------------------------------

    def set_notice(self, code: str) -> None:
        self._data[_NOTICE] = code

    def take_notice(self) -> str | None:
        return _opt_str(self._data.pop(_NOTICE, None))

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
