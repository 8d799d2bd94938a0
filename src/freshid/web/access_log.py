"""An access log that cannot leak credentials.

Uvicorn's own access log prints the query string, and ours carry codes and ``id_token_hint``s, so
it is switched off and this one logs method, path, status and duration only — never the query,
headers or bodies.
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("freshid.access")


class AccessLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not log.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            # The path of an interaction page names the interaction; it is not a credential (it
            # is bound to the browser cookie), so it may be logged.
            log.info(
                "%s %s %d %.1fms",
                scope["method"],
                scope["path"][:200],
                status,
                (time.perf_counter() - started) * 1000,
            )
