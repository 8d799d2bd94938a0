"""``kill -9`` one of two ``freshid serve`` processes in the middle of flows.

The survivor finishes every flow the dead node started (the sign-in page it showed, the code it
issued, the refresh tokens it handed out); a client cut off mid-request sees a transport error,
never a wrong answer, and its retry on the survivor gets a clear answer: success when the dead
node's rotation never committed, ``invalid_grant`` when it did. Nothing committed is lost, nothing
uncommitted leaks (the event log and the state tables agree, the audit chain verifies), and the
killed node serves again once restarted.

To kill A at the worst moments on purpose rather than by luck, the test holds A's commits in
PostgreSQL: A's sessions use ``synchronous_commit = on`` and, during the burst, the cluster names a
synchronous standby that does not exist. A's first transaction of rotations (A groups the
rotations that arrive together, ``freshid.storage.group_commit``) then commits locally but waits
(not yet visible, not yet answered) for that standby; A's later transactions wait for the
event-chain lock it holds, and the rotations behind them wait in A. After the kill the standby
requirement is lifted: the first transaction becomes visible — commits whose answers died with
A — and the others end with A's connections, rolled back.
"""

from __future__ import annotations

import threading
from typing import Any

import httpx
import sqlalchemy as sa
from joserfc import jwt
from joserfc.jwk import KeySet

from freshid.storage.database import Database
from freshid.storage.tables import refresh_tokens
from freshid.tokens.secrets import digest
from tests.conftest import DEMO_PASSWORD, free_port
from tests.faults.conftest import (
    NodeProcess,
    PrivatePostgres,
    Spawn,
    check_ledger,
    jti_of,
    revoked_grants,
    seed,
    used_codes,
    wait_for,
    waits,
)
from tests.flows import (
    Code,
    code_from,
    login_page,
    redeem,
    refresh,
    sign_in,
    silent_code,
    userinfo,
)
from tests.protocol.rp import Browser, Callback

BURST = 6
"""Refresh requests in flight on A when it is killed."""

Outcome = httpx.Response | httpx.TransportError


def _claims(node: NodeProcess, id_token: str) -> dict[str, Any]:
    jwks = httpx.get(f"{node.url}/jwks", timeout=10).json()
    return dict(jwt.decode(id_token, KeySet.import_key_set(jwks), algorithms=["ES256"]).claims)


def _invalid_grant(answer: httpx.Response) -> bool:
    return answer.status_code == 400 and answer.json()["error"] == "invalid_grant"


def _used(db: Database, tokens: list[str]) -> list[bool]:
    with db.read() as conn:
        used = {
            r.token_digest: r.used_at is not None
            for r in conn.execute(
                sa.select(refresh_tokens.c.token_digest, refresh_tokens.c.used_at).where(
                    refresh_tokens.c.token_digest.in_([digest(t) for t in tokens])
                )
            )
        }
    return [used[digest(t)] for t in tokens]


def _send_all(
    node: NodeProcess, client: tuple[str, str], tokens: list[str]
) -> tuple[list[threading.Thread], list[Outcome | None]]:
    """One refresh request per token, each from its own thread; outcomes fill in as they end."""
    outcomes: list[Outcome | None] = [None] * len(tokens)

    def send(i: int) -> None:
        try:
            outcomes[i] = refresh(node, client, tokens[i], timeout=60)
        except httpx.TransportError as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=send, args=(i,), daemon=True) for i in range(len(tokens))]
    for t in threads:
        t.start()
    return threads, outcomes


def test_kill_9_a_node_mid_flow_the_survivor_carries_on(
    private_pg: PrivatePostgres, spawn: Spawn
) -> None:
    database = private_pg.url("freshid")
    # Only A's commits ever wait for a standby: every other session commits locally.
    private_pg.execute("ALTER DATABASE freshid SET synchronous_commit = local")
    s = seed(database)
    client_id = s.client[0]
    port_a, port_b = free_port(), free_port()
    issuer = f"http://127.0.0.1:{port_a}"
    url_a = database + "?options=-c%20synchronous_commit%3Don"
    # A delivers no webhooks: its only commits during the burst are the burst's.
    a = spawn("a", url_a, port_a, issuer, "--no-worker", ready=False)
    b = spawn("b", database, port_b, issuer)
    a.wait_ready()
    seen_jtis: set[str] = set()  # every access token a client was answered with

    def tokens_of(answer: httpx.Response) -> dict[str, Any]:
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        seen_jtis.add(jti_of(body["access_token"]))
        return body

    # Flow 1: A shows the sign-in page (the interaction is stored), then dies before the password
    # is posted.
    on_a = Browser(a.url)
    page, verifier, nonce = login_page(on_a, a, client_id)
    # Flow 2: the user signed in on A and A redirected with a code; A dies before it is redeemed.
    browser, code = sign_in(a, client_id, s.email, DEMO_PASSWORD, issuer)
    # Refresh tokens A issued before it dies: one quiet family and the burst's families.
    families = [
        tokens_of(redeem(a, s.client, silent_code(browser, a, client_id, issuer)))["refresh_token"]
        for _ in range(1 + BURST)
    ]
    quiet, burst = families[0], families[1:]

    db = Database(database)
    try:
        private_pg.hold_commits()
        threads, outcomes = _send_all(a, s.client, burst)

        def caught() -> bool:
            # One transaction committed locally and waiting, and another one waiting for the
            # lock it holds: the kill then cuts off both a committed rotation and one that is not.
            held = waits(db)
            return held["SyncRep"] == 1 and held["Lock"] >= 1

        wait_for(caught, 30, "A's rotations to be held in PostgreSQL")
        a.kill9()
        for t in threads:
            t.join(timeout=30)
        private_pg.release_commits()
        # PostgreSQL finishes the held commit and ends A's other transactions (rolled back) as it
        # finds A gone.
        wait_for(lambda: not waits(db), 30, "A's transactions to end")
        used = _used(db, burst)
    finally:
        db.dispose()

    # A client whose request was in flight gets a transport error, never an HTTP answer.
    assert all(o is not None for o in outcomes)
    for outcome, was_used in zip(outcomes, used, strict=True):
        if isinstance(outcome, httpx.Response):  # answered before the standby was required
            tokens_of(outcome)
            assert was_used
    try:
        httpx.get(f"{a.url}/jwks", timeout=5)
        raise AssertionError("the killed node still answers")
    except httpx.ConnectError:
        pass

    # Flow 1 finishes on B: the password POST to the interaction A created, then the code.
    on_b = Browser(b.url, cookies=dict(on_a.http.cookies))
    on_a.close()
    callback = on_b.submit(page.form("/password"), email=s.email, password=DEMO_PASSWORD)
    assert isinstance(callback, Callback), callback
    first = tokens_of(redeem(b, s.client, Code(code_from(callback, issuer), verifier, nonce)))
    claims = _claims(b, first["id_token"])
    assert claims["iss"] == issuer and claims["sub"] == s.user_id and claims["nonce"] == nonce
    on_b.close()

    # Flow 2 finishes on B: the code A issued is redeemed there.
    second = tokens_of(redeem(b, s.client, code))
    assert _claims(b, second["id_token"])["nonce"] == code.nonce
    assert userinfo(b, second["access_token"]).json()["sub"] == s.user_id
    browser.close()

    # The quiet family, issued by A, rotates on B exactly once: the new token works, the old one
    # is refused (and, presented twice, revokes the family as RFC 9700 §4.14.2 says).
    rotated = tokens_of(refresh(b, s.client, quiet))
    assert userinfo(b, rotated["access_token"]).status_code == 200
    assert _invalid_grant(refresh(b, s.client, quiet))
    assert _invalid_grant(refresh(b, s.client, rotated["refresh_token"]))
    replayed = 1

    # The burst: a client that got its answer from A rotates the new token on B. A client cut off
    # retries its old token on B and gets a clear answer: a new token when A had not committed
    # the rotation; invalid_grant when A had (the answer died with A: presenting a used token
    # revokes the family, and the client signs in again).
    answered = lost = cut = 0
    for token, outcome, was_used in zip(burst, outcomes, used, strict=True):
        if isinstance(outcome, httpx.Response):
            answered += 1
            assert tokens_of(refresh(b, s.client, outcome.json()["refresh_token"]))
        elif was_used:
            lost += 1
            retry = refresh(b, s.client, token)
            assert _invalid_grant(retry), retry.text
            replayed += 1
        else:
            cut += 1
            retried = tokens_of(refresh(b, s.client, token))
            assert tokens_of(refresh(b, s.client, retried["refresh_token"]))
    assert lost >= 1 and cut >= 1, (answered, lost, cut)

    # A comes back on its port and serves: a new sign-in, and tokens B issued.
    dead_pid = a.pid
    a.start()
    assert a.pid != dead_pid
    again, fresh = sign_in(a, client_id, s.email, DEMO_PASSWORD, issuer)
    again.close()
    assert userinfo(a, tokens_of(redeem(a, s.client, fresh))["access_token"]).status_code == 200
    assert tokens_of(refresh(a, s.client, first["refresh_token"]))

    # No event lost, none invented: the ledger agrees with the state tables and the chain verifies.
    ledger = check_ledger(database)
    assert seen_jtis <= ledger.jtis
    # The only token events no client saw are the rotations A committed whose answers died with it.
    assert len(ledger.jtis - seen_jtis) == lost
    issued = 1 + BURST + 3  # the families, flows 1 and 2, the sign-in after the restart
    assert ledger.by_type["token.issued"] == issued == used_codes(database)
    # Rotations: quiet 1; answered 2 each (on A, then on B); lost 1 (on A); cut 2 each (the
    # retry on B, then its new token); one after the restart.
    assert ledger.by_type["token.refreshed"] == 1 + 2 * answered + lost + 2 * cut + 1
    assert ledger.by_type["session.created"] == 3
    # Only the families this test replayed were revoked, each for reuse: nothing rotated twice.
    revoked = revoked_grants(database)
    assert len(revoked) == replayed
    assert set(revoked.values()) == {"token.refresh_reuse_detected"}
    # No request the survivor answered ended in an unhandled error.
    assert "unhandled" not in b.log() and "Traceback" not in b.log()
