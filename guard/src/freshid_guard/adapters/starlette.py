"""Starlette and FastAPI: a dependency per action, and the plain ASGI middleware.

FastAPI::

    BillingProof = Annotated[Allowed, Depends(FreshAction(guard, "billing.update"))]

    @app.post("/billing")
    async def update_billing(proof: BillingProof) -> dict[str, str]: ...

A refusal stops the request with :class:`GuardDenied` (an ``HTTPException`` carrying the exact
status and headers: ``401`` + RFC 9470 ``WWW-Authenticate``, or a ``303`` to the provider on browser
routes), which Starlette and FastAPI turn into the response; nothing else ever propagates.
:func:`install` registers a handler that also sends the guard's own JSON body (without it the
framework's default body, e.g. FastAPI's ``{"detail": ...}``, is sent with the same status and
headers). Plain Starlette endpoints may call :meth:`FreshAction.evaluate`, which returns
``Allowed`` or a ready :class:`~starlette.responses.Response`.

Install with the ``starlette`` (or ``fastapi``) extra.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from freshid_guard.adapters.asgi import FreshnessMiddleware, Rule, return_path, rules
from freshid_guard.decision import Allowed
from freshid_guard.guard import BrowserRequest, BrowserStepUp, Denial, Guard, safe_hint

__all__ = [
    "FreshAction",
    "FreshnessMiddleware",
    "GuardDenied",
    "Rule",
    "denial_response",
    "install",
    "rules",
]


class GuardDenied(HTTPException):
    """The request is refused; ``denial`` holds the guard's complete answer."""

    def __init__(self, denial: Denial) -> None:
        headers = {k: v for k, v in denial.headers if k.lower() != "content-type"}
        description = denial.refusal.description if denial.refusal is not None else None
        super().__init__(denial.status, detail=description, headers=headers)
        self.denial = denial


def denial_response(denial: Denial) -> Response:
    """A Starlette response for a :class:`~freshid_guard.guard.Denial`."""
    headers = {k: v for k, v in denial.headers if k.lower() != "content-type"}
    return Response(denial.body, denial.status, headers=headers, media_type=denial.media_type)


async def _handle_denied(request: Request, exc: Exception) -> Response:
    if isinstance(exc, GuardDenied):
        return denial_response(exc.denial)
    raise exc  # pragma: no cover - only registered for GuardDenied


def install(app: Any) -> None:
    """Register the handler that answers :class:`GuardDenied` with the guard's full response
    (``app`` is a Starlette or FastAPI application)."""
    app.add_exception_handler(GuardDenied, _handle_denied)


class FreshAction:
    """A FastAPI dependency (or Starlette helper) demanding a fresh proof for ``action``."""

    def __init__(
        self,
        guard: Guard,
        action: str,
        *,
        scopes: Iterable[str] = (),
        browser: BrowserStepUp | None = None,
        id_token_hint: Callable[[Request], str | None] | None = None,
    ) -> None:
        guard.policy(action)  # an unknown action fails at start-up
        self.guard = guard
        self.action = action
        self.scopes = frozenset(scopes)
        self.browser = browser
        self.id_token_hint = id_token_hint

    async def evaluate(self, request: Request) -> Allowed | Response:
        """``Allowed`` (also stored as ``request.state.freshid``) or the response to send."""
        outcome = await self._protect(request)
        if isinstance(outcome, Denial):
            return denial_response(outcome)
        return outcome

    async def __call__(self, request: Request) -> Allowed:
        outcome = await self._protect(request)
        if isinstance(outcome, Denial):
            raise GuardDenied(outcome)
        return outcome

    async def _protect(self, request: Request) -> Allowed | Denial:
        authorization = request.headers.getlist("authorization")
        outcome = self.guard.protect_cached(authorization, self.action, scopes=self.scopes)
        if outcome is None:  # a new token, or a refusal: the full path (see Guard.protect_cached)
            browser = None
            if self.browser is not None:
                browser = BrowserRequest(
                    self.browser,
                    return_path(request.scope),
                    id_token_hint=safe_hint(self.id_token_hint, request),
                )
            outcome = await self.guard.protect_async(
                authorization, self.action, scopes=self.scopes, browser=browser
            )
        if isinstance(outcome, Allowed):
            request.state.freshid = outcome
        return outcome
