"""A database outage is a ``503 Service Unavailable`` with ``Retry-After``, not a ``500``.

When PostgreSQL restarts, crashes or refuses connections, every request that needs it fails with a
DB-API ``OperationalError``/``InterfaceError`` (raised through SQLAlchemy, or directly by the
driver for statements run on its own cursor, :mod:`freshid.storage.prepared`), or waits in vain
for a pooled connection. Nothing is wrong with the request: the same request may succeed in a
moment, and the node recovers by itself (the engine pings pooled connections before use and
replaces dead ones, :mod:`freshid.storage.database`). So the answer says "retry later":

- protocol endpoints (JSON): the OAuth error ``temporarily_unavailable`` (RFC 6749 §4.1.2.1 names
  it for the authorization endpoint; here it is used for the same condition on the others), with
  ``Cache-Control: no-store``;
- pages: an HTML page saying so.

A deadlock or serialization failure (PostgreSQL rolled the transaction back) is an
``OperationalError`` too; the token endpoint's and code-issuing writes run again up to three times
before it gets here (:mod:`freshid.storage.group_commit`).

A write whose commit was in flight when the connection died may have committed anyway (the
acknowledgement is what was lost); a retry then gets what any second use gets — ``invalid_grant``
for a used code or refresh token — never a second success.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Awaitable, Callable

import psycopg
import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import Response

from freshid.errors import TemporarilyUnavailable
from freshid.protocol import responses
from freshid.ui.pages import error_page

log = logging.getLogger("freshid")

RETRY_AFTER_SECONDS = 2
"""What ``Retry-After`` asks for: a PostgreSQL restart takes about that long."""

DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (
    sa.exc.OperationalError,
    sa.exc.InterfaceError,
    sa.exc.TimeoutError,  # no pooled connection became free in time
    psycopg.OperationalError,
    psycopg.InterfaceError,
    sqlite3.OperationalError,
)
"""Exceptions that mean "the database cannot serve this now", not "this request is wrong"."""


def handler(
    wants_json: Callable[[Request], bool],
) -> Callable[[Request, Exception], Awaitable[Response]]:
    """The exception handler for :data:`DATABASE_UNAVAILABLE`; ``wants_json`` picks JSON or HTML."""

    async def database_unavailable(request: Request, exc: Exception) -> Response:
        cause = exc.orig if isinstance(exc, sa.exc.DBAPIError) else exc
        # The type only: a driver's message may quote SQL parameters.
        log.warning(
            "database unavailable (%s) on %s %s",
            type(cause).__name__,
            request.method,
            request.url.path,
        )
        response: Response
        if wants_json(request):
            response = responses.error(
                TemporarilyUnavailable("the service is temporarily unavailable; retry later")
            )
        else:
            response = error_page(
                "Temporarily unavailable",
                "The service cannot complete this right now. Please try again in a moment.",
                "temporarily_unavailable",
                503,
            )
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response

    return database_unavailable
