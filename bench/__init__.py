"""FreshID benchmarks: each number next to the raw limit it is bounded by, measured in the same run.

``python -m bench`` runs everything and prints one Markdown table; ``python -m bench --quick`` is
a shorter run. The server under test runs in its own process (uvicorn, one worker) on a free
loopback port with a fresh SQLite database, and optionally on a throwaway PostgreSQL database
when ``FRESHID_BENCH_POSTGRES_URL`` is set. The load generator runs in this process. Every load
loop is bounded by a request count and by wall time. ``docs/benchmarks.md`` explains each number.
"""
