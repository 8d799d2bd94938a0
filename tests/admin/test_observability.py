"""Request ids, JSON logs and the Prometheus metrics endpoint."""

from __future__ import annotations

import json
import logging
import re

import httpx

from freshid.admin import keys as key_store
from freshid.admin import observability
from freshid.events import outbox
from freshid.events.catalog import EventType
from tests.conftest import RunningServer


def _key(server: RunningServer, *scopes: str) -> str:
    with server.provider.db.write() as conn:
        _, plaintext = key_store.create(conn, "prom", frozenset(scopes), server.clock.now())
    return plaintext


def test_request_ids(server: RunningServer) -> None:
    made = httpx.get(server.url + "/jwks")
    assert re.fullmatch(r"[0-9a-f]{16}", made.headers["x-request-id"])
    kept = httpx.get(server.url + "/jwks", headers={"x-request-id": "trace-abc.1"})
    assert kept.headers["x-request-id"] == "trace-abc.1"
    replaced = httpx.get(
        server.url + "/jwks", headers={"x-request-id": "bad id\u00e9".encode("latin-1") * 20}
    )
    assert re.fullmatch(r"[0-9a-f]{16}", replaced.headers["x-request-id"])


def test_json_log_lines_carry_the_request_id() -> None:
    record = logging.LogRecord(
        "freshid.test", logging.WARNING, __file__, 1, "hello %s", ("x",), None
    )
    token = observability.request_id.set("rid-1")
    try:
        line = observability.JsonFormatter().format(record)
    finally:
        observability.request_id.reset(token)
    entry = json.loads(line)
    assert entry["message"] == "hello x" and entry["request_id"] == "rid-1"
    assert entry["level"] == "warning" and entry["logger"] == "freshid.test"
    assert entry["ts"].endswith("+00:00")
    assert "request_id" not in json.loads(observability.JsonFormatter().format(record))


def test_metrics_need_a_key_and_count_requests_and_events(server: RunningServer) -> None:
    with server.provider.db.write() as conn:
        for _ in range(3):
            outbox.record(conn, EventType.AUTHENTICATION_FAILED, server.clock.now())
    assert httpx.get(server.url + "/metrics").status_code == 401
    wrong = _key(server, "events:read")
    assert (
        httpx.get(server.url + "/metrics", headers={"authorization": f"Bearer {wrong}"}).status_code
        == 403
    )
    key = _key(server, "metrics:read", "events:read")
    auth = {"authorization": f"Bearer {key}"}
    httpx.get(server.url + "/api/v1/events/1", headers=auth)
    r = httpx.get(server.url + "/metrics", headers=auth)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert 'freshid_events_total{type="authentication.failed"} 3' in text
    assert (
        'freshid_http_requests_total{route="/api/v1/events/{event_id}",method="GET",status="200"}'
        in text
    )
    assert 'freshid_http_request_duration_seconds_count{route="/api/v1/events/{event_id}"' in text
    assert 'freshid_webhook_deliveries{status="pending"} 0' in text
    assert "freshid_audit_chain_head_id " in text
    # Counting again reads only the new events.
    with server.provider.db.write() as conn:
        outbox.record(conn, EventType.AUTHENTICATION_FAILED, server.clock.now())
    again = httpx.get(server.url + "/metrics", headers=auth).text
    assert 'freshid_events_total{type="authentication.failed"} 4' in again
    for line in again.splitlines():
        assert line.startswith("#") or re.fullmatch(r"[a-z_]+(\{.*\})? [0-9.e+-]+", line), line
