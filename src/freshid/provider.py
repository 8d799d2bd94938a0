"""The running provider's shared services: settings, database, clock, keys, password hasher.

One :class:`Provider` per process. It holds no protocol state of its own: flows, sessions and
tokens live in the database, so several processes can serve the same issuer. The signing key ring
is cached for a few seconds and reloaded on an unknown ``kid``, so a rotation on one node reaches
the others quickly.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

import anyio
from sqlalchemy.engine import Connection

from freshid.clock import Clock, SystemClock
from freshid.freshness.policy import catalog
from freshid.mail.outbox import DevOutbox
from freshid.mail.sender import MailSender, SmtpSender
from freshid.methods.password import PasswordMethod
from freshid.settings import Settings
from freshid.storage import clients as client_store
from freshid.storage import keys as key_store
from freshid.storage.clients import Client
from freshid.storage.database import Busy, Database
from freshid.storage.group_commit import GroupCommit, ThreadedGroupCommit
from freshid.tokens.keys import KeyRing

T = TypeVar("T")
_KEYRING_TTL = 10
_CLIENT_TTL = 5.0
_CLIENT_CACHE_SIZE = 10_000


class Provider:
    def __init__(
        self, settings: Settings, clock: Clock | None = None, db: Database | None = None
    ) -> None:
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.db = db or Database(settings.database_url)
        self.issuer = settings.effective_issuer.rstrip("/")
        self.password = PasswordMethod.from_settings(settings)
        self.policies = catalog(settings.policy_file or None)
        self.outbox = DevOutbox()
        self.mailer: MailSender = (
            self.outbox
            if settings.mail_backend == "outbox"
            else SmtpSender(
                settings.smtp_host,
                settings.smtp_port,
                security=settings.smtp_security,  # type: ignore[arg-type]
                username=settings.smtp_username or None,
                password=settings.smtp_password or None,
                timeout=float(settings.smtp_timeout),
            )
        )
        self._clients: dict[str, tuple[float, Client | None]] = {}
        self._ring: KeyRing | None = None
        self._ring_loaded_at = 0
        self._ring_lock = threading.Lock()
        self.db_limiter = anyio.CapacityLimiter(16)
        self._group_commit = GroupCommit(self.db) if self.db.sqlite else None
        self._threaded_group_commit = (
            None if self.db.sqlite else ThreadedGroupCommit(self.db, self.db_limiter)
        )

    def now(self) -> int:
        return self.clock.now()

    def client(self, conn: Connection, client_id: str) -> Client | None:
        """A registered client, cached for a few seconds: the token endpoint authenticates the
        client on every request, and its row almost never changes. A new secret or redirect URI
        therefore reaches every process within :data:`_CLIENT_TTL` seconds."""
        started = time.monotonic()
        cached = self._clients.get(client_id)
        if cached is not None and started - cached[0] < _CLIENT_TTL:
            return cached[1]
        found = client_store.by_id(conn, client_id)
        if len(self._clients) >= _CLIENT_CACHE_SIZE:
            self._clients.clear()
        self._clients[client_id] = (started, found)
        return found

    # Database units of work run in worker threads: the engine is synchronous.
    async def write(self, fn: Callable[[Connection], T]) -> T:
        def run() -> T:
            with self.db.write() as conn:
                return fn(conn)

        return await anyio.to_thread.run_sync(run, limiter=self.db_limiter)

    async def write_short(self, fn: Callable[[Connection], T]) -> T:
        """A write of a few indexed statements and no other I/O (the token endpoint's, issuing a
        code). On SQLite it runs on the event loop — the hand-off to a worker thread costs more
        than such a transaction — sharing one commit with the other such writes of the same turn
        of the loop (:mod:`freshid.storage.group_commit`); while another writer holds the store
        it waits there, and only a lock held longer than ``group_commit.LOCKED_WAIT`` sends it to
        a worker thread. PostgreSQL's network round trips always go to a worker thread, with the
        units waiting at the time, in one transaction."""
        if self._group_commit is not None:
            try:
                return await self._group_commit.run(fn)
            except Busy:
                pass
        if self._threaded_group_commit is not None:
            return await self._threaded_group_commit.run(fn)
        return await self.write(fn)

    async def read(self, fn: Callable[[Connection], T]) -> T:
        def run() -> T:
            with self.db.read() as conn:
                return fn(conn)

        return await anyio.to_thread.run_sync(run, limiter=self.db_limiter)

    async def read_short(self, fn: Callable[[Connection], T]) -> T:
        """A read of a few indexed statements and no other I/O (the protocol endpoints' lookups
        of a client, a session, a token). On SQLite it runs on the event loop, where a reader
        does not wait (:meth:`Database.read_nowait`) and the hand-off to a worker thread costs
        more than the read; on PostgreSQL, or when SQLite would make it wait, as :meth:`read`.
        ``fn`` may run twice: it must only read."""
        if self.db.sqlite:
            try:
                with self.db.read_nowait() as conn:
                    return fn(conn)
            except Busy:
                pass

        def run() -> T:
            self.db.keep_reader()  # for the next short read, if it was not open yet
            with self.db.read() as conn:
                return fn(conn)

        return await anyio.to_thread.run_sync(run, limiter=self.db_limiter)

    def keyring(self, *, refresh: bool = False) -> KeyRing:
        """The current key ring (blocking; call from a worker thread or at start-up)."""
        now = self.now()
        with self._ring_lock:
            if refresh or self._ring is None or now - self._ring_loaded_at >= _KEYRING_TTL:
                with self.db.write() as conn:
                    key_store.ensure_active(conn, now)
                    loaded = key_store.load_all(conn)
                self._ring = KeyRing(
                    loaded, now, self.settings.longest_token_ttl, self.settings.key_rotation_grace
                )
                self._ring_loaded_at = now
            return self._ring

    async def keyring_async(self, *, refresh: bool = False) -> KeyRing:
        ring = self._ring
        if not refresh and ring is not None and self.now() - self._ring_loaded_at < _KEYRING_TTL:
            return ring
        return await anyio.to_thread.run_sync(lambda: self.keyring(refresh=refresh))
