"""The server's glibc malloc tunables: set when nobody chose any, never over an operator's, and a
command-line ``freshid serve`` really runs under them."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from freshid.allocator import TUNABLES, tuned_environment
from tests.conftest import free_port

GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"


@pytest.mark.skipif(not GLIBC, reason="glibc tunables")
def test_the_tunables_are_added_to_an_environment_without_any() -> None:
    assert tuned_environment({"PATH": "/usr/bin"}) == {
        "PATH": "/usr/bin",
        "GLIBC_TUNABLES": TUNABLES,
    }


def test_an_operators_tunables_are_kept_as_they_are() -> None:
    assert tuned_environment({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}) is None


@pytest.mark.skipif(not GLIBC, reason="glibc tunables")
def test_freshid_serve_restarts_itself_under_the_tunables(tmp_path: Path) -> None:
    port = free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("FRESHID_", "GLIBC_"))}
    environ["FRESHID_DATABASE_URL"] = f"sqlite:///{tmp_path / 'freshid.db'}"
    server = subprocess.Popen(
        [sys.executable, "-m", "freshid", "serve", "--port", str(port)],
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/jwks", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            pytest.fail("the server did not start")
        # Same process (execve), now with the tunables in its environment.
        started = (Path(f"/proc/{server.pid}/environ").read_bytes()).split(b"\0")
        assert any(v.startswith(b"GLIBC_TUNABLES=glibc.malloc.mmap_threshold=") for v in started)
        assert b"-m\0freshid\0serve" in Path(f"/proc/{server.pid}/cmdline").read_bytes()
    finally:
        server.terminate()
        server.wait(timeout=15)
