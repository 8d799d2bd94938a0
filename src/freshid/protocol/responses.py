"""JSON answers for the protocol endpoints (RFC 6749 §5.1-5.2: no caching of token responses)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse

from freshid.errors import InvalidClient, InvalidToken, OAuthError

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class _JSON(JSONResponse):
    """Compact UTF-8 JSON, as Starlette's, rendered by orjson: every token response pays it."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def ok(body: dict[str, Any], status_code: int = 200) -> JSONResponse:
    return _JSON(body, status_code=status_code, headers=NO_STORE)


def error(exc: OAuthError, *, basic_auth_used: bool = False) -> JSONResponse:
    headers = dict(NO_STORE)
    if isinstance(exc, InvalidClient) and basic_auth_used:
        headers["WWW-Authenticate"] = 'Basic realm="freshid"'
    if isinstance(exc, InvalidToken):
        headers["WWW-Authenticate"] = bearer_challenge(exc)
    return _JSON(exc.to_dict(), status_code=exc.status_code, headers=headers)


def bearer_challenge(exc: OAuthError | None) -> str:
    """RFC 6750 §3: the WWW-Authenticate value for a bearer-protected resource."""
    if exc is None:
        return 'Bearer realm="freshid"'
    return f'Bearer realm="freshid", error="{exc.error}", error_description="{exc.description}"'
