"""FreshID and Acme Console running side by side, as ``freshid demo`` runs them, for tests.

Both listen on loopback and are addressed as ``http://localhost:<port>`` (passkeys need a domain
name). FreshID loads the console's own ``actions.toml`` as its ``policy_file``, is seeded by
:func:`freshid.demo.seed`, keeps mail in its outbox, and runs on an :class:`OffsetClock` so a
test can sign in "in the past". The console gets its own shiftable clock.

:class:`Walker` is a cookie-keeping HTTP client that reads the forms of both apps' pages; the
helpers below are the steps a user takes on FreshID's hosted pages.
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import sqlalchemy as sa

from acme_console.views import Console
from freshid.clock import OffsetClock
from freshid.demo import DEMO_EMAIL, DEMO_PASSWORD, build
from freshid.methods import totp
from freshid.provider import Provider
from freshid.settings import load_settings
from freshid.storage import users as user_store
from freshid.storage.tables import events as events_table
from tests.conftest import free_port, serve_in_thread

__all__ = [
    "DEMO_EMAIL",
    "DEMO_PASSWORD",
    "AppClock",
    "Authenticator",
    "Form",
    "Stack",
    "Walker",
    "running_stack",
]


class AppClock:
    """The console's injectable clock: real time plus an adjustable offset."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@dataclass(frozen=True)
class Event:
    type: str
    user_id: str | None
    session_id: str | None
    client_id: str | None
    data: dict[str, Any]


@dataclass
class Stack:
    idp_url: str
    app_url: str
    provider: Provider
    idp_clock: OffsetClock
    app_clock: AppClock
    console: Console

    def create_user(self, email: str) -> str:
        """Another FreshID user with the demo password (argon2id hashed once per run)."""
        if DEMO_PASSWORD not in _HASHES:
            _HASHES[DEMO_PASSWORD] = self.provider.password.hash_sync(DEMO_PASSWORD)
        with self.provider.db.write() as conn:
            return user_store.create(conn, email, _HASHES[DEMO_PASSWORD], self.idp_clock.now()).id

    def events(self, type_: str) -> list[Event]:
        with self.provider.db.read() as conn:
            rows = conn.execute(
                sa.select(events_table)
                .where(events_table.c.type == type_)
                .order_by(events_table.c.id)
            ).all()
        return [Event(r.type, r.user_id, r.session_id, r.client_id, dict(r.data)) for r in rows]


_HASHES: dict[str, str] = {}


@contextmanager
def running_stack(database_url: str) -> Iterator[Stack]:
    """``freshid demo``'s two apps (:func:`freshid.demo.build`) on free loopback ports."""
    idp_port, app_port = free_port(), free_port()
    settings = load_settings(
        environ={},
        database_url=database_url,
        port=idp_port,
        issuer=f"http://localhost:{idp_port}",
        mail_backend="outbox",
        dev_mode=True,
    )
    idp_clock, app_clock = OffsetClock(), AppClock()
    demo = build(settings, app_port, clock=idp_clock, console_clock=app_clock)
    stop_idp = serve_in_thread(demo.idp, idp_port)
    try:
        stop_app = serve_in_thread(demo.console, app_port)
        try:
            yield Stack(
                demo.provider.issuer,
                demo.app_url,
                demo.provider,
                idp_clock,
                app_clock,
                demo.console.state.console,
            )
        finally:
            stop_app()
    finally:
        stop_idp()
        demo.provider.db.dispose()


# --- a small browser ----------------------------------------------------------------------------


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self._open: Form | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._open = Form(a.get("action", ""), a.get("method", "get").lower())
            self.forms.append(self._open)
        elif tag == "input" and self._open is not None and a.get("name"):
            kind = a.get("type", "text")
            if kind in {"checkbox", "radio"} and "checked" not in a:
                return
            self._open.fields[a["name"]] = a.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._open = None


def forms(page: str) -> list[Form]:
    parser = _Forms()
    parser.feed(page)
    return parser.forms


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


class Walker:
    """Follows redirects across both apps and keeps each host's cookies (ports share them)."""

    def __init__(self) -> None:
        self.http = httpx.Client(timeout=30, follow_redirects=True)
        self.page: httpx.Response | None = None

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Walker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def text(self) -> str:
        assert self.page is not None
        return self.page.text

    @property
    def url(self) -> str:
        assert self.page is not None
        return str(self.page.url)

    def visited(self) -> list[str]:
        """Every URL the last navigation went through, redirects included."""
        assert self.page is not None
        return [str(r.url) for r in self.page.history] + [str(self.page.url)]

    def authorize_request(self) -> dict[str, str]:
        """The parameters of the last navigation's trip through ``/authorize``."""
        trips = [u for u in self.visited() if urlsplit(u).path == "/authorize"]
        assert trips, self.visited()
        return query(trips[-1])

    def get(self, url: str) -> httpx.Response:
        self.page = self.http.get(url)
        return self.page

    def form(self, action_pattern: str) -> Form:
        found = [f for f in forms(self.text) if re.search(action_pattern, html.unescape(f.action))]
        assert found, f"no form posting to {action_pattern!r} on {self.url}"
        return found[0]

    def submit(self, action_pattern: str, **values: str) -> httpx.Response:
        form = self.form(action_pattern)
        self.page = self.http.post(
            urljoin(self.url, html.unescape(form.action)), data={**form.fields, **values}
        )
        return self.page

    def post(self, url: str, data: dict[str, str]) -> httpx.Response:
        self.page = self.http.post(url, data=data)
        return self.page

    def csrf(self) -> str:
        match = re.search(r'name="csrf_token" value="([^"]+)"', self.text)
        assert match, "no CSRF token on the page"
        return match.group(1)


# --- steps on FreshID's hosted pages ------------------------------------------------------------


def sign_in(walker: Walker, stack: Stack, email: str = DEMO_EMAIL, *, seconds_ago: int = 0) -> None:
    """From the console's "Sign in": sign in at FreshID as ``email``, ``seconds_ago``."""
    stack.idp_clock.offset = -seconds_ago
    try:
        walker.get(f"{stack.app_url}/login")
        assert 'name="email"' in walker.text, walker.url
        walker.submit(r"/password$", email=email, password=DEMO_PASSWORD)
    finally:
        stack.idp_clock.offset = 0
    assert walker.url.startswith(stack.app_url), walker.url


def confirm_with_password(walker: Walker) -> None:
    assert "Confirm it" in walker.text, walker.url
    walker.submit(r"/password$", password=DEMO_PASSWORD)


@dataclass
class Authenticator:
    """A phone's authenticator app: a TOTP secret, never showing a code FreshID has seen (it
    refuses a step twice, RFC 6238 §5.2); waits for the next step when it must."""

    secret: str
    last_step: int = -1

    def code(self, stack: Stack) -> str:
        while True:
            now = stack.idp_clock.now()
            step = max(totp.step_at(now), self.last_step + 1)
            if step <= totp.step_at(now) + 1:  # FreshID accepts one step of drift
                self.last_step = step
                return totp.code_at(self.secret, step)
            time.sleep(1)


def confirm_with_totp(walker: Walker, stack: Stack, phone: Authenticator) -> None:
    """On "Confirm it's you": pick the authenticator app if it is not offered first, enter a
    code."""
    assert "Confirm it" in walker.text, walker.url
    if not any(f.action.endswith("/totp") for f in forms(walker.text)):
        link = re.search(r'href="([^"]*\?method=totp)"', walker.text)
        assert link, "the authenticator app is not offered"
        walker.get(urljoin(walker.url, html.unescape(link.group(1))))
    walker.submit(r"/totp$", code=phone.code(stack))


def enrol_totp(walker: Walker, stack: Stack) -> Authenticator:
    """FreshID's account page → "Set up an authenticator app"; returns the app."""
    walker.get(f"{stack.idp_url}/account/totp/new")
    match = re.search(r'class="secret__value">([^<]+)<', walker.text)
    assert match, walker.url
    phone = Authenticator(match.group(1).replace(" ", ""))
    walker.submit(r"/account/totp/confirm", code=phone.code(stack), name="Phone")
    assert "recovery codes" in walker.text.lower(), walker.url
    return phone
