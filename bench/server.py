"""The server under test: a fresh store (SQLite in a temp dir, or a throwaway PostgreSQL
database), seeded with one user and one confidential client, served by ``bench.serve`` in a
separate process on a free loopback port. Reads the process's CPU time and memory from /proc."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import sqlalchemy as sa

from bench.stats import BenchError
from freshid.clock import SystemClock
from freshid.methods.password import PasswordMethod
from freshid.settings import Settings, load_settings
from freshid.storage import clients as client_store
from freshid.storage import migrate
from freshid.storage import users as user_store
from freshid.storage.database import Database, normalise_url

REPO_ROOT = Path(__file__).resolve().parent.parent
EMAIL = "bench@example.com"
PASSWORD = "correct horse battery staple"
REDIRECT_URI = "http://127.0.0.1:9/cb"
_START_TIMEOUT = 30.0
_CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Store:
    name: str
    """``sqlite`` or ``postgresql``."""
    url: str
    workdir: Path


@contextlib.contextmanager
def sqlite_store() -> Iterator[Store]:
    with tempfile.TemporaryDirectory(prefix="freshid-bench-") as tmp:
        yield Store("sqlite", f"sqlite:///{tmp}/freshid.sqlite3", Path(tmp))


@contextlib.contextmanager
def postgres_store(admin_url: str) -> Iterator[Store]:
    """A throwaway database on the server behind ``admin_url``, dropped afterwards."""
    name = f"freshid_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(normalise_url(admin_url), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            with tempfile.TemporaryDirectory(prefix="freshid-bench-") as tmp:
                yield Store("postgresql", admin_url.rsplit("/", 1)[0] + "/" + name, Path(tmp))
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


@dataclass(frozen=True)
class Seeded:
    client_id: str
    client_secret: str
    email: str
    password: str
    redirect_uri: str


def seed(store: Store, hasher: PasswordMethod) -> Seeded:
    """Migrate the store and add the benchmark's user and client (before the server starts)."""
    db = Database(store.url)
    try:
        migrate.upgrade(db)
        now = SystemClock().now()
        with db.write() as conn:
            user_store.create(conn, EMAIL, hasher.hash_sync(PASSWORD), now)
            client, secret = client_store.create(conn, "Bench RP", [REDIRECT_URI], now)
    finally:
        db.dispose()
    assert secret is not None
    return Seeded(client.client_id, secret, EMAIL, PASSWORD, REDIRECT_URI)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    def __init__(self, proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.proc = proc
        self.port = port
        self.log = log
        self.url = f"http://127.0.0.1:{port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _status_kib(self, field: str) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise BenchError(f"no {field} in /proc/{self.pid}/status")

    def rss_kib(self) -> int:
        return self._status_kib("VmRSS")

    def peak_rss_kib(self) -> int:
        return self._status_kib("VmHWM")

    def cpu_seconds(self) -> float:
        """User + system CPU time of the whole server process (all its threads)."""
        stat = Path(f"/proc/{self.pid}/stat").read_text()
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _CLK_TCK

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise BenchError(f"the server exited with {self.proc.returncode}:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def wait_ready(
    server: ServerProcess,
    path: str = "/.well-known/openid-configuration",
    *,
    any_status: bool = False,
) -> bool:
    """Poll ``path`` until it answers 200 (any status with ``any_status``) or the server exits."""
    deadline = time.monotonic() + _START_TIMEOUT
    with httpx.Client(timeout=2) as http:
        while time.monotonic() < deadline:
            if server.proc.poll() is not None:
                return False
            with contextlib.suppress(httpx.TransportError):
                status = http.get(server.url + path).status_code
                if any_status or status == 200:
                    return True
            time.sleep(0.05)
    return False


def start_server(
    store: Store, profile: Path | None = None, root: Path = REPO_ROOT
) -> ServerProcess:
    """Start ``bench.serve`` on a free port (a few tries, in case another process takes it),
    from the checkout at ``root`` (another build's, for :mod:`bench.ab`)."""
    env = dict(os.environ)
    paths = (str(root / "src"), str(root), env.get("PYTHONPATH", ""))
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    last_log = ""
    for attempt in range(3):
        port = free_port()
        log = store.workdir / f"server-{port}-{attempt}.log"
        command = [
            sys.executable,
            "-m",
            "bench.serve",
            "--database-url",
            store.url,
            "--port",
            str(port),
        ]
        if profile is not None:
            command += ["--profile", str(profile)]
        with log.open("wb") as out:
            proc = subprocess.Popen(
                command, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        server = ServerProcess(proc, port, log)
        if wait_ready(server):
            return server
        server.stop()
        last_log = server.log_tail()
    raise BenchError(f"the server did not start:\n{last_log}")


def settings_for(store: Store, server: ServerProcess) -> Settings:
    """The settings the server process runs with (for in-process work on the same store)."""
    return load_settings(environ={}, database_url=store.url, port=server.port)
