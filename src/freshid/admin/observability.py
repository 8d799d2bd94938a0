"""Operators' instruments: request ids, structured JSON logs, and Prometheus metrics.

- **Request ids.** Every HTTP request gets an id: the caller's ``X-Request-ID`` if it is a short
  token (at most 64 characters of ``[A-Za-z0-9._-]``), otherwise a fresh random one. It is echoed
  in the ``X-Request-ID`` response header and attached to every log record written while the
  request is handled (a context variable, so worker threads started with ``anyio.to_thread``,
  which copy the context, carry it too).
- **JSON logs.** :class:`JsonFormatter` writes one JSON object per line: ``ts`` (RFC 3339, UTC),
  ``level``, ``logger``, ``message``, ``request_id`` when there is one. Messages are what the
  code logs; FreshID's loggers never include secrets, query strings or bodies
  (:mod:`freshid.web.access_log`), and this formatter adds nothing from the request but its id.
- **Metrics** in the Prometheus text exposition format (version 0.0.4) at ``/metrics``:
  HTTP requests by route template, method and status, and their latency histogram (per process);
  events by type, webhook deliveries by status, endpoints by state and the chain head (from the
  database, so the same on every node). ``/metrics`` wants an admin API key with the
  ``metrics:read`` scope (Prometheus: ``authorization: {credentials: fid_...}``): event counts
  by type say how many people sign in and fail to.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import secrets
import threading
import time
import weakref
from bisect import bisect_left
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from freshid.events import chain
from freshid.storage.database import Database
from freshid.storage.tables import events
from freshid.storage.tables_events import webhook_deliveries, webhook_endpoints

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "freshid_request_id", default=None
)
_GOOD_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


# -- JSON logs ----------------------------------------------------------------------------------


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = request_id.get()
        if rid is not None:
            entry["request_id"] = rid
        if record.exc_info and record.exc_info[0] is not None:
            # The type only: exception texts may echo request data.
            entry["exception"] = record.exc_info[0].__name__
        return json.dumps(entry, ensure_ascii=False, separators=(",", ":"))


def use_json_logs(level: int = logging.INFO) -> None:
    """Send every log record to stderr as one JSON line (replaces the root handlers)."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


# -- metrics registry ---------------------------------------------------------------------------


class HttpMetrics:
    """Per-process HTTP counters and latency histograms, keyed by route template."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, str], int] = defaultdict(int)
        self.buckets: dict[tuple[str, str], list[int]] = {}
        self.sums: dict[tuple[str, str], float] = defaultdict(float)

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(route, method, str(status))] += 1
            counts = self.buckets.setdefault((route, method), [0] * (len(BUCKETS) + 1))
            counts[bisect_left(BUCKETS, seconds)] += 1
            self.sums[(route, method)] += seconds

    def render(self) -> list[str]:
        lines = [
            "# HELP freshid_http_requests_total HTTP requests handled by this process.",
            "# TYPE freshid_http_requests_total counter",
        ]
        with self._lock:
            for (route, method, status), n in sorted(self.requests.items()):
                labels = _labels(route=route, method=method, status=status)
                lines.append(f"freshid_http_requests_total{labels} {n}")
            lines += [
                "# HELP freshid_http_request_duration_seconds Time to the end of the response.",
                "# TYPE freshid_http_request_duration_seconds histogram",
            ]
            for (route, method), counts in sorted(self.buckets.items()):
                running = 0
                for bound, n in zip((*BUCKETS, float("inf")), counts, strict=True):
                    running += n
                    le = "+Inf" if bound == float("inf") else repr(bound)
                    labels = _labels(route=route, method=method, le=le)
                    lines.append(f"freshid_http_request_duration_seconds_bucket{labels} {running}")
                labels = _labels(route=route, method=method)
                lines.append(
                    f"freshid_http_request_duration_seconds_sum{labels} "
                    f"{self.sums[(route, method)]:.6f}"
                )
                lines.append(f"freshid_http_request_duration_seconds_count{labels} {running}")
        return lines


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"


class EventCounts:
    """Events by type across the whole cluster, read incrementally from the events table.

    Ids follow commit order (freshid.events.chain), so counting ``id > last`` on each scrape is
    exact: nothing committed behind the mark is ever missed.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.after = 0
        self.counts: dict[str, int] = defaultdict(int)

    def refresh(self, conn: Connection) -> None:
        with self._lock:
            head, _ = chain.read_head(conn)
            if head < self.after:  # the store was reset
                self.after, self.counts = 0, defaultdict(int)
            if head == self.after:
                return
            rows = conn.execute(
                sa.select(events.c.type, sa.func.count())
                .where(events.c.id > self.after, events.c.id <= head)
                .group_by(events.c.type)
            )
            for kind, n in rows:
                self.counts[str(kind)] += int(n)
            self.after = head


def store_metrics(conn: Connection, counts: EventCounts, now: int) -> list[str]:
    counts.refresh(conn)
    lines = [
        "# HELP freshid_events_total Events committed, by type (all nodes).",
        "# TYPE freshid_events_total counter",
    ]
    lines += [
        f"freshid_events_total{_labels(type=t)} {n}" for t, n in sorted(counts.counts.items())
    ]
    head, _ = chain.read_head(conn)
    lines += [
        "# HELP freshid_audit_chain_head_id Id of the last event in the audit chain.",
        "# TYPE freshid_audit_chain_head_id gauge",
        f"freshid_audit_chain_head_id {head}",
    ]
    d, e = webhook_deliveries, webhook_endpoints
    by_status: dict[Any, Any] = dict(
        conn.execute(sa.select(d.c.status, sa.func.count()).group_by(d.c.status)).all()
    )
    lines += [
        "# HELP freshid_webhook_deliveries Webhook deliveries by status.",
        "# TYPE freshid_webhook_deliveries gauge",
    ]
    for status in ("pending", "succeeded", "failed"):
        lines.append(
            f"freshid_webhook_deliveries{_labels(status=status)} {int(by_status.get(status, 0))}"
        )
    oldest = conn.execute(
        sa.select(sa.func.min(d.c.created_at)).where(
            d.c.status == "pending", d.c.next_attempt_at <= now
        )
    ).scalar()
    lines += [
        "# HELP freshid_webhook_oldest_due_seconds Age of the oldest due, undelivered delivery.",
        "# TYPE freshid_webhook_oldest_due_seconds gauge",
        f"freshid_webhook_oldest_due_seconds {max(0, now - int(oldest)) if oldest else 0}",
    ]
    enabled: dict[Any, Any] = dict(
        conn.execute(sa.select(e.c.enabled, sa.func.count()).group_by(e.c.enabled)).all()
    )
    lines += [
        "# HELP freshid_webhook_endpoints Webhook endpoints by state.",
        "# TYPE freshid_webhook_endpoints gauge",
        f'freshid_webhook_endpoints{{state="enabled"}} {int(enabled.get(True, 0))}',
        f'freshid_webhook_endpoints{{state="disabled"}} {int(enabled.get(False, 0))}',
    ]
    return lines


# -- middleware ---------------------------------------------------------------------------------


def _route_label(scope: Scope, root_path: str) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        return "unmatched"
    mount = str(scope.get("root_path", ""))[len(root_path) :]
    return (mount + path)[:200]


HTTP_METRICS = HttpMetrics()
"""This process's HTTP metrics (several apps in one process, as in tests, share them)."""

_EVENT_COUNTS: weakref.WeakKeyDictionary[Database, EventCounts] = weakref.WeakKeyDictionary()
_EVENT_COUNTS_LOCK = threading.Lock()


def event_counts(db: Database) -> EventCounts:
    with _EVENT_COUNTS_LOCK:
        return _EVENT_COUNTS.setdefault(db, EventCounts())


class Observability:
    """Outermost middleware: request id (context + header) and HTTP metrics."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics | None = None) -> None:
        self.app = app
        self.metrics = metrics or HTTP_METRICS

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        rid = incoming if _GOOD_ID.match(incoming) else secrets.token_hex(8)
        token = request_id.set(rid)
        root_path = str(scope.get("root_path", ""))
        started = time.perf_counter()
        status = 500

        async def wrapped(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, wrapped)
        finally:
            method = str(scope.get("method", ""))
            self.metrics.observe(
                _route_label(scope, root_path),
                method if method in _METHODS else "other",  # labels stay a bounded set
                status,
                time.perf_counter() - started,
            )
            request_id.reset(token)
