"""Action-bound step-up through the whole guard, with tokens signed by a test issuer (the provider
does not emit ``authorization_details`` yet), and the shared SQL replay store."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest
import sqlalchemy as sa
from freshid_guard import Allowed, Denial, Evidence, Guard, StepUpRequired
from freshid_guard.replay_sql import SQLReplayStore

from tests.guard.issuer import NOW, Clock, FakeIssuer

DELETE = [{"type": "urn:freshid:action", "action": "account.delete"}]


def bound_token(issuer: FakeIssuer, action: str = "account.delete", **claims: Any) -> str:
    details = [{"type": "urn:freshid:action", "action": action}]
    return issuer.token(amr=["pwd", "otp"], authorization_details=details, **claims)


def test_a_bound_proof_authorizes_its_action_once() -> None:
    issuer = FakeIssuer()
    evidence: list[Evidence] = []
    guard = issuer.guard(on_evidence=evidence.append)
    raw = bound_token(issuer, jti="proof-1")
    allowed = guard.check(f"Bearer {raw}", "account.delete")
    assert allowed.bound and allowed.action == "account.delete"
    with pytest.raises(StepUpRequired) as replay:
        guard.check(f"Bearer {raw}", "account.delete")
    assert replay.value.step_up.reason == "replayed"
    assert [(e.user, e.session, e.action, e.token_id, e.amr, e.bound) for e in evidence] == [
        ("user-1", "session-1", "account.delete", "proof-1", ("pwd", "otp"), True)
    ]


def test_a_bound_proof_is_refused_for_every_other_action() -> None:
    issuer = FakeIssuer()
    guard = issuer.guard()
    raw = bound_token(issuer)
    for action in ("project.transfer", "keys.reveal", "billing.update"):
        with pytest.raises(StepUpRequired) as refused:
            guard.check(f"Bearer {raw}", action)
        assert refused.value.step_up.reason == "other_action"
    assert guard.check(f"Bearer {raw}", "account.delete").bound  # still unused for its own action


def test_an_unbound_token_cannot_perform_a_bound_action() -> None:
    issuer = FakeIssuer()
    guard = issuer.guard()
    denial = guard.protect(f"Bearer {issuer.token(amr=['otp'])}", "account.delete")
    assert isinstance(denial, Denial) and denial.status == 401
    headers = dict(denial.headers)
    assert headers["WWW-Authenticate"] == (
        'Bearer error="insufficient_user_authentication", '
        "error_description=\"Confirm it's you to delete your account: this action needs a proof "
        'given for it alone", max_age="120"'
    )
    assert headers["Cache-Control"] == "no-store"
    assert json.loads(denial.body) == {
        "error": "insufficient_user_authentication",
        "error_description": "Confirm it's you to delete your account: "
        "this action needs a proof given for it alone",
        "action": "account.delete",
        "max_age": 120,
    }


def test_a_stale_bound_proof_is_refused_and_not_consumed() -> None:
    issuer = FakeIssuer()
    clock = Clock()
    guard = issuer.guard(clock)
    raw = bound_token(issuer, auth_time=NOW - 100)
    clock.now += 21  # 121 s > 120 s
    with pytest.raises(StepUpRequired) as refused:
        guard.check(f"Bearer {raw}", "account.delete")
    assert refused.value.step_up.reason == "stale"
    assert len(guard.freshness.replay_store) == 0  # type: ignore[arg-type]


def test_the_cache_never_caches_the_decision() -> None:
    issuer = FakeIssuer()
    clock = Clock()
    guard = issuer.guard(clock)
    raw = issuer.token(auth_time=NOW - 290)
    assert isinstance(guard.protect(f"Bearer {raw}", "billing.update"), Allowed)
    clock.now += 20  # same token, now from the cache, but the proof is 310 s old
    outcome = guard.protect(f"Bearer {raw}", "billing.update")
    assert isinstance(outcome, Denial) and outcome.status == 401
    assert guard.jwks.fetch_count == 1


def test_sql_replay_store_is_shared_between_processes(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path}/replay.sqlite3"
    issuer = FakeIssuer()
    # Two app processes: two guards, two engines, one database.
    a = issuer.guard(replay_store=SQLReplayStore(sa.create_engine(url)))
    b = issuer.guard(replay_store=SQLReplayStore(sa.create_engine(url)))
    raw = bound_token(issuer)
    assert a.check(f"Bearer {raw}", "account.delete").bound
    with pytest.raises(StepUpRequired) as refused:
        b.check(f"Bearer {raw}", "account.delete")
    assert refused.value.step_up.reason == "replayed"
    assert b.check(f"Bearer {bound_token(issuer)}", "account.delete").bound


def test_sql_replay_store_under_concurrency(tmp_path: Any) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path}/replay.sqlite3")
    store = SQLReplayStore(engine, purge_every=3)
    results: list[bool] = []
    lock = threading.Lock()

    def use() -> None:
        ok = store.consume("jti-x", "account.delete", NOW + 600, NOW)
        with lock:
            results.append(ok)

    threads = [threading.Thread(target=use) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 7 + [True]
    # Expired rows are purged; the key can then be used again only after its token expired.
    for n in range(3):
        assert store.consume(f"other-{n}", "a", NOW + 1, NOW + 700)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(store.table.c.jti)).scalars().all()
    assert "jti-x" not in rows


def test_async_path_runs_a_blocking_replay_store_in_a_thread(tmp_path: Any) -> None:
    issuer = FakeIssuer()
    store = SQLReplayStore(sa.create_engine(f"sqlite:///{tmp_path}/r.sqlite3"))
    guard = issuer.guard(replay_store=store)
    raw = bound_token(issuer)

    async def run() -> tuple[Allowed | Denial, Allowed | Denial]:
        first = await guard.protect_async(f"Bearer {raw}", "account.delete")
        second = await guard.protect_async(f"Bearer {raw}", "account.delete")
        return first, second

    first, second = asyncio.run(run())
    assert isinstance(first, Allowed) and isinstance(second, Denial)


def test_a_failing_evidence_hook_fails_closed_with_500() -> None:
    issuer = FakeIssuer()

    def hook(evidence: Evidence) -> None:
        raise RuntimeError("audit down")

    guard: Guard = issuer.guard(on_evidence=hook)
    denial = guard.protect(f"Bearer {issuer.token()}", "keys.reveal")
    assert isinstance(denial, Denial) and denial.status == 500
