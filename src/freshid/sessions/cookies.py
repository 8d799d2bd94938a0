"""The browser cookies: the session cookie and the browser-binding cookie.

Both are ``HttpOnly`` and ``SameSite=Lax``. On an https issuer they are ``Secure`` with the
``__Host-`` prefix (bound to this exact origin, path ``/``, no ``Domain``); on plain-http loopback,
where browsers refuse ``Secure`` cookies over http, the prefix is dropped and so is ``Secure``.

The browser cookie identifies the browser, not the user: interactions are bound to it and CSRF
tokens are derived from it, so it exists before anyone signs in.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from freshid.settings import Settings
from freshid.tokens.secrets import digest, new_token

SESSION = "freshid_session"
BROWSER = "freshid_browser"


def name(base: str, settings: Settings) -> str:
    return f"__Host-{base}" if settings.cookies_secure else base


def read(request: Request, base: str, settings: Settings) -> str | None:
    value = request.cookies.get(name(base, settings))
    return value if value and len(value) <= 128 else None


def write(
    response: Response, base: str, value: str, settings: Settings, max_age: int | None
) -> None:
    response.set_cookie(
        name(base, settings),
        value,
        max_age=max_age,
        path="/",
        secure=settings.cookies_secure,
        httponly=True,
        samesite="lax",
    )


def clear(response: Response, base: str, settings: Settings) -> None:
    response.delete_cookie(
        name(base, settings),
        path="/",
        secure=settings.cookies_secure,
        httponly=True,
        samesite="lax",
    )


def browser_id(request: Request, settings: Settings) -> tuple[str, bool]:
    """The browser's id, and whether it is new (and must be set on the response)."""
    existing = read(request, BROWSER, settings)
    return (existing, False) if existing else (new_token(32), True)


def csrf_token(browser: str) -> str:
    """A per-browser synchronizer token: unguessable without the HttpOnly browser cookie."""
    return digest("csrf\x00" + browser)
