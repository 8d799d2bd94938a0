"""A FreshID on ``http://localhost:<port>`` (so passkeys have a domain as RP id) that sends its mail
over real SMTP to an aiosmtpd server started by the test, plus small helpers shared by the browser
tests (tests/e2e) and the abuse tests (tests/ui).
"""

from __future__ import annotations

import re
import sqlite3
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from aiosmtpd.controller import Controller

from freshid.app import create_app
from freshid.clock import OffsetClock
from freshid.methods import recovery_codes, totp
from freshid.provider import Provider
from freshid.settings import Settings, load_settings
from freshid.storage import clients as client_store
from freshid.storage import credentials as credential_store
from freshid.storage import migrate
from freshid.storage import users as user_store
from freshid.storage.database import Database, is_sqlite
from freshid.storage.tables import events as events_table
from tests.conftest import DEMO_PASSWORD, free_port, serve_in_thread

CODE_IN_SUBJECT = re.compile(r"sign-in code: (\d{6})")
LINK_IN_TEXT = re.compile(r"(https?://\S+/email/confirm/\S+)")


# --- a real SMTP server ---------------------------------------------------------------------------


@dataclass
class Mailbox:
    """Every message the SMTP server accepted, in order of arrival."""

    messages: list[tuple[list[str], EmailMessage]] = field(default_factory=list)
    _cond: threading.Condition = field(default_factory=threading.Condition)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content
        message = message_from_bytes(raw, policy=policy.default)
        assert isinstance(message, EmailMessage)
        with self._cond:
            self.messages.append((list(envelope.rcpt_tos), message))
            self._cond.notify_all()
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[EmailMessage]:
        with self._cond:
            return [m for rcpt, m in self.messages if address in rcpt]

    def wait(self, address: str, count: int = 1, timeout: float = 10) -> EmailMessage:
        """The ``count``-th message to ``address`` (waiting for it to arrive)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                mine = [m for rcpt, m in self.messages if address in rcpt]
                if len(mine) >= count:
                    return mine[count - 1]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no message #{count} for {address} within {timeout}s")
                self._cond.wait(left)


def code_of(message: EmailMessage) -> str:
    subject_code = CODE_IN_SUBJECT.search(str(message["Subject"]))
    assert subject_code, message["Subject"]
    body = message.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert subject_code.group(1) in text  # the body carries the same code
    return subject_code.group(1)


def link_of(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    found = LINK_IN_TEXT.search(body.get_content())
    assert found, "no sign-in link in the email"
    return found.group(1)


@contextmanager
def smtp_server() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


# --- FreshID on localhost -------------------------------------------------------------------------

_HASHES: dict[str, str] = {}


@dataclass(frozen=True)
class Event:
    type: str
    user_id: str | None
    session_id: str | None
    client_id: str | None
    data: dict[str, Any]


@dataclass
class IdP:
    url: str
    provider: Provider
    clock: OffsetClock
    settings: Settings
    mail: Mailbox

    def create_user(self, email: str, password: str = DEMO_PASSWORD) -> str:
        # argon2id is slow on purpose; hash each distinct password once per run.
        if password not in _HASHES:
            _HASHES[password] = self.provider.password.hash_sync(password)
        with self.provider.db.write() as conn:
            return user_store.create(conn, email, _HASHES[password], self.clock.now()).id

    def create_client(self, redirect_uri: str, **kwargs: Any) -> tuple[str, str | None]:
        with self.provider.db.write() as conn:
            client, secret = client_store.create(
                conn, kwargs.pop("name", "Acme Console"), [redirect_uri], self.clock.now(), **kwargs
            )
        return client.client_id, secret

    def add_totp(self, user_id: str) -> tuple[str, list[str]]:
        """An authenticator app and recovery codes, enrolled straight in storage (for tests whose
        subject is not enrolment; tests/e2e/test_methods_browser.py enrols through the page)."""
        secret, codes = totp.new_secret(), recovery_codes.generate()
        now = self.clock.now()
        with self.provider.db.write() as conn:
            cred = credential_store.add_totp(conn, user_id, secret, now)
            credential_store.confirm_totp(conn, user_id, cred, "Authenticator app", 0, now)
            digests = [recovery_codes.digest(c) for c in codes]
            credential_store.replace_recovery_codes(conn, user_id, digests, now)
        return secret, codes

    def events(self, type_: str) -> list[Event]:
        with self.provider.db.read() as conn:
            rows = conn.execute(
                sa.select(events_table)
                .where(events_table.c.type == type_)
                .order_by(events_table.c.id)
            ).all()
        return [Event(r.type, r.user_id, r.session_id, r.client_id, dict(r.data)) for r in rows]

    def failures(self, method: str) -> list[Event]:
        return [e for e in self.events("authentication.failed") if e.data.get("method") == method]


_TEMPLATE: list[Path] = []


def _prepare_database(database_url: str) -> None:
    """Make ``database_url`` a migrated database without running Alembic per test: SQLite files
    are copies of one database migrated once per run; PostgreSQL's was migrated by the
    ``pg_database`` fixture and is only truncated between tests."""
    if not is_sqlite(database_url):
        return
    if not _TEMPLATE:
        path = Path(tempfile.mkdtemp(prefix="freshid-template-")) / "template.sqlite3"
        db = Database(f"sqlite:///{path}")
        migrate.upgrade(db)
        db.dispose()
        _TEMPLATE.append(path)
    target = database_url.split("///", 1)[1]
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(_TEMPLATE[0]) as src, sqlite3.connect(target) as dst:
        src.backup(dst)


@contextmanager
def running_idp(database_url: str) -> Iterator[IdP]:
    """FreshID at ``http://localhost:<port>`` with SMTP delivery to a test-owned server."""
    _prepare_database(database_url)
    with smtp_server() as (box, smtp_port):
        port = free_port()
        settings = load_settings(
            environ={},
            database_url=database_url,
            port=port,
            issuer=f"http://localhost:{port}",
            mail_backend="smtp",
            smtp_host="127.0.0.1",
            smtp_port=smtp_port,
            smtp_security="none",
        )
        clock = OffsetClock()
        provider = Provider(settings, clock)
        app = create_app(settings, provider=provider, migrate_on_start=False)
        stop = serve_in_thread(app, port)
        try:
            yield IdP(f"http://localhost:{port}", provider, clock, settings, box)
        finally:
            stop()
