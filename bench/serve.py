"""The server under test, as its own process: ``python -m bench.serve --database-url URL --port N``.

One uvicorn worker on 127.0.0.1, warnings only, no access log; the schema is migrated at start.
``--profile FILE`` runs the database work inline on the event loop (no worker threads) under
cProfile and writes the stats to FILE on shutdown; it is for ``python -m bench.profile`` only.
"""

from __future__ import annotations

import argparse
import cProfile
import signal
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import uvicorn

from freshid import allocator, collector
from freshid.app import create_app
from freshid.provider import Provider
from freshid.settings import load_settings

T = TypeVar("T")


def _inline_database(provider: Provider) -> None:
    """Run units of work on the event-loop thread, so one cProfile sees the whole request."""

    async def write(fn: Callable[[Any], T]) -> T:
        with provider.db.write() as conn:
            return fn(conn)

    async def read(fn: Callable[[Any], T]) -> T:
        with provider.db.read() as conn:
            return fn(conn)

    provider.write = write  # type: ignore[method-assign]
    provider.read = read  # type: ignore[method-assign]


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.serve")
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--profile", help="write cProfile stats here on shutdown")
    args = parser.parse_args()
    allocator.restart_tuned(["-m", "bench.serve", *sys.argv[1:]])  # as `freshid serve` does
    # environ={}: the benchmark's server must not pick up FRESHID_* settings from the shell.
    settings = load_settings(environ={}, database_url=args.database_url, port=args.port)
    provider = Provider(settings)
    if args.profile:
        _inline_database(provider)
    app = create_app(settings, provider=provider)
    collector.freeze_startup_objects()  # as `freshid serve` does
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        proxy_headers=False,  # as `freshid serve` runs it
        lifespan="on",
        workers=1,
    )
    server = uvicorn.Server(config)
    if not args.profile:
        server.run()
        return 0
    # uvicorn re-raises the stop signal once it has shut down; let it return here instead, so the
    # stats get written.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: None)
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        server.run()
    finally:
        profiler.disable()
        profiler.dump_stats(args.profile)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
