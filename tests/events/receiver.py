"""A webhook receiver on a loopback port that records requests and fails or stalls on purpose."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Receiver:
    url: str
    requests: list[Received] = field(default_factory=list)
    # status to answer for the n-th request (0-based); the default answers 200
    respond: Callable[[int, Received], int] = lambda _n, _r: 200
    stall: threading.Event | None = None
    """When set to an unset Event, requests wait for it (at most 30 s) before answering."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ids(self) -> list[str]:
        with self.lock:
            return [r.headers["webhook-id"] for r in self.requests]


@contextmanager
def receiver() -> Iterator[Receiver]:
    state: Receiver | None = None

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            assert state is not None
            length = int(self.headers.get("content-length", "0"))
            got = Received(
                {k.lower(): v for k, v in self.headers.items()},
                self.rfile.read(length),
                time.time(),
            )
            with state.lock:
                n = len(state.requests)
                state.requests.append(got)
            if state.stall is not None:
                state.stall.wait(timeout=30)
            status = state.respond(n, got)
            self.send_response(status)
            self.send_header("content-length", "2")
            self.end_headers()
            with suppress(OSError):
                self.wfile.write(b"ok")

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state = Receiver(f"http://127.0.0.1:{server.server_address[1]}/hook")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield state
    finally:
        if state.stall is not None:
            state.stall.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
