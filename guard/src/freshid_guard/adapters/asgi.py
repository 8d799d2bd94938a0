"""A plain ASGI middleware (ASGI 3, HTTP scope) that maps path patterns to catalog actions.

Needs no framework: it wraps any ASGI app (Starlette, FastAPI, Quart's ASGI app, Django's ASGI
handler). For each HTTP request the first :class:`Rule` whose method and pattern match decides; a
request no rule matches passes through untouched. On success the
:class:`~freshid_guard.decision.Allowed` outcome is put in ``scope["state"]["freshid"]``
(Starlette's ``request.state.freshid``); otherwise the middleware answers itself — ``401`` with
an RFC 6750 / RFC 9470 ``WWW-Authenticate`` challenge, ``403`` for scope, ``503`` when keys are
unavailable, or a ``303`` to the provider for browser routes — and the app never sees the request.

Patterns match ``scope["path"]`` (already percent-decoded by the server): literal text, ``{name}``
for one path segment, ``{name:path}`` for the rest of the path; a trailing ``/`` is optional.
Rules are a second line of defence next to per-route dependencies: keep them as broad as the
routes they protect (``/billing/{rest:path}`` rather than a list of leaves).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

from freshid_guard.guard import BrowserRequest, BrowserStepUp, Denial, Guard, safe_hint

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(:path)?\}")


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """``/projects/{id}/keys`` → a regular expression matching the whole path."""
    if not pattern.startswith("/"):
        raise ValueError(f"path pattern {pattern!r} must start with '/'")
    parts: list[str] = []
    position = 0
    for match in _PLACEHOLDER.finditer(pattern):
        parts.append(re.escape(pattern[position : match.start()]))
        parts.append(".*" if match.group(2) else "[^/]+")
        position = match.end()
    parts.append(re.escape(pattern[position:].rstrip("/")))
    return re.compile("".join(parts) + "/?")


@dataclass(frozen=True)
class Rule:
    """Requests to ``pattern`` (with one of ``methods``, or any method) need ``action``."""

    pattern: str
    action: str
    methods: frozenset[str] | None = None
    scopes: frozenset[str] = frozenset()

    def compiled(self) -> re.Pattern[str]:
        return compile_pattern(self.pattern)


def _authorization(scope: Scope) -> str | list[str] | None:
    """The request's ``Authorization`` header: its value, every value when it came more than
    once (the guard refuses that), or ``None``."""
    found: str | list[str] | None = None
    for key, value in scope.get("headers", ()):
        # Servers send names in lower case (ASGI); lower() anyway, but only when it could matter.
        if key == b"authorization" or (len(key) == 13 and key.lower() == b"authorization"):
            text = value.decode("latin-1")
            if found is None:
                found = text
            elif isinstance(found, str):
                found = [found, text]
            else:
                found.append(text)
    return found


async def send_denial(denial: Denial, send: Send) -> None:
    """Send a :class:`~freshid_guard.guard.Denial` as an ASGI HTTP response."""
    headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in denial.headers]
    headers.append((b"content-length", str(len(denial.body)).encode("ascii")))
    await send({"type": "http.response.start", "status": denial.status, "headers": headers})
    await send({"type": "http.response.body", "body": denial.body})


def return_path(scope: Scope) -> str:
    """The request's own path and query, as a browser step-up's return target."""
    path = scope.get("root_path", "") + scope.get("path", "/")
    query = scope.get("query_string", b"").decode("latin-1")
    return f"{path}?{query}" if query else path


class FreshnessMiddleware:
    """Answers for the app whenever a rule matches and the guard refuses::

    app = FreshnessMiddleware(app, guard=guard, rules=[Rule("/billing", "billing.update")])
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        guard: Guard,
        rules: Sequence[Rule],
        browser: BrowserStepUp | None = None,
        id_token_hint: Callable[[Scope], str | None] | None = None,
    ) -> None:
        self.app = app
        self.guard = guard
        self.browser = browser
        self.id_token_hint = id_token_hint
        for rule in rules:
            guard.policy(rule.action)  # unknown actions fail at start-up, not per request
        self._rules = [(rule, rule.methods, rule.compiled().fullmatch) for rule in rules]

    def match(self, method: str, path: str) -> Rule | None:
        """The first rule for ``method`` and ``path``, or ``None``."""
        for rule, methods, fullmatch in self._rules:
            if (methods is None or method in methods) and fullmatch(path):
                return rule
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rule = self.match(scope.get("method", "GET"), scope.get("path", "/"))
        if rule is None:
            await self.app(scope, receive, send)
            return
        authorization = _authorization(scope)
        # A token the guard has verified before is decided on the spot (see Guard.protect_cached);
        # only a new token, or a refusal, takes the full asynchronous path.
        outcome = self.guard.protect_cached(authorization, rule.action, scopes=rule.scopes)
        if outcome is None:
            browser = None
            if self.browser is not None:
                browser = BrowserRequest(
                    self.browser,
                    return_path(scope),
                    id_token_hint=safe_hint(self.id_token_hint, scope),
                )
            outcome = await self.guard.protect_async(
                authorization, rule.action, scopes=rule.scopes, browser=browser
            )
        if isinstance(outcome, Denial):
            await send_denial(outcome, send)
            return
        scope.setdefault("state", {})["freshid"] = outcome
        await self.app(scope, receive, send)


def rules(*entries: tuple[str, str] | tuple[str, str, Iterable[str]]) -> list[Rule]:
    """Shorthand for a rule list::

    rules(("/billing", "billing.update", ["POST"]), ("/keys/{id}", "keys.reveal"))
    """
    made: list[Rule] = []
    for entry in entries:
        methods = frozenset(m.upper() for m in entry[2]) if len(entry) == 3 else None
        made.append(Rule(entry[0], entry[1], methods))
    return made
