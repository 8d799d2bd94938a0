"""Exactly-once transitions under real concurrency, on SQLite and PostgreSQL: one code, many
redeemers; one refresh token, many rotators; parallel sign-in attempts against the throttle."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa

from freshid.events.catalog import EventType
from freshid.freshness.levels import ACR_1FA
from freshid.methods.base import CompletedMethod
from freshid.storage import clients, grants, sessions, throttle, users
from freshid.storage.database import Database
from freshid.storage.sessions import RequestContext
from freshid.storage.tables import events

NOW = 1_800_000_000


def _grant_with_code(db: Database) -> tuple[str, str]:
    with db.write() as conn:
        user = users.create(conn, "ada@example.com", None, NOW)
        client, _ = clients.create(conn, "RP", ["https://rp.example/cb"], NOW)
        session, _ = sessions.start(
            conn,
            user.id,
            CompletedMethod("password", ("pwd",), ACR_1FA, NOW),
            NOW,
            3600,
            RequestContext(),
        )
        code = grants.create_with_code(
            conn,
            client_id=client.client_id,
            user_id=user.id,
            session_id=session.id,
            scope="openid",
            auth_time=NOW,
            acr=ACR_1FA,
            amr=("pwd",),
            offline=False,
            redirect_uri="https://rp.example/cb",
            nonce=None,
            code_challenge=None,
            now=NOW,
            code_ttl=60,
            grant_ttl=3600,
        )
    return code, client.client_id


def _race(db: Database, fn: object, n: int = 8) -> list[bool]:
    def attempt(_: int) -> bool:
        with db.write() as conn:
            return bool(fn(conn))  # type: ignore[operator]

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(attempt, range(n)))


def test_code_redeemed_exactly_once(db: Database) -> None:
    code, _ = _grant_with_code(db)
    results = _race(db, lambda conn: grants.redeem_code(conn, code, NOW + 1))
    assert results.count(True) == 1


def test_refresh_token_rotated_exactly_once(db: Database) -> None:
    code, _ = _grant_with_code(db)
    with db.write() as conn:
        grant = grants.find_code(conn, code)
        assert grant is not None
        token = grants.issue_refresh_token(conn, grant.grant.id, NOW)
    results = _race(db, lambda conn: grants.use_refresh_token(conn, token, NOW + 1))
    assert results.count(True) == 1


def test_reuse_revokes_grant_and_its_access_tokens(db: Database) -> None:
    code, _ = _grant_with_code(db)
    with db.write() as conn:
        record = grants.find_code(conn, code)
        assert record is not None
        grants.record_access_token(conn, "jti-1", record.grant.id, NOW + 600)
        assert grants.access_token_active(conn, "jti-1", NOW) is not None
        grants.record_reuse(conn, record.grant, EventType.AUTHORIZATION_CODE_REUSE_DETECTED, NOW)
    with db.read() as conn:
        assert grants.access_token_active(conn, "jti-1", NOW) is None
        types = [r.type for r in conn.execute(sa.select(events.c.type))]
    assert "authorization_code.reuse_detected" in types


def test_parallel_attempts_never_exceed_the_pair_limit(db: Database) -> None:
    limits = throttle.Limits(window=900, per_account_ip=5, per_ip=50, per_account=100)
    results = _race(
        db,
        lambda conn: throttle.reserve_attempt(
            conn, "ada@example.com", "10.0.0.1", None, NOW, limits
        ),
        n=20,
    )
    assert results.count(True) == 5


def test_throttle_window_resets_and_known_addresses_are_exempt(db: Database) -> None:
    limits = throttle.Limits(window=900, per_account_ip=3, per_ip=1000, per_account=4)
    with db.write() as conn:
        user = users.create(conn, "ada@example.com", None, NOW)
        throttle.succeeded(conn, user.email, "192.0.2.7", user.id, NOW)
    # An attacker spreads guesses over many addresses: the per-account cap stops them...
    with db.write() as conn:
        allowed = [
            throttle.reserve_attempt(conn, user.email, f"198.51.100.{i}", user.id, NOW, limits)
            for i in range(10)
        ]
    assert allowed.count(True) == 4
    # ...but the owner, from an address that signed in before, is not locked out.
    with db.write() as conn:
        assert throttle.reserve_attempt(conn, user.email, "192.0.2.7", user.id, NOW, limits)
    # And after the window, a fresh count starts.
    with db.write() as conn:
        assert throttle.reserve_attempt(
            conn, user.email, "198.51.100.99", user.id, NOW + 901, limits
        )


def test_event_rolls_back_with_its_change(db: Database) -> None:
    try:
        with db.write() as conn:
            users.create(conn, "ghost@example.com", None, NOW)
            raise RuntimeError("abort")
    except RuntimeError:
        pass
    with db.read() as conn:
        assert users.by_email(conn, "ghost@example.com") is None
        assert conn.execute(sa.select(sa.func.count()).select_from(events)).scalar_one() == 0


def test_ending_a_session_ends_its_tokens_but_not_offline_ones(db: Database) -> None:
    code, client_id = _grant_with_code(db)
    with db.write() as conn:
        record = grants.find_code(conn, code)
        assert record is not None
        online = record.grant
        offline_code = grants.create_with_code(
            conn,
            client_id=client_id,
            user_id=online.user_id,
            session_id=online.session_id,
            scope="openid offline_access",
            auth_time=NOW,
            acr=ACR_1FA,
            amr=("pwd",),
            offline=True,
            redirect_uri="https://rp.example/cb",
            nonce=None,
            code_challenge=None,
            now=NOW,
            code_ttl=60,
            grant_ttl=3600,
        )
        offline = grants.find_code(conn, offline_code)
        assert offline is not None
        grants.record_access_token(conn, "online-jti", online.id, NOW + 600)
        grants.record_access_token(conn, "offline-jti", offline.grant.id, NOW + 600)
        sessions.revoke(conn, online.session_id, "logout", NOW + 1, online.user_id)
    with db.read() as conn:
        assert grants.access_token_active(conn, "online-jti", NOW + 2) is None
        assert grants.access_token_active(conn, "offline-jti", NOW + 2) is not None
