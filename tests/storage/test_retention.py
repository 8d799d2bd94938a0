"""Retention (:mod:`freshid.storage.retention`) on SQLite and PostgreSQL: dead rows go, live rows
stay — above all a live grant's rotated-out refresh tokens, which reuse detection needs — events
are never touched, a dry run deletes nothing and counts what a run deletes, batches bound every
statement, and a second run finds nothing. Time moves with a :class:`FrozenClock`."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from freshid.app import create_app
from freshid.clock import FrozenClock
from freshid.events import audit
from freshid.events.catalog import EventType
from freshid.freshness.levels import ACR_1FA
from freshid.methods import email_code, totp
from freshid.methods.base import CompletedMethod
from freshid.settings import load_settings
from freshid.storage import challenges as challenge_store
from freshid.storage import clients, grants, interactions, retention, sessions, throttle, users
from freshid.storage import credentials as credential_store
from freshid.storage import email_codes as email_code_store
from freshid.storage.database import Database
from freshid.storage.retention import RetentionPolicy
from freshid.storage.schema import metadata
from freshid.storage.sessions import RequestContext
from freshid.storage.tables import (
    access_tokens,
    challenges,
    credentials,
    email_codes,
    login_failures,
    refresh_tokens,
    session_authentications,
)
from freshid.storage.tables import grants as grants_table
from freshid.storage.tables import interactions as interactions_table
from freshid.storage.tables import sessions as sessions_table
from freshid.tokens.secrets import digest

T0 = 1_800_000_000
DAY = 24 * 3600
POLICY = RetentionPolicy()  # grace 1 day, sessions idle after 3 days, 15-minute throttle windows
REDIRECT = "https://rp.example/cb"


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(T0)


@dataclass
class World:
    """What one test wrote, by name, to check which rows are left."""

    user_id: str = ""
    client_id: str = ""
    grants: dict[str, str] = field(default_factory=dict)
    codes: dict[str, str] = field(default_factory=dict)
    refresh: dict[str, str] = field(default_factory=dict)
    sessions: dict[str, str] = field(default_factory=dict)
    interactions: dict[str, str] = field(default_factory=dict)
    challenges: dict[str, str] = field(default_factory=dict)
    credentials: dict[str, str] = field(default_factory=dict)
    email_codes: dict[str, str] = field(default_factory=dict)


def _session(conn: sa.Connection, w: World, name: str, now: int) -> str:
    method = CompletedMethod("password", ("pwd",), ACR_1FA, now)
    session, _ = sessions.start(conn, w.user_id, method, now, 14 * DAY, RequestContext())
    w.sessions[name] = session.id
    return session.id


def _grant(
    conn: sa.Connection,
    w: World,
    name: str,
    session: str,
    now: int,
    *,
    offline: bool = False,
    ttl: int = 30 * DAY,
) -> str:
    code = grants.create_with_code(
        conn,
        client_id=w.client_id,
        user_id=w.user_id,
        session_id=w.sessions[session],
        scope="openid offline_access" if offline else "openid",
        auth_time=now,
        acr=ACR_1FA,
        amr=("pwd",),
        offline=offline,
        redirect_uri=REDIRECT,
        nonce=None,
        code_challenge=None,
        now=now,
        code_ttl=60,
        grant_ttl=ttl,
    )
    record = grants.find_code(conn, code)
    assert record is not None
    w.grants[name], w.codes[name] = record.grant.id, code
    return record.grant.id


def _redeem(conn: sa.Connection, w: World, name: str, now: int) -> str:
    """The code of grant ``name`` redeemed: an access token and a first refresh token."""
    assert grants.redeem_code(conn, w.codes[name], now)
    grants.record_access_token(conn, f"{name}-at0", w.grants[name], now + 600)
    token = grants.issue_refresh_token(conn, w.grants[name], now)
    w.refresh[f"{name}-0"] = token
    return token


def _rotate(conn: sa.Connection, w: World, name: str, n: int, now: int) -> None:
    new = grants.rotate_refresh_token(
        conn, w.refresh[f"{name}-{n - 1}"], w.grants[name], f"{name}-at{n}", now + 600, now
    )
    assert new is not None
    w.refresh[f"{name}-{n}"] = new


def _build(db: Database, clock: FrozenClock) -> World:
    """Live, dead and not-yet-dead rows of every kind. Dead, two days later (grace: one day):
    the expired, revoked, ended, used-up and abandoned ones; everything else stays."""
    w = World()
    with db.write() as conn:
        # An idle session, last seen 3 days before T0: at T0 + 2 days it has been over for a
        # day and more (3 days idle + 1 day grace).
        w.user_id = users.create(conn, "ada@example.com", None, T0 - 3 * DAY).id
        w.client_id = clients.create(conn, "RP", [REDIRECT], T0 - 3 * DAY)[0].client_id
        _session(conn, w, "idle", T0 - 3 * DAY)
        credential_store.replace_recovery_codes(conn, w.user_id, ["d" * 64], T0 - 3 * DAY)

    now = clock.now()
    with db.write() as conn:
        _session(conn, w, "live", now)
        # The live family: redeemed, rotated twice. Its spent tokens are reuse evidence.
        _grant(conn, w, "live", "live", now)
        _redeem(conn, w, "live", now)
        _rotate(conn, w, "live", 1, now + 60)
        _rotate(conn, w, "live", 2, now + 120)
        # A family revoked at T0 (reuse detected, say), and one that expired an hour after T0.
        _grant(conn, w, "revoked", "live", now)
        _redeem(conn, w, "revoked", now)
        grants.revoke_grant(conn, w.grants["revoked"], "test", now)
        _grant(conn, w, "expired", "live", now, ttl=3600)
        _redeem(conn, w, "expired", now)
        # A live grant whose code was never redeemed: the code dies, the grant lives on.
        _grant(conn, w, "unredeemed", "live", now)
        # A session logged out at T0: its online grant ends with it, its offline one does not,
        # and holds the session row (the refresh path reads it).
        _session(conn, w, "logged_out", now)
        _grant(conn, w, "online", "logged_out", now)
        _redeem(conn, w, "online", now)
        _session(conn, w, "offline_holder", now)
        _grant(conn, w, "offline", "offline_holder", now, offline=True)
        _redeem(conn, w, "offline", now)
        sessions.revoke(conn, w.sessions["logged_out"], "logout", now, w.user_id)
        sessions.revoke(conn, w.sessions["offline_holder"], "logout", now, w.user_id)

        _short_lived(conn, w, "old", now)
        w.credentials["abandoned"] = credential_store.add_totp(
            conn, w.user_id, totp.new_secret(), now
        )
        w.credentials["confirmed"] = credential_store.add_totp(
            conn, w.user_id, totp.new_secret(), now
        )
        assert credential_store.confirm_totp(
            conn, w.user_id, w.credentials["confirmed"], "Phone", 1, now
        )

    clock.advance(2 * DAY)
    now = clock.now()
    with db.write() as conn:
        # Written just now: nothing here is dead yet.
        sessions.touch(conn, w.sessions["live"], now)
        _rotate(conn, w, "live", 3, now)
        _short_lived(conn, w, "new", now)
        w.credentials["pending"] = credential_store.add_totp(
            conn, w.user_id, totp.new_secret(), now
        )
    return w


def _short_lived(conn: sa.Connection, w: World, label: str, now: int) -> None:
    """An interaction, a WebAuthn challenge, an emailed code and a throttle counter, all named
    ``label``."""
    w.interactions[label] = interactions.create(conn, "browser", w.client_id, {}, now, 900)
    w.challenges[label] = challenge_store.issue(conn, "passkey", "s", b"c" * 32, now, 300)
    code = email_code.new_challenge(now)
    email_code_store.issue(conn, w.interactions[label], w.user_id, "a@b.c", code, now)
    w.email_codes[label] = code.challenge_id
    throttle.hit(conn, label, "key", now, 900)


def _keys(db: Database, column: sa.Column[Any]) -> set[str]:
    with db.read() as conn:
        return {str(v) for v in conn.execute(sa.select(column)).scalars()}


def _counts(db: Database) -> dict[str, int]:
    with db.read() as conn:
        return {
            t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            for t in metadata.sorted_tables
        }


def _digests(w: World, *names: str) -> set[str]:
    return {digest(w.refresh[n]) for n in names}


EXPECTED = {
    # The live family's four access-token records from T0 go, one per expired/revoked/online/
    # offline family too; the one issued at T0 + 2 days stays.
    "access_tokens": 3 + 1 + 1 + 1 + 1,
    # Codes of dead grants (revoked, expired, online) and the never-redeemed one.
    "authorization_codes": 4,
    # Only the dead families' tokens: revoked, expired, online.
    "refresh_tokens": 3,
    "grants": 3,
    # The idle session and the logged-out one, each with its one authentication.
    "session_authentications": 2,
    "sessions": 2,
    "interactions": 1,
    "email_codes": 1,
    "challenges": 1,
    "login_failures": 1,
    "credentials": 1,
}


def test_dead_rows_go_live_rows_stay_and_events_are_untouched(
    db: Database, clock: FrozenClock
) -> None:
    w = _build(db, clock)
    before = _counts(db)

    report = retention.prune(db, clock.now(), POLICY)

    assert report.rows == EXPECTED
    assert report.complete and not report.dry_run
    after = _counts(db)
    assert {t: before[t] - after[t] for t in EXPECTED} == EXPECTED
    untouched = set(before) - set(EXPECTED)
    assert {t: after[t] for t in untouched} == {t: before[t] for t in untouched}
    assert after["events"] == before["events"] > 0
    assert audit.verify(db.read).ok

    # The live grant, its redeemed code and every token of its family, spent ones included.
    assert _keys(db, grants_table.c.id) == {w.grants[n] for n in ("live", "unredeemed", "offline")}
    assert _keys(db, refresh_tokens.c.token_digest) == _digests(
        w, "live-0", "live-1", "live-2", "live-3", "offline-0"
    )
    with db.read() as conn:
        for name in ("live", "offline"):
            assert grants.find_code(conn, w.codes[name]) is not None
        assert grants.find_code(conn, w.codes["unredeemed"]) is None
    assert _keys(db, access_tokens.c.jti) == {"live-at3"}
    # Sessions: the live one, and the logged-out one its offline grant still needs.
    assert _keys(db, sessions_table.c.id) == {
        w.sessions["live"],
        w.sessions["offline_holder"],
    }
    assert _keys(db, session_authentications.c.session_id) == _keys(db, sessions_table.c.id)
    assert _keys(db, interactions_table.c.id) == {w.interactions["new"]}
    assert _keys(db, challenges.c.id) == {w.challenges["new"]}
    assert _keys(db, email_codes.c.id) == {w.email_codes["new"]}
    assert len(_keys(db, login_failures.c.bucket)) == 1
    assert {w.credentials["confirmed"], w.credentials["pending"]} <= _keys(db, credentials.c.id)
    assert w.credentials["abandoned"] not in _keys(db, credentials.c.id)
    assert len(_keys(db, credentials.c.id)) == 3  # and the recovery code

    again = retention.prune(db, clock.now(), POLICY)
    assert again.total == 0 and sum(again.batches.values()) == 0
    assert _counts(db) == after


def test_a_rotated_out_refresh_token_still_revokes_its_family_after_a_prune(
    db: Database, clock: FrozenClock
) -> None:
    w = _build(db, clock)
    retention.prune(db, clock.now(), POLICY)
    clock.advance(7 * DAY)  # a week on, the family is still live (30 days)
    assert retention.prune(db, clock.now(), POLICY).rows["refresh_tokens"] == 0
    now = clock.now()

    with db.write() as conn:
        stolen = grants.find_refresh_token(conn, w.refresh["live-0"])
        assert stolen is not None and stolen.used_at is not None  # found: reuse, not "unknown"
        spent = w.refresh["live-0"]
        assert grants.rotate_refresh_token(conn, spent, stolen.grant.id, "x", 1, now) is None
        grants.record_reuse(conn, stolen.grant, EventType.TOKEN_REFRESH_REUSE_DETECTED, now)
    with db.read() as conn:
        current = grants.find_refresh_token(conn, w.refresh["live-3"])
        assert current is not None and current.grant.revoked_at == now

    # Once revoked for longer than the grace, the whole family goes.
    assert retention.prune(db, now, POLICY).rows["refresh_tokens"] == 0
    clock.advance(DAY)
    report = retention.prune(db, clock.now(), POLICY)
    assert report.rows["refresh_tokens"] == 4 and report.rows["grants"] == 1
    assert w.grants["live"] not in _keys(db, grants_table.c.id)


def test_a_dry_run_deletes_nothing_and_counts_what_a_run_deletes(
    db: Database, clock: FrozenClock
) -> None:
    _build(db, clock)
    before = _counts(db)

    dry = retention.prune(db, clock.now(), POLICY, dry_run=True)

    assert dry.dry_run and dry.rows == EXPECTED and sum(dry.batches.values()) == 0
    assert _counts(db) == before
    assert retention.prune(db, clock.now(), POLICY).rows == dry.rows


def test_the_batch_size_bounds_every_delete(db: Database, clock: FrozenClock) -> None:
    now = clock.now()
    with db.write() as conn:
        conn.execute(
            challenges.insert(),
            [
                {
                    "id": f"c{i:05}",
                    "purpose": "p",
                    "subject": "s",
                    "challenge": "x",
                    "expires_at": 1,
                }
                for i in range(2_500)
            ],
        )
        challenge_store.issue(conn, "passkey", "s", b"c", now, 300)
    deletes: list[int] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("DELETE"):
            deletes.append(cursor.rowcount)

    sa.event.listen(db.engine, "after_cursor_execute", seen)
    try:
        report = retention.prune(db, now, POLICY)
    finally:
        sa.event.remove(db.engine, "after_cursor_execute", seen)

    assert report.rows["challenges"] == 2_500 and report.batches["challenges"] == 3
    assert deletes == [1_000, 1_000, 500]
    assert len(_keys(db, challenges.c.id)) == 1

    small = retention.prune(db, now, RetentionPolicy(batch_size=1))
    assert small.total == 0


def test_a_run_asked_to_stop_ends_between_batches(db: Database, clock: FrozenClock) -> None:
    now = clock.now()
    with db.write() as conn:
        for i in range(3):
            challenge_store.issue(conn, "passkey", f"s{i}", b"c", now - 2 * DAY, 300)
        throttle.hit(conn, "old", "key", now - 2 * DAY, 900)

    def stop() -> bool:  # asked before every batch
        return len(_keys(db, challenges.c.id)) == 1

    report = retention.prune(db, now, RetentionPolicy(batch_size=1), stop=stop)
    assert not report.complete and report.total == 2
    assert len(_keys(db, challenges.c.id)) == 1
    assert len(_keys(db, login_failures.c.bucket)) == 1  # a later step: not reached


def test_cutoffs_are_computed_from_now_and_the_policy() -> None:
    policy = RetentionPolicy(
        grace=100, abandoned_enrolment=300, session_idle_ttl=50, throttle_window=10
    )
    c = retention.cutoffs(1_000, policy)
    assert (c.dead_before, c.idle_before, c.throttle_before, c.enrolment_before) == (
        900,
        850,
        890,
        700,
    )
    with pytest.raises(ValueError, match="batch_size"):
        RetentionPolicy(batch_size=0)
    with pytest.raises(ValueError, match="grace"):
        RetentionPolicy(grace=-1)
    settings = load_settings(environ={}, session_idle_ttl=7200, throttle_window=60)
    from_settings = RetentionPolicy.from_settings(settings, grace=5)
    assert from_settings.session_idle_ttl == 7200 and from_settings.grace == 5
    # The longest window any throttle counter uses, whatever the setting says.
    assert from_settings.throttle_window == max(60, totp.ATTEMPT_WINDOW, 900)


# -- the server's periodic job ------------------------------------------------------------------


def test_a_failed_run_is_logged_and_the_job_carries_on(
    db: Database, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    with db.write() as conn:
        challenge_store.issue(conn, "passkey", "s", b"c", clock.now() - 2 * DAY, 300)
    calls = 0

    def now() -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("secret-looking detail")
        return clock.now()

    pruner = retention.Pruner(db, now, POLICY, 3600)
    with caplog.at_level(logging.INFO, logger="freshid.retention"):
        assert anyio.run(pruner.run_once) is None
        report = anyio.run(pruner.run_once)
    assert report is not None and report.rows["challenges"] == 1
    assert (pruner.runs, pruner.failures, pruner.last_error) == (1, 1, "RuntimeError")
    assert "retention prune failed: RuntimeError" in caplog.text
    assert "secret-looking" not in caplog.text
    assert "challenges=1" in caplog.text


def test_the_job_runs_every_interval_in_a_thread_and_stops_with_its_block(
    db: Database, clock: FrozenClock
) -> None:
    third_run = threading.Event()
    runs: list[str] = []

    def now() -> int:  # called at the start of every run, in the job's worker thread
        runs.append(threading.current_thread().name)
        if len(runs) == 3:
            third_run.set()
        return clock.now()

    async def main() -> retention.Pruner:
        async with retention.background_pruner(db, now, POLICY, 0) as off:
            assert off is None  # 0 turns it off
        async with retention.background_pruner(db, now, POLICY, 0.01) as pruner:
            assert pruner is not None
            assert await anyio.to_thread.run_sync(third_run.wait, 20)
        return pruner

    loop_thread = threading.current_thread().name
    pruner = anyio.run(main)
    assert pruner.runs >= 2 and pruner.failures == 0 and pruner.last_report is not None
    assert loop_thread not in runs


@pytest.mark.parametrize(("interval", "running"), [(0, False), (3600, True)])
def test_the_app_runs_the_job_during_its_lifespan(
    database_url: str, interval: int, running: bool
) -> None:
    settings = load_settings(environ={}, database_url=database_url, retention_interval=interval)
    app = create_app(settings, webhook_worker=False)
    with TestClient(app):
        pruner = app.state.pruner
        assert (pruner is not None) == running
        if pruner is not None:
            assert pruner.interval == 3600 and pruner.first_delay == retention.STARTUP_DELAY
            assert pruner.policy == RetentionPolicy.from_settings(settings)
