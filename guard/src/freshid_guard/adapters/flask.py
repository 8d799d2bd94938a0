"""Flask: a decorator per action (install with the ``flask`` extra).

::

    @app.post("/billing")
    @fresh_required(guard, "billing.update")
    def update_billing():
        proof = g.freshid  # the Allowed outcome
        ...

A refusal is answered by the decorator itself — ``401`` with an RFC 6750 / RFC 9470
``WWW-Authenticate`` challenge, ``403``, ``503``, or a ``303`` to the provider on browser routes —
and the view is not called. No exception reaches Flask. ``async def`` views are supported.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable
from typing import Any, TypeVar, cast

from flask import Response, g, request

from freshid_guard.decision import Allowed
from freshid_guard.guard import BrowserRequest, BrowserStepUp, Denial, Guard, safe_hint

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["current_proof", "denial_response", "fresh_required"]


def denial_response(denial: Denial) -> Response:
    return Response(denial.body, status=denial.status, headers=list(denial.headers))


def current_proof() -> Allowed | None:
    """The ``Allowed`` outcome of the current request, if a guarded view is running."""
    proof = g.get("freshid")
    return proof if isinstance(proof, Allowed) else None


def fresh_required(
    guard: Guard,
    action: str,
    *,
    scopes: Iterable[str] = (),
    browser: BrowserStepUp | None = None,
    id_token_hint: Callable[[Any], str | None] | None = None,
) -> Callable[[F], F]:
    """Demand a fresh proof for ``action`` before the view runs (``g.freshid`` is the proof)."""
    guard.policy(action)  # an unknown action fails at import time
    required = frozenset(scopes)

    def protect() -> Allowed | Denial:
        context = None
        if browser is not None:
            context = BrowserRequest(
                browser, request.full_path.rstrip("?"), safe_hint(id_token_hint, request)
            )
        authorization = request.headers.getlist("Authorization")
        return guard.protect(authorization, action, scopes=required, browser=context)

    def decorate(view: F) -> F:
        if inspect.iscoroutinefunction(view):

            @functools.wraps(view)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                outcome = protect()
                if isinstance(outcome, Denial):
                    return denial_response(outcome)
                g.freshid = outcome
                return await view(*args, **kwargs)

            return cast(F, async_wrapper)

        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            outcome = protect()
            if isinstance(outcome, Denial):
                return denial_response(outcome)
            g.freshid = outcome
            return view(*args, **kwargs)

        return cast(F, wrapper)

    return decorate
