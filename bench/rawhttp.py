"""A minimal HTTP/1.1 keep-alive client on asyncio streams, for the load loops only.

Why not httpx: an ``httpx.AsyncClient`` request costs the load generator 1.2-3.6 ms of CPU on this
stack (1 to 16 connections: httpcore's pool re-checks every connection on every request, and
without ``sniffio`` installed it also retries a failing import each time), ten or more times the
0.15-0.2 ms the server spends on a discovery GET, so the client, not the server, would set the
measured rate. This client
writes pre-built request bytes and reads a ``Content-Length`` body: about 0.1 ms of CPU per request.
The code flows that set the load up, and the step-up rounds, use httpx as a relying party would.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType

from bench.stats import BenchError

_HEADER_LIMIT = 64 * 1024


def request_bytes(
    method: str, path: str, host: str, headers: dict[str, str] | None = None, body: bytes = b""
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class Connection:
    """One keep-alive connection; one request at a time."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> Connection:
        self._reader, self._writer = await asyncio.open_connection(
            self.host, self.port, limit=_HEADER_LIMIT
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()

    async def send(self, raw: bytes) -> tuple[int, bytes]:
        """Send a complete request; return the status and the body."""
        if self._reader is None or self._writer is None:
            raise BenchError("connection not open")
        self._writer.write(raw)
        try:
            head = await self._reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError) as exc:
            raise BenchError(f"the server closed the connection: {exc!r}") from None
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length: int | None = None
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
            elif name.strip().lower() == b"transfer-encoding":
                raise BenchError("chunked responses are not supported by the load client")
        if length is None:
            raise BenchError("response without Content-Length")
        body = await self._reader.readexactly(length)
        return status, body
