"""Django: a view decorator per action (install with the ``django`` extra).

::

    @fresh_required(guard, "billing.update")
    def update_billing(request):
        proof = request.freshid  # the Allowed outcome
        ...

A refusal is answered by the decorator — ``401`` with an RFC 6750 / RFC 9470 ``WWW-Authenticate``
challenge, ``403``, ``503``, or a ``303`` to the provider on browser routes — and the view is not
called; no exception reaches Django. ``async def`` views use the guard's async path.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable
from typing import Any, TypeVar, cast

from django.http import HttpResponse  # type: ignore[import-untyped, unused-ignore]

from freshid_guard.decision import Allowed
from freshid_guard.guard import BrowserRequest, BrowserStepUp, Denial, Guard, safe_hint

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["denial_response", "fresh_required"]


def denial_response(denial: Denial) -> Any:
    """A ``django.http.HttpResponse`` for a :class:`~freshid_guard.guard.Denial`."""
    headers = {k: v for k, v in denial.headers if k.lower() != "content-type"}
    return HttpResponse(
        denial.body, status=denial.status, headers=headers, content_type=denial.media_type
    )


def _authorization(request: Any) -> str | None:
    value = request.META.get("HTTP_AUTHORIZATION")
    return value if isinstance(value, str) else None


def fresh_required(
    guard: Guard,
    action: str,
    *,
    scopes: Iterable[str] = (),
    browser: BrowserStepUp | None = None,
    id_token_hint: Callable[[Any], str | None] | None = None,
) -> Callable[[F], F]:
    """Demand a fresh proof for ``action`` before the view runs (``request.freshid``)."""
    guard.policy(action)  # an unknown action fails at import time
    required = frozenset(scopes)

    def context(request: Any) -> BrowserRequest | None:
        if browser is None:
            return None
        return BrowserRequest(browser, request.get_full_path(), safe_hint(id_token_hint, request))

    def decorate(view: F) -> F:
        if inspect.iscoroutinefunction(view):

            @functools.wraps(view)
            async def async_wrapper(request: Any, *args: Any, **kwargs: Any) -> Any:
                outcome = await guard.protect_async(
                    _authorization(request), action, scopes=required, browser=context(request)
                )
                if isinstance(outcome, Denial):
                    return denial_response(outcome)
                request.freshid = outcome
                return await view(request, *args, **kwargs)

            return cast(F, async_wrapper)

        @functools.wraps(view)
        def wrapper(request: Any, *args: Any, **kwargs: Any) -> Any:
            outcome: Allowed | Denial = guard.protect(
                _authorization(request), action, scopes=required, browser=context(request)
            )
            if isinstance(outcome, Denial):
                return denial_response(outcome)
            request.freshid = outcome
            return view(request, *args, **kwargs)

        return cast(F, wrapper)

    return decorate
