"""Webhooks: Standard Webhooks signatures, fan-out, retries on schedule, disabling, claims."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import anyio
import httpx
import pytest
import sqlalchemy as sa
from standardwebhooks import Webhook, WebhookVerificationError

from freshid.events import delivery, outbox
from freshid.events import webhooks as hooks
from freshid.events.catalog import EventType
from freshid.events.delivery import RetryPolicy
from freshid.events.worker import Worker
from freshid.storage.database import Database
from freshid.storage.tables import events
from freshid.storage.tables_events import webhook_deliveries, webhook_endpoints
from tests.events.receiver import receiver


class Clock:
    def __init__(self, now: int | None = None) -> None:
        self.t = now if now is not None else int(time.time())

    def __call__(self) -> int:
        return self.t


def _ticks(worker: Worker, n: int = 1) -> int:
    async def go() -> int:
        total = 0
        async with worker.client() as client:
            for _ in range(n):
                total += await worker.tick(client)
        return total

    return anyio.run(go)


def _endpoint(db: Database, url: str, now: int, types: list[str] | None = None) -> tuple[str, str]:
    with db.write() as conn:
        endpoint, secret = hooks.create(conn, url, types or [], "test", now)
    return endpoint.id, secret


def _events(db: Database, now: int, n: int, type_: EventType = EventType.SESSION_CREATED) -> None:
    for i in range(n):
        with db.write() as conn:
            outbox.record(conn, type_, now, user_id=f"u{i}", session_id=f"s{i}")


def _deliveries(db: Database) -> list[Any]:
    with db.read() as conn:
        return conn.execute(sa.select(webhook_deliveries).order_by(webhook_deliveries.c.id)).all()


# -- signatures ---------------------------------------------------------------------------------


def test_signatures_verify_with_the_standardwebhooks_package() -> None:
    secret = hooks.new_secret()
    assert secret.startswith("whsec_")
    body = b'{"type":"session.created","timestamp":"2026-01-01T00:00:00Z","data":{"id":1}}'
    now = int(time.time())
    headers = hooks.sign_headers([secret], "msg_abc", now, body)
    assert Webhook(secret).verify(body, headers) == json.loads(body)
    # The package's own signature is byte-for-byte ours.
    assert headers["webhook-signature"] == Webhook(secret).sign("msg_abc", _dt(now), body.decode())
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body + b" ", headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(hooks.new_secret()).verify(body, headers)


def _dt(ts: int) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, UTC)


def test_a_rotation_signs_with_every_secret_in_force() -> None:
    old, new = hooks.new_secret(), hooks.new_secret()
    body, now = b"{}", int(time.time())
    headers = hooks.sign_headers([new, old], "msg_1", now, body)
    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(body, headers)
    Webhook(new).verify(body, headers)


def test_a_known_vector() -> None:
    # The Standard Webhooks reference example (secret, id, timestamp, body -> signature).
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    sig = hooks.signature(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
    assert sig == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_rotate_secret_keeps_the_old_one_for_a_grace_period(db: Database) -> None:
    now = 1_800_000_000
    eid, first = _endpoint(db, "https://hooks.example/x", now)
    with db.write() as conn:
        second = hooks.rotate_secret(conn, eid, now, grace=100)
        endpoint = hooks.get(conn, eid)
    assert endpoint is not None and second is not None
    assert endpoint.secrets_in_force(now + 99) == [second, first]
    assert endpoint.secrets_in_force(now + 100) == [second]


@pytest.mark.parametrize(
    "url",
    ["http://hooks.example/x", "ftp://127.0.0.1/", "https://user:pw@hooks.example/", "nope"],
)
def test_endpoint_urls_are_checked(url: str) -> None:
    with pytest.raises(ValueError):
        hooks.check_url(url)


# -- delivery -----------------------------------------------------------------------------------


def test_events_are_delivered_signed_to_subscribed_endpoints(db: Database) -> None:
    clock = Clock()
    _events(db, clock(), 2)  # before the endpoint exists: not delivered
    with receiver() as rx, receiver() as other:
        _eid, secret = _endpoint(db, rx.url, clock(), [EventType.SESSION_REVOKED.value])
        _endpoint(db, other.url, clock())  # every type
        _events(db, clock(), 3, EventType.SESSION_REVOKED)
        _events(db, clock(), 2, EventType.SESSION_CREATED)
        worker = Worker(db, clock, RetryPolicy(attempt_timeout=5))
        assert _ticks(worker, 3) == 3 + 5
        assert len(rx.requests) == 3
        for r in rx.requests:
            payload = Webhook(secret).verify(r.body, r.headers)
            assert payload["type"] == "session.revoked"
            assert payload["data"]["type"] == "session.revoked"
            assert r.headers["content-type"] == "application/json"
        assert len(set(rx.ids())) == 3
        assert len(other.requests) == 5
    rows = _deliveries(db)
    assert {r.status for r in rows} == {"succeeded"}
    assert all(r.attempts == 1 for r in rows)


def test_failures_are_retried_on_the_schedule_with_the_same_webhook_id(db: Database) -> None:
    clock = Clock(1_800_000_000)
    with receiver() as rx:
        rx.respond = lambda n, _r: 500 if n < 2 else 204
        _endpoint(db, rx.url, clock())
        _events(db, clock(), 1)
        policy = RetryPolicy(schedule=(10, 20, 40), jitter=0.0, attempt_timeout=5)
        worker = Worker(db, clock, policy)
        assert _ticks(worker) == 1  # attempt 1: 500
        (row,) = _deliveries(db)
        assert row.status == "pending" and row.attempts == 1 and row.last_status_code == 500
        assert row.next_attempt_at == clock() + 10
        clock.t += 9
        assert _ticks(worker) == 0  # not due yet
        clock.t += 1
        assert _ticks(worker) == 1  # attempt 2: 500
        (row,) = _deliveries(db)
        assert row.next_attempt_at == clock() + 20
        clock.t += 20
        assert _ticks(worker) == 1  # attempt 3: 204
        assert len(set(rx.ids())) == 1 and len(rx.ids()) == 3
    (row,) = _deliveries(db)
    assert row.status == "succeeded" and row.attempts == 3 and row.last_status_code == 204
    with db.read() as conn:
        ep = conn.execute(sa.select(webhook_endpoints)).one()
    assert ep.consecutive_failures == 0 and ep.enabled


def test_jitter_stays_within_its_bounds() -> None:
    import random

    policy = RetryPolicy(schedule=(100, 1000), jitter=0.2)
    rng = random.Random(7)
    delays = [policy.delay(1, rng) for _ in range(200)]
    assert min(delays) >= 80 and max(delays) <= 120 and len(set(delays)) > 10
    assert 800 <= policy.delay(2, rng) <= 1200
    assert 800 <= policy.delay(9, rng) <= 1200  # past the schedule: its last step


def test_persistent_failure_disables_the_endpoint_visibly_and_it_can_be_re_enabled(
    db: Database,
) -> None:
    clock = Clock(1_800_000_000)
    with receiver() as rx:
        rx.respond = lambda _n, _r: 503
        eid, _ = _endpoint(db, rx.url, clock())
        _events(db, clock(), 1)
        worker = Worker(db, clock, RetryPolicy(schedule=(1, 1), jitter=0.0, attempt_timeout=5))
        for _ in range(3):
            assert _ticks(worker) == 1
            clock.t += 1
        (row,) = _deliveries(db)
        assert row.status == "failed" and row.attempts == 3
        with db.read() as conn:
            ep = hooks.get(conn, eid)
            disabled_events = conn.execute(
                sa.select(events.c.data).where(events.c.type == "webhook_endpoint.disabled")
            ).all()
        assert ep is not None and not ep.enabled and ep.disabled_at is not None
        assert "3 attempts" in (ep.disabled_reason or "")
        assert len(disabled_events) == 1
        # While disabled, new events wait (they are not attempted, and not lost).
        _events(db, clock(), 2)
        assert _ticks(worker) == 0
        rx.respond = lambda _n, _r: 200
        with db.write() as conn:
            assert hooks.set_enabled(conn, eid, True, clock())
        # The two waiting events, and the endpoint's own disabled and enabled events.
        assert _ticks(worker, 2) == 4
        with db.read() as conn:
            ep = hooks.get(conn, eid)
        assert ep is not None and ep.enabled and ep.consecutive_failures == 0


def test_a_failure_streak_disables_the_endpoint(db: Database) -> None:
    clock = Clock(1_800_000_000)
    with receiver() as rx:
        rx.respond = lambda _n, _r: 500
        eid, _ = _endpoint(db, rx.url, clock())
        _events(db, clock(), 3)
        policy = RetryPolicy(schedule=(5,) * 5, attempt_timeout=5, disable_after_failures=3)
        assert _ticks(Worker(db, clock, policy)) == 3
    with db.read() as conn:
        ep = hooks.get(conn, eid)
    assert ep is not None and not ep.enabled and "3 failed attempts" in (ep.disabled_reason or "")


def test_an_attempt_times_out(db: Database) -> None:
    clock = Clock(1_800_000_000)
    with receiver() as rx:
        rx.stall = threading.Event()
        _endpoint(db, rx.url, clock())
        _events(db, clock(), 1)
        started = time.monotonic()
        assert _ticks(Worker(db, clock, RetryPolicy(attempt_timeout=0.5))) == 1
        assert time.monotonic() - started < 5
    (row,) = _deliveries(db)
    assert row.status == "pending" and row.last_error == "timeout"


def test_an_unreachable_endpoint_is_a_failed_attempt(db: Database) -> None:
    clock = Clock(1_800_000_000)
    _endpoint(db, "http://127.0.0.1:9/hook", clock())  # discard port: nothing listens
    _events(db, clock(), 1)
    assert _ticks(Worker(db, clock, RetryPolicy(attempt_timeout=2))) == 1
    (row,) = _deliveries(db)
    assert row.status == "pending" and row.attempts == 1 and row.last_error


def test_concurrent_claims_never_take_the_same_delivery(db: Database) -> None:
    now = 1_800_000_000
    _endpoint(db, "https://hooks.example/x", now)
    _endpoint(db, "https://hooks.example/y", now)
    _events(db, now, 40)
    with db.write() as conn:
        while delivery.dispatch(conn, now, batch=7):
            pass
    # 40 events each, and x also gets y's creation event.
    assert len(_deliveries(db)) == 81
    policy = RetryPolicy()
    claimed: list[list[int]] = []
    lock = threading.Lock()

    def claimer() -> None:
        while True:
            with db.write() as conn:
                got = delivery.claim(conn, now, policy, 3)
            if not got:
                return
            with lock:
                claimed.append([c.delivery_id for c in got])

    threads = [threading.Thread(target=claimer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    ids = [i for batch in claimed for i in batch]
    assert len(ids) == 81 and len(set(ids)) == 81


def test_a_stale_claim_cannot_overwrite_a_newer_attempt(db: Database) -> None:
    now = 1_800_000_000
    _endpoint(db, "https://hooks.example/x", now)
    _events(db, now, 1)
    policy = RetryPolicy(attempt_timeout=1, lease_slack=1)
    with db.write() as conn:
        delivery.dispatch(conn, now)
        (first,) = delivery.claim(conn, now, policy, 10)
    later = now + policy.lease  # the first worker's lease ran out: another claims it
    with db.write() as conn:
        (second,) = delivery.claim(conn, later, policy, 10)
        assert second.message_id == first.message_id and second.attempt == 2
        delivery.complete(conn, second, delivery.Outcome(True, 200, None), later, policy)
        delivery.complete(conn, first, delivery.Outcome(False, 500, "HTTP 500"), later, policy)
    (row,) = _deliveries(db)
    assert row.status == "succeeded" and row.last_status_code == 200


def test_the_worker_loop_stops_and_survives_errors(db: Database) -> None:
    clock = Clock()
    worker = Worker(db, clock, poll_interval=0.05)

    async def go() -> None:
        stop = anyio.Event()
        async with anyio.create_task_group() as tg:
            tg.start_soon(worker.run, stop)
            await anyio.sleep(0.3)
            stop.set()

    anyio.run(go)
    assert worker.stats.ticks >= 2 and worker.stats.errors == 0
    anyio.run(lambda: worker.run(max_seconds=0.2))


def test_the_server_runs_the_worker(server: Any) -> None:
    db = server.provider.db
    with receiver() as rx:
        _endpoint(db, rx.url, server.clock.now())
        _events(db, server.clock.now(), 2)
        deadline = time.monotonic() + 20
        while len(rx.requests) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(rx.requests) == 2
    assert httpx.get(server.url + "/api/v1/openapi.json").status_code == 200


def test_a_slow_endpoint_does_not_hold_up_the_others(db: Database) -> None:
    clock = Clock()
    with receiver() as slow, receiver() as fast:
        slow.stall = threading.Event()
        _endpoint(db, slow.url, clock())
        _endpoint(db, fast.url, clock())
        _events(db, clock(), 10)
        worker = Worker(
            db, clock, RetryPolicy(attempt_timeout=3), concurrency=4, poll_interval=0.05
        )
        started = time.monotonic()
        took = 0.0

        async def go() -> None:
            nonlocal took
            stop = anyio.Event()
            async with anyio.create_task_group() as tg:
                tg.start_soon(worker.run, stop)
                with anyio.move_on_after(20):
                    while len(fast.requests) < 10:  # noqa: ASYNC110 - a thread fills it
                        await anyio.sleep(0.02)
                took = time.monotonic() - started
                stop.set()  # the worker then waits for the stalled attempts to time out

        anyio.run(go)
        assert len(fast.requests) == 10
        # The slow endpoint held at most its claimed slots; the fast one was not behind it.
        assert took < 3, took  # no fast delivery waited for a stalled attempt (3 s) to end
    rows = _deliveries(db)
    assert sum(r.status == "succeeded" for r in rows) >= 10
