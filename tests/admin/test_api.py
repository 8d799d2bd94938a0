"""The admin API over HTTP: keys and scopes, events with the cursor, users, sessions, clients,
webhook endpoints, the OpenAPI document, and JSON errors."""

from __future__ import annotations

import secrets
import threading
from typing import Any

import httpx
import pytest

from freshid.admin import keys as key_store
from freshid.admin.api import ROUTES
from freshid.events import outbox
from freshid.events.catalog import EventType
from freshid.storage.tables import sessions
from tests.admin.api_client import admin_key as _key
from tests.admin.api_client import api_client as _client
from tests.conftest import RunningServer


def test_keys_scopes_and_revocation(server: RunningServer) -> None:
    with _client(server) as anon:
        r = anon.get("/events")
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["status"] == 401
        bad = anon.get("/events", headers={"authorization": "Bearer fid_nope_nope"})
        assert bad.status_code == 401 and 'error="invalid_token"' in bad.headers["www-authenticate"]
    key = _key(server, "users:read")
    with _client(server, key) as c:
        assert c.get("/users").status_code == 200
        r = c.get("/events")
        assert r.status_code == 403 and "insufficient_scope" in r.headers["www-authenticate"]
        # A right id with a wrong secret is refused.
        forged = key.rsplit("_", 1)[0] + "_" + secrets.token_urlsafe(32)
        assert c.get("/users", headers={"authorization": f"Bearer {forged}"}).status_code == 401
    with server.provider.db.write() as conn:
        (stored,) = key_store.all_keys(conn)
        assert key not in str(conn.exec_driver_sql("SELECT * FROM admin_api_keys").all())
        assert key_store.revoke(conn, stored.id, server.clock.now())
    with _client(server, key) as c:
        assert c.get("/users").status_code == 401


def test_events_pages_filters_and_cursor(server: RunningServer) -> None:
    db = server.provider.db
    with db.write() as conn:
        for i in range(25):
            outbox.record(
                conn, EventType.SESSION_CREATED, 1000 + i, user_id=f"u{i % 2}", session_id=f"s{i}"
            )
    with _client(server, _key(server, "events:read")) as c:
        seen: list[int] = []
        cursor = None
        for _ in range(20):
            params: dict[str, Any] = {"limit": 10, "type": "session.created"}
            if cursor:
                params["cursor"] = cursor
            body = c.get("/events", params=params).json()
            seen += [e["id"] for e in body["data"]]
            cursor = body["next_cursor"]
            if not body["has_more"]:
                break
        assert len(seen) == 25 and len(set(seen)) == 25
        assert c.get("/events", params={"cursor": cursor}).json()["data"] == []
        only = c.get("/events", params={"user_id": "u1", "since": 1010, "until": 1020}).json()
        assert {e["user_id"] for e in only["data"]} == {"u1"}
        assert all(1010 <= e["occurred_at"] < 1020 for e in only["data"])
        one = c.get(f"/events/{seen[0]}").json()
        assert one["id"] == seen[0] and len(one["hash"]) == 64
        assert c.get("/events/999999").status_code == 404
        for params in [
            {"limit": 1001},
            {"limit": 0},
            {"limit": "x"},
            {"cursor": "garbage"},
            {"type": "nope"},
            {"since": "-1"},
            {"since": str(2**70)},
            {"user_id": "a\x00b"},
        ]:
            r = c.get("/events", params=params)
            assert r.status_code == 400, params
            assert r.headers["content-type"] == "application/problem+json"


def test_events_api_cursor_under_concurrent_writers(server: RunningServer) -> None:
    db = server.provider.db
    stop = threading.Event()

    def writer(w: int) -> None:
        for i in range(40):
            if stop.is_set():
                return
            with db.write() as conn:
                outbox.record(conn, EventType.TOKEN_ISSUED, 1, client_id=f"c{w}", n=i)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(3)]
    for t in threads:
        t.start()
    seen: list[int] = []
    cursor: str | None = None
    with _client(server, _key(server, "events:read")) as c:
        for _ in range(500):
            alive = any(t.is_alive() for t in threads)
            params: dict[str, Any] = {"limit": 5, "type": "token.issued"}
            if cursor:
                params["cursor"] = cursor
            body = c.get("/events", params=params).json()
            seen += [e["id"] for e in body["data"]]
            cursor = body["next_cursor"]
            if not alive and not body["has_more"]:
                break
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert len(seen) == 120 and len(set(seen)) == 120 and seen == sorted(seen)


def test_users_sessions_and_clients(server: RunningServer) -> None:
    user_id = server.create_user("ada@example.com")
    client_id, _ = server.create_client("https://rp.example/cb")
    now = server.clock.now()
    with server.provider.db.write() as conn:
        for sid, auth_time in [("sess1", now - 100), ("sess2", now - 5)]:
            conn.execute(
                sessions.insert().values(
                    id=sid,
                    user_id=user_id,
                    cookie_digest=secrets.token_hex(16),
                    created_at=now - 200,
                    auth_time=auth_time,
                    last_seen_at=now,
                    expires_at=now + 3600,
                )
            )
    with _client(server, _key(server)) as c:
        users = c.get("/users").json()["data"]
        assert [u["email"] for u in users] == ["ada@example.com"]
        assert c.get(f"/users/{user_id}").json()["id"] == user_id
        assert c.get("/users/nobody").status_code == 404
        listed = c.get(f"/users/{user_id}/sessions").json()["data"]
        ages = {s["id"]: s["proof_age"] for s in listed}
        assert set(ages) == {"sess1", "sess2"}  # a second may pass between insert and request
        assert 100 <= ages["sess1"] < 110 and 5 <= ages["sess2"] < 15
        r = c.post("/sessions/sess1/revoke")
        assert r.status_code == 200 and r.json()["changed"] is True
        assert c.post("/sessions/sess1/revoke").json()["changed"] is False
        assert c.post("/sessions/nope/revoke").status_code == 404
        active = c.get(f"/users/{user_id}/sessions", params={"active": "true"}).json()["data"]
        assert [s["id"] for s in active] == ["sess2"]
        assert c.post(f"/users/{user_id}/sessions/revoke").json()["revoked"] == ["sess2"]
        assert c.get("/users/nobody/sessions").status_code == 404
        clients = c.get("/clients").json()["data"]
        assert [x["client_id"] for x in clients] == [client_id]
        revoked = c.get("/events", params={"type": "session.revoked"}).json()["data"]
        assert {e["session_id"] for e in revoked} == {"sess1", "sess2"}
        assert all(e["data"]["reason"] == "admin" for e in revoked)


def test_webhook_endpoints_through_the_api(server: RunningServer) -> None:
    with _client(server, _key(server)) as c:
        r = c.post(
            "/webhooks",
            json={"url": "https://hooks.example/in", "event_types": ["session.revoked"]},
        )
        assert r.status_code == 201
        created = r.json()
        assert created["secret"].startswith("whsec_") and created["enabled"]
        eid = created["id"]
        shown = c.get(f"/webhooks/{eid}").json()
        assert "secret" not in shown and created["secret"] not in str(shown)
        assert [e["id"] for e in c.get("/webhooks").json()["data"]] == [eid]
        patched = c.patch(f"/webhooks/{eid}", json={"description": "SIEM", "event_types": []})
        assert patched.json()["description"] == "SIEM" and patched.json()["event_types"] == []
        rotated = c.post(f"/webhooks/{eid}/rotate-secret").json()
        assert rotated["secret"].startswith("whsec_") and rotated["secret"] != created["secret"]
        assert len(c.get(f"/webhooks/{eid}").json()["secrets"]) == 2
        off = c.post(f"/webhooks/{eid}/disable").json()
        assert off["enabled"] is False and off["disabled_reason"]
        assert c.post(f"/webhooks/{eid}/enable").json()["enabled"] is True
        assert c.get(f"/webhooks/{eid}/deliveries").json()["data"] == []
        assert c.get(f"/webhooks/{eid}/deliveries", params={"status": "x"}).status_code == 400
        for body in [
            {"url": "http://hooks.example/"},
            {"url": "https://hooks.example/", "event_types": ["nope"]},
            {"url": 5},
            {},
        ]:
            assert c.post("/webhooks", json=body).status_code == 422, body
        assert c.post("/webhooks", content=b"[1,").status_code == 400
        assert c.post("/webhooks", content=b"[]").status_code == 400
        assert c.delete(f"/webhooks/{eid}").status_code == 204
        assert c.get(f"/webhooks/{eid}").status_code == 404
        assert c.delete(f"/webhooks/{eid}").status_code == 404


def test_errors_are_json(server: RunningServer) -> None:
    with _client(server, _key(server)) as c:
        r = c.get("/no/such/route")
        assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
        r = c.put("/events")
        assert r.status_code == 405 and r.json()["status"] == 405


def test_the_openapi_document_describes_every_route(server: RunningServer) -> None:
    doc = httpx.get(server.url + "/api/v1/openapi.json").json()
    assert doc["openapi"] == "3.1.0"
    described = {(path, method.upper()) for path, ops in doc["paths"].items() for method in ops}
    assert described == {(path, method) for path, method, _scope, _h in ROUTES}
    for path, ops in doc["paths"].items():
        for op in ops.values():
            assert op["security"] and "401" in op["responses"], path


@pytest.mark.parametrize("scope", ["events:read", "webhooks:write"])
def test_parse_scopes(scope: str) -> None:
    assert key_store.parse_scopes([scope]) == frozenset({scope})
    with pytest.raises(ValueError):
        key_store.parse_scopes(["root"])
    with pytest.raises(ValueError):
        key_store.parse_scopes([])
