"""``python -m bench.profile``: where a refresh grant's server time goes, by cProfile.

The server runs as in the benchmark but with its database work inline on the event loop (one
thread, so one profiler sees the whole request: HTTP parsing, Starlette, client authentication,
SQLAlchemy, SQLite, signing) and is driven by one refresh chain, one request at a time. The top
functions by own time and by cumulative time are printed; ``--out FILE`` keeps the raw stats for
``python -m pstats`` or snakeviz.
"""

from __future__ import annotations

import argparse
import io
import pstats
import shutil
import sys
from dataclasses import replace
from pathlib import Path

from bench import stepup
from bench.flows import Browser
from bench.plan import QUICK
from bench.server import Seeded, ServerProcess, seed, sqlite_store, start_server
from bench.token import make_chains, refresh_load
from freshid.methods.password import PasswordMethod
from freshid.settings import load_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument(
        "--flow",
        choices=["refresh", "stepup"],
        default="refresh",
        help="refresh grants (default) or password step-up rounds",
    )
    parser.add_argument("--requests", type=int, default=2000, help="refreshes or rounds")
    parser.add_argument("--seconds", type=float, default=20.0, help="wall-time bound")
    parser.add_argument("--top", type=int, default=30, help="rows per listing")
    parser.add_argument("--out", type=Path, help="also keep the raw cProfile stats here")
    args = parser.parse_args(argv)
    settings = load_settings(environ={})
    hasher = PasswordMethod.from_settings(settings, concurrency=1)
    with sqlite_store() as store:
        seeded = seed(store, hasher)
        stats_path = store.workdir / "refresh.prof"
        server = start_server(store, profile=stats_path)
        try:
            if args.flow == "refresh":
                summary = _refresh(server, seeded, args.requests, args.seconds)
            else:
                summary = _stepup(server, seeded, args.requests, args.seconds)
        finally:
            server.stop()
        if not stats_path.exists():
            print("bench.profile: the server wrote no profile", file=sys.stderr)
            return 1
        if args.out:
            shutil.copyfile(stats_path, args.out)
        out = io.StringIO()
        stats = pstats.Stats(str(stats_path), stream=out)
        print(f"# {summary}; database work inline on the event loop\n")
        stats.strip_dirs().sort_stats("tottime").print_stats(args.top)
        stats.sort_stats("cumulative").print_stats(args.top)
        print(out.getvalue())
    return 0


def _refresh(server: ServerProcess, seeded: Seeded, requests: int, seconds: float) -> str:
    browser = Browser(server.url, seeded)
    try:
        chains = make_chains(browser, 1)
    finally:
        browser.close()
    plan = replace(QUICK, warmup_seconds=0.0, load_seconds=seconds, max_requests=requests)
    result = refresh_load(server, seeded, chains, plan, 1)
    return (
        f"{result.requests} refreshes, 1 in flight (profiled: {result.rps:,.0f}/s, "
        f"p50 {result.latencies.p50:.2f} ms)"
    )


def _stepup(server: ServerProcess, seeded: Seeded, rounds: int, seconds: float) -> str:
    plan = replace(QUICK, stepup_rounds=rounds, stepup_seconds=seconds, argon2_runs=1)
    settings = load_settings(environ={}, port=server.port)
    result = stepup.run(server, seeded, settings, plan)
    return (
        f"{result.rounds} step-up rounds (profiled: p50 {result.total.p50:.1f} ms; argon2id runs "
        "in a worker thread, outside this profile)"
    )


if __name__ == "__main__":
    raise SystemExit(main())
