"""Faults on real processes: FreshID nodes as ``freshid serve`` OS processes that a test may
``kill -9``, and a private PostgreSQL cluster that a test may stop, crash, start again and
reconfigure.

PostgreSQL only (SQLite is one machine's store; these are multi-node faults), and skipped unless
PostgreSQL tests are enabled (``FRESHID_TEST_POSTGRES_URL``). That shared server is never touched:
each test module runs its own cluster (:func:`private_pg`), initialised in a temporary directory,
listening on a free 127.0.0.1 port, and run as the ``postgres`` OS user when the tests run as root
(``initdb`` and ``postgres`` refuse root).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx
import pytest
import sqlalchemy as sa

from freshid.events import audit
from freshid.methods.password import PasswordMethod
from freshid.settings import Settings
from freshid.storage import clients as client_store
from freshid.storage import keys as key_store
from freshid.storage import migrate
from freshid.storage import users as user_store
from freshid.storage.database import Database, normalise_url
from freshid.storage.tables import (
    access_tokens,
    authorization_codes,
    events,
    grants,
    refresh_tokens,
    sessions,
)
from tests.conftest import DEMO_PASSWORD, PG_URL, free_port
from tests.flows import REDIRECT_URI

START_TIMEOUT = 45.0
"""Seconds a node or PostgreSQL may take to come up on a busy machine."""


def wait_for(predicate: Callable[[], bool], seconds: float, what: str) -> None:
    """Poll ``predicate`` until it holds (backing off from 10 ms to 100 ms); fail naming ``what``
    after ``seconds``."""
    deadline = time.monotonic() + seconds
    delay = 0.01
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds:.0f}s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def require_postgres() -> None:
    if not PG_URL:
        pytest.skip("fault tests need PostgreSQL: set FRESHID_TEST_POSTGRES_URL")


# --- FreshID nodes as OS processes ------------------------------------------------------------


def _node_env(database_url: str, issuer: str) -> dict[str, str]:
    # Only the settings this node is given: a FRESHID_* variable of the test run must not leak in.
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRESHID_")}
    env.update(
        FRESHID_DATABASE_URL=database_url,
        FRESHID_ISSUER=issuer,
        PYTHONUNBUFFERED="1",  # its log is complete up to the moment it is killed
    )
    return env


@dataclass
class NodeProcess:
    """One ``freshid serve`` process on a loopback port; it may be killed and started again."""

    name: str
    database_url: str
    port: int
    issuer: str
    log_path: Path
    args: tuple[str, ...] = ()
    """Extra ``freshid serve`` arguments."""
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        self.launch()
        self.wait_ready()

    def launch(self) -> None:
        assert not self.alive(), f"node {self.name} is already running"
        with self.log_path.open("ab") as log:
            log.write(f"--- start node {self.name} ---\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "freshid.cli",
                    "serve",
                    "--port",
                    str(self.port),
                    *self.args,
                ],
                env=_node_env(self.database_url, self.issuer),
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self) -> None:
        wait_for(self._ready, START_TIMEOUT, f"node {self.name} to serve")

    def _ready(self) -> bool:
        if not self.alive():
            raise AssertionError(f"node {self.name} exited at start:\n{self.log()[-3000:]}")
        try:
            answer = httpx.get(f"{self.url}/.well-known/openid-configuration", timeout=2)
        except httpx.TransportError:
            return False
        return answer.status_code == 200 and answer.json()["issuer"] == self.issuer

    def kill9(self) -> None:
        """``kill -9``: no shutdown, no cleanup; in-flight requests and transactions are cut."""
        assert self.proc is not None and self.alive()
        os.kill(self.proc.pid, signal.SIGKILL)
        assert self.proc.wait(timeout=10) == -signal.SIGKILL

    def stop(self) -> None:
        if self.proc is None or not self.alive():
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text("utf-8", errors="replace")


class Spawn(Protocol):
    def __call__(
        self, name: str, database_url: str, port: int, issuer: str, *args: str, ready: bool = True
    ) -> NodeProcess: ...


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Spawn]:
    """Start ``freshid serve`` processes (name, database URL, port, issuer, extra arguments),
    waiting until each serves unless ``ready=False``; all still running are stopped after."""
    started: list[NodeProcess] = []

    def start(
        name: str, database_url: str, port: int, issuer: str, *args: str, ready: bool = True
    ) -> NodeProcess:
        log = tmp_path / f"node-{name}.log"
        node = NodeProcess(name, database_url, port, issuer, log, args)
        started.append(node)
        node.launch()
        if ready:
            node.wait_ready()
        return node

    yield start
    for node in started:
        node.stop()


def two_nodes(spawn: Spawn, database_url: str) -> tuple[NodeProcess, NodeProcess]:
    """Nodes A and B on one :func:`seed`-ed database with one issuer (A's URL), started together
    (the signing key exists already: neither creates one)."""
    port_a, port_b = free_port(), free_port()
    issuer = f"http://127.0.0.1:{port_a}"
    a = spawn("a", database_url, port_a, issuer, ready=False)
    b = spawn("b", database_url, port_b, issuer, ready=False)
    a.wait_ready()
    b.wait_ready()
    return a, b


# --- seeding and the events ledger ------------------------------------------------------------


@dataclass(frozen=True)
class Seed:
    email: str
    user_id: str
    client: tuple[str, str]


def seed(database_url: str, email: str = "alice@example.com") -> Seed:
    """The signing key, one user (password :data:`DEMO_PASSWORD`) and one confidential client,
    written directly."""
    defaults = Settings()
    hasher = PasswordMethod.from_settings(defaults, concurrency=1)
    db = Database(database_url)
    try:
        now = int(time.time())
        with db.write() as conn:
            key_store.ensure_active(conn, now)
            user = user_store.create(conn, email, hasher.hash_sync(DEMO_PASSWORD), now)
            client, secret = client_store.create(conn, "Fault RP", [REDIRECT_URI], now)
    finally:
        db.dispose()
    assert secret is not None
    return Seed(email, user.id, (client.client_id, secret))


@dataclass(frozen=True)
class Ledger:
    """What the events table says happened, after it was checked against the state tables."""

    events: int
    by_type: Counter[str]
    jtis: frozenset[str]
    """``jti`` of every ``token.issued`` and ``token.refreshed`` event."""
    refreshed_per_grant: Counter[str]


def check_ledger(database_url: str) -> Ledger:
    """No event lost, none invented, the chain intact.

    - ``freshid audit verify`` passes: one unbroken hash chain up to the head;
    - event ids are 1..N with no gap (ids are taken under the chain-head lock, in commit order, so a
      transaction that died never leaves a hole);
    - every committed change has its event, and every event its change: each access token row has
      exactly one ``token.issued``/``token.refreshed`` event with its ``jti`` and vice versa, each
      used refresh token one ``token.refreshed`` event of its grant, each session row one
      ``session.created`` event.
    """
    db = Database(database_url)
    try:
        report = audit.verify(db.read)
        assert report.ok, report.as_json()
        with db.read() as conn:
            rows = conn.execute(
                sa.select(events.c.id, events.c.type, events.c.session_id, events.c.data).order_by(
                    events.c.id
                )
            ).all()
            access_jtis = set(conn.execute(sa.select(access_tokens.c.jti)).scalars())
            used_refresh = Counter(
                conn.execute(
                    sa.select(refresh_tokens.c.grant_id).where(
                        refresh_tokens.c.used_at.is_not(None)
                    )
                ).scalars()
            )
            session_ids = set(conn.execute(sa.select(sessions.c.id)).scalars())
    finally:
        db.dispose()
    ids = [r.id for r in rows]
    assert ids == list(range(1, len(rows) + 1)), "event ids have gaps or do not start at 1"
    assert report.events == len(rows) and report.last_id == len(rows)
    by_type = Counter(r.type for r in rows)
    token_events = [r for r in rows if r.type in ("token.issued", "token.refreshed")]
    jtis = [r.data["jti"] for r in token_events]
    assert len(set(jtis)) == len(jtis), "one access token recorded by two events"
    assert set(jtis) == access_jtis, "access tokens and token events disagree"
    refreshed = Counter(r.data["grant_id"] for r in rows if r.type == "token.refreshed")
    assert refreshed == used_refresh, "used refresh tokens and token.refreshed events disagree"
    created = [r.session_id for r in rows if r.type == "session.created"]
    assert sorted(created) == sorted(session_ids), "sessions and session.created events disagree"
    return Ledger(len(rows), by_type, frozenset(jtis), refreshed)


def used_codes(database_url: str) -> int:
    db = Database(database_url)
    try:
        with db.read() as conn:
            return int(
                conn.execute(
                    sa.select(sa.func.count())
                    .select_from(authorization_codes)
                    .where(authorization_codes.c.used_at.is_not(None))
                ).scalar_one()
            )
    finally:
        db.dispose()


def revoked_grants(database_url: str) -> dict[str, str]:
    db = Database(database_url)
    try:
        with db.read() as conn:
            return {
                r.id: r.revoked_reason
                for r in conn.execute(
                    sa.select(grants.c.id, grants.c.revoked_reason).where(
                        grants.c.revoked_at.is_not(None)
                    )
                )
            }
    finally:
        db.dispose()


def jti_of(access_token: str) -> str:
    """The ``jti`` of an access token we were answered (read, not verified: the node signed it)."""
    payload = access_token.split(".")[1]
    claims: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return str(claims["jti"])


def waits(db: Database) -> Counter[str]:
    """What the other sessions on this database are waiting for: ``SyncRep`` (a commit waiting
    for a standby), ``Lock`` (a lock another transaction holds), ``idle in transaction`` (their
    client)."""
    with db.read() as conn:
        rows = conn.exec_driver_sql(
            "SELECT wait_event_type, wait_event, state FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).all()
    found: Counter[str] = Counter()
    for kind, event, state in rows:
        if event == "SyncRep":
            found["SyncRep"] += 1
        elif kind == "Lock":
            found["Lock"] += 1
        elif state and state.startswith("idle in transaction"):
            found["idle in transaction"] += 1
    return found


# --- a private PostgreSQL cluster -------------------------------------------------------------


def _pg_bin_dir() -> Path | None:
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: [int(part) for part in p.parent.name.split(".") if part.isdigit()],
    )
    for bin_dir in reversed(candidates):
        if (bin_dir / "pg_ctl").exists() and (bin_dir / "initdb").exists():
            return bin_dir
    found = shutil.which("pg_ctl")
    return Path(found).parent if found else None


@dataclass
class PrivatePostgres:
    """A PostgreSQL cluster of our own that a test may stop (``fast``, ``immediate``) and start."""

    bin_dir: Path
    base: Path
    port: int
    as_owner: list[str]

    @property
    def data_dir(self) -> Path:
        return self.base / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str, timeout: float = 60) -> None:
        done = subprocess.run(
            [*self.as_owner, *args],
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise AssertionError(
                f"{' '.join(args[:2])} failed ({done.returncode}): "
                f"{done.stdout.decode()[-2000:]} {done.stderr.decode()[-2000:]}\n"
                f"server log:\n{self.log()[-3000:]}"
            )

    def pg_ctl(self, *args: str) -> None:
        log = str(self.base / "postgres.log")
        self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-l", log, *args)

    def initdb(self) -> None:
        self._run(
            str(self.bin_dir / "initdb"),
            "-D",
            str(self.data_dir),
            "--auth=trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
        )
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write(
                f"\nlisten_addresses = '127.0.0.1'\nport = {self.port}\n"
                f"unix_socket_directories = '{self.base}'\n"
                # A process crash (-m immediate) keeps what was written to the OS; only a machine
                # crash would need fsync, and it makes every commit slow on a shared disk.
                "fsync = off\nmax_connections = 100\nshared_buffers = 32MB\n"
                "log_min_messages = warning\n"
            )

    def start(self) -> None:
        self.pg_ctl("start", "-w", "-t", str(int(START_TIMEOUT)))

    def hold_commits(self) -> None:
        """From now on a commit made with ``synchronous_commit = on`` (the default) is durable
        here but waits, not yet visible and not yet acknowledged, for a synchronous standby that
        does not exist: the moment between a commit and its answer, made to last."""
        self.execute(
            "ALTER SYSTEM SET synchronous_standby_names = 'freshid_absent_standby'",
            "SELECT pg_reload_conf()",
        )

    def release_commits(self, *, now: bool = True) -> None:
        """Require no standby again: held commits complete (``now=False``: from the next start
        on, so that a stop catches the held commits still waiting)."""
        reset = "ALTER SYSTEM RESET synchronous_standby_names"
        self.execute(*([reset, "SELECT pg_reload_conf()"] if now else [reset]))

    def execute(self, *statements: str) -> None:
        """Run statements as the superuser, outside a transaction (``ALTER SYSTEM`` and such)."""
        admin = sa.create_engine(normalise_url(self.url()), isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                for statement in statements:
                    conn.exec_driver_sql(statement)
        finally:
            admin.dispose()

    def stop(self, mode: str) -> None:
        """``fast``: abort sessions and shut down cleanly; ``immediate``: quit like a crash (the
        next start runs crash recovery)."""
        self.pg_ctl("stop", "-w", "-t", str(int(START_TIMEOUT)), "-m", mode)

    def restart(self, mode: str) -> None:
        self.pg_ctl("restart", "-w", "-t", str(int(START_TIMEOUT)), "-m", mode)

    def running(self) -> bool:
        return (self.data_dir / "postmaster.pid").exists()

    def log(self) -> str:
        path = self.base / "postgres.log"
        return path.read_text("utf-8", errors="replace") if path.exists() else ""


@pytest.fixture(scope="module")
def private_pg() -> Iterator[PrivatePostgres]:
    """A fresh PostgreSQL cluster on a free loopback port, with a migrated ``freshid`` database."""
    require_postgres()
    bin_dir = _pg_bin_dir()
    if bin_dir is None:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl) to run a private cluster")
    as_owner: list[str] = []
    owner: pwd.struct_passwd | None = None
    if os.geteuid() == 0:  # initdb and postgres refuse to run as root
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run PostgreSQL as")
        runuser = shutil.which("runuser")
        if runuser is None:
            pytest.skip("running as root and runuser is missing")
        as_owner = [runuser, "-u", "postgres", "--"]
    base = Path(tempfile.mkdtemp(prefix="freshid-pg-"))
    if owner is not None:
        os.chown(base, owner.pw_uid, owner.pw_gid)
    pg = PrivatePostgres(bin_dir, base, free_port(), as_owner)
    try:
        pg.initdb()
        pg.start()
        pg.execute('CREATE DATABASE "freshid"')
        db = Database(pg.url("freshid"))
        migrate.upgrade(db)
        db.dispose()
        yield pg
    finally:
        if pg.running():
            with contextlib.suppress(Exception):
                pg.stop("immediate")
        shutil.rmtree(base, ignore_errors=True)
