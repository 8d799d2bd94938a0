"""``python -m bench.ab OTHER_CHECKOUT [--in-flight 16] [--rounds 6] [--seconds 8]``: the refresh
grant on two builds, side by side, their loops alternating.

One server runs this checkout, one the checkout at ``OTHER_CHECKOUT`` (make one with
``git worktree add /tmp/before HEAD~1``), each ``bench.serve`` on its own fresh SQLite store
seeded as in :mod:`bench.peers`. Each round runs the same closed refresh loop
(:func:`bench.token.refresh_load`) against one server and then the other, in turns (A B, B A,
...), so a machine that speeds up or slows down meanwhile (this 2-core one does, by 2-3x across a
day) weighs on both alike. Each loop prints its rate, p99, and the size of that store's WAL file;
the end prints each build's rates sorted and their medians. Both builds must share the schema:
the stores are migrated by this checkout.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from dataclasses import replace
from pathlib import Path
from statistics import median

from bench.flows import Browser
from bench.plan import FULL
from bench.server import REPO_ROOT, seed, sqlite_store, start_server
from bench.stats import BenchError, ms
from bench.token import Chain, make_chains, refresh_load
from freshid.methods.password import PasswordMethod
from freshid.settings import load_settings
from freshid.storage.database import sqlite_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__)
    parser.add_argument("other", type=Path, help="the other build's checkout")
    parser.add_argument("--in-flight", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=6, help="loops per build")
    parser.add_argument("--seconds", type=float, default=8.0, help="measured time per loop")
    args = parser.parse_args(argv)
    if not (args.other / "src" / "freshid").is_dir():
        parser.error(f"{args.other} is not a FreshID checkout")
    plan = replace(FULL, load_seconds=args.seconds)
    settings = load_settings(environ={})
    hasher = PasswordMethod.from_settings(settings, concurrency=1)
    builds = {"this checkout": REPO_ROOT, str(args.other): args.other.resolve()}
    rates: dict[str, list[float]] = {name: [] for name in builds}
    with contextlib.ExitStack() as stack:
        runs = []
        for name, root in builds.items():
            store = stack.enter_context(sqlite_store())
            seeded = seed(store, hasher)
            server = start_server(store, root=root)
            stack.callback(server.stop)
            browser = stack.enter_context(contextlib.closing(Browser(server.url, seeded)))
            chains: list[Chain] = make_chains(browser, args.in_flight)
            wal = Path(sqlite_path(store.url) + "-wal")
            runs.append((name, server, seeded, chains, wal))
        for i in range(args.rounds):
            for name, server, seeded, chains, wal in runs if i % 2 == 0 else runs[::-1]:
                result = refresh_load(server, seeded, chains, plan, args.in_flight)
                rates[name].append(result.rps)
                size = wal.stat().st_size / 2**20 if wal.exists() else 0.0
                print(
                    f"{name}: {result.rps:,.0f}/s, p99 {ms(result.latencies.p99)}, "
                    f"WAL {size:,.0f} MiB",
                    flush=True,
                )
    for name, values in rates.items():
        listed = ", ".join(f"{v:,.0f}" for v in sorted(values))
        print(f"{name}: median {median(values):,.0f}/s ({listed})")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        sys.exit(f"bench.ab: {exc}")
