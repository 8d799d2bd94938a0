"""PostgreSQL restarts under load: two ``freshid serve`` nodes on a private cluster, refresh-token
rotations and sign-ins from several threads, and the cluster restarted twice in the middle —
``pg_ctl restart -m fast``, then a crash: ``pg_ctl stop -m immediate`` while commits are in flight
(held between the commit and its acknowledgement, see ``PrivatePostgres.hold_commits``), kept down
until clients have seen the outage, then started again (crash recovery).

What clients rely on:

- during an outage every request ends promptly with a clean answer: ``503`` with ``Retry-After``
  and, on the token endpoint, the OAuth error ``temporarily_unavailable`` as JSON; on the sign-in
  pages an HTML page saying so. Never a ``500``, a hang, or a dropped connection;
- the nodes recover by themselves (same processes) and requests succeed again;
- refresh rotation stays exactly-once: every token answered with a new one was used once (the new
  one works, the old one is refused);
- no event lost: every rotation and code redemption a client was answered for has its event;
  the only events clients never saw answered are for requests whose commit reached the database
  while the answer could not (the connection died between the commit and its acknowledgement,
  so the node answered 503): such a request's token or code is found used, and its retry is
  refused with ``invalid_grant``. The events agree with the state tables and the chain verifies.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import sqlalchemy as sa

from freshid.storage.database import Database
from freshid.storage.tables import authorization_codes, refresh_tokens
from freshid.tokens.secrets import digest
from tests.conftest import DEMO_PASSWORD
from tests.faults.conftest import (
    NodeProcess,
    PrivatePostgres,
    Spawn,
    check_ledger,
    jti_of,
    seed,
    two_nodes,
    wait_for,
    waits,
)
from tests.flows import (
    Code,
    authorization_request,
    code_from,
    redeem,
    refresh,
    sign_in,
    silent_code,
)
from tests.protocol.rp import Browser, Callback, Page

FAMILIES = 6
"""Refresh-token families, one rotating thread each."""
ROTATIONS = 25
"""Successful rotations each family aims for."""
SIGN_IN_THREADS = 2
SIGN_INS = 4
"""Complete sign-ins (authorize, password, code redemption) per sign-in thread."""
LOAD_SECONDS = 60.0
"""Every load thread gives up after this long (the test then fails)."""
TIMEOUT = 15.0
"""Per-request client timeout: an answer slower than this counts as a hang."""
PACE = 0.02
"""Pause between a client's requests, and before a retry after a 503."""


@dataclass
class Load:
    """What the clients saw, shared by the load threads."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    rotations: int = 0
    succeeded_at: list[float] = field(default_factory=list)
    unavailable: int = 0
    """Clean outage answers: 503 with Retry-After and ``temporarily_unavailable``, or a 503 page."""
    bad: list[str] = field(default_factory=list)
    """Answers no client should get: 500s, hangs, dropped connections, unexpected errors."""
    seen_jtis: set[str] = field(default_factory=set)
    answered: list[tuple[str, str]] = field(default_factory=list)
    """(refresh token presented, refresh token answered)."""
    failed_tokens: set[str] = field(default_factory=set)
    """Refresh tokens that got an outage answer at least once."""
    refused_tokens: set[str] = field(default_factory=set)
    """Refresh tokens refused after an outage answer: their rotation had committed."""
    failed_codes: set[str] = field(default_factory=set)
    refused_codes: set[str] = field(default_factory=set)
    redeemed_codes: set[str] = field(default_factory=set)
    sign_ins: int = 0
    sessions_answered: int = 0
    """Password sign-ins answered with the redirect back to the client (each made a session)."""
    completed_families: int = 0
    latest: dict[int, str] = field(default_factory=dict)
    """Each family's newest refresh token."""

    def note_bad(self, what: str) -> None:
        with self.lock:
            self.bad.append(what)

    def success(self, jti: str) -> None:
        with self.lock:
            self.seen_jtis.add(jti)
            self.succeeded_at.append(time.monotonic())

    def outage(self, answer: httpx.Response) -> bool:
        """Whether a token-endpoint answer is a clean outage answer (then counted)."""
        clean = (
            answer.status_code == 503
            and answer.headers.get("retry-after", "").isdigit()
            and answer.headers.get("cache-control") == "no-store"
            and answer.headers.get("content-type", "").startswith("application/json")
            and answer.json().get("error") == "temporarily_unavailable"
        )
        if clean:
            with self.lock:
                self.unavailable += 1
        return clean

    def page_outage(self, landing: Page | Callback) -> bool:
        """Whether a sign-in step landed on the outage page (then counted)."""
        if (
            isinstance(landing, Page)
            and landing.status == 503
            and "temporarily_unavailable" in landing.html
        ):
            with self.lock:
                self.unavailable += 1
            return True
        return False


def _invalid_grant(answer: httpx.Response) -> bool:
    return answer.status_code == 400 and answer.json().get("error") == "invalid_grant"


def _rotate_family(
    load: Load,
    index: int,
    nodes: tuple[NodeProcess, NodeProcess],
    client: tuple[str, str],
    token: str,
    deadline: float,
) -> None:
    """Rotate one family ROTATIONS times, alternating nodes; retry the same token after an outage
    answer, as a client would."""
    done, attempt = 0, index
    while done < ROTATIONS:
        if time.monotonic() > deadline or load.bad:
            load.note_bad(f"family {index}: stopped after {done} rotations")
            return
        node = nodes[attempt % 2]
        attempt += 1
        try:
            answer = refresh(node, client, token, timeout=TIMEOUT)
        except httpx.TransportError as exc:
            load.note_bad(f"family {index} on {node.name}: {type(exc).__name__} {exc}")
            return
        if answer.status_code == 200:
            body = answer.json()
            load.success(jti_of(body["access_token"]))
            with load.lock:
                load.answered.append((token, body["refresh_token"]))
                load.rotations += 1
                load.latest[index] = body["refresh_token"]
            token = body["refresh_token"]
            done += 1
        elif load.outage(answer):
            with load.lock:
                load.failed_tokens.add(token)
        elif _invalid_grant(answer) and token in load.failed_tokens:
            # The outage answer hid a committed rotation: this family is over (RFC 9700 reuse).
            with load.lock:
                load.refused_tokens.add(token)
                load.latest.pop(index, None)
            return
        else:
            load.note_bad(f"family {index} on {node.name}: {answer.status_code} {answer.text:.200}")
            return
        time.sleep(PACE)
    with load.lock:
        load.completed_families += 1


def _sign_in_once(
    load: Load, node: NodeProcess, client: tuple[str, str], email: str, issuer: str
) -> bool:
    """One complete sign-in and code redemption on ``node``; False when an outage interrupted it
    (the user starts again)."""
    browser = Browser(node.url)
    try:
        url, verifier, nonce = authorization_request(node, client[0])
        page = browser.open(url)  # follows the redirect to the sign-in page
        if not (isinstance(page, Page) and page.kind == "login"):
            if not load.page_outage(page):
                load.note_bad(f"sign-in page on {node.name}: {page!r:.300}")
            return False
        callback = browser.submit(page.form("/password"), email=email, password=DEMO_PASSWORD)
        if not isinstance(callback, Callback):
            if not load.page_outage(callback):
                load.note_bad(f"password on {node.name}: {callback!r:.300}")
            return False
        with load.lock:
            load.sessions_answered += 1
        code = Code(code_from(callback, issuer), verifier, nonce)
        while not load.bad:
            answer = redeem(node, client, code, timeout=TIMEOUT)
            if answer.status_code == 200:
                load.success(jti_of(answer.json()["access_token"]))
                with load.lock:
                    load.redeemed_codes.add(code.code)
                    load.sign_ins += 1
                return True
            if load.outage(answer):
                with load.lock:
                    load.failed_codes.add(code.code)
            elif _invalid_grant(answer) and code.code in load.failed_codes:
                with load.lock:  # the redemption had committed behind an outage answer
                    load.refused_codes.add(code.code)
                return False
            else:
                load.note_bad(f"redeem on {node.name}: {answer.status_code} {answer.text:.200}")
            time.sleep(PACE)
        return False
    except httpx.TransportError as exc:
        load.note_bad(f"sign-in on {node.name}: {type(exc).__name__} {exc}")
        return False
    finally:
        browser.close()


def _sign_ins(
    load: Load,
    index: int,
    nodes: tuple[NodeProcess, NodeProcess],
    client: tuple[str, str],
    email: str,
    issuer: str,
    deadline: float,
) -> None:
    done, attempt = 0, index
    while done < SIGN_INS:
        if time.monotonic() > deadline or load.bad:
            load.note_bad(f"sign-ins {index}: stopped after {done}")
            return
        node = nodes[attempt % 2]
        attempt += 1
        if _sign_in_once(load, node, client, email, issuer):
            done += 1
        time.sleep(PACE)


def _used(db: Database, key: sa.Column[Any], secrets: set[str]) -> set[str]:
    """Which of these refresh tokens or codes the database has as used."""
    by_digest = {digest(s): s for s in secrets}
    table = key.table
    with db.read() as conn:
        rows = conn.execute(
            sa.select(key).where(key.in_(list(by_digest)), table.c.used_at.is_not(None))
        ).scalars()
        return {by_digest[d] for d in rows}


def _commits_held(db: Database) -> bool:
    """A commit is held, and other writers wait behind the event-chain lock it holds."""
    held = waits(db)
    return held["SyncRep"] >= 1 and held["Lock"] >= 2


def _probe_outage(node: NodeProcess, client: tuple[str, str]) -> None:
    """While PostgreSQL is down: the token endpoint and the sign-in page answer 503 at once."""
    started = time.monotonic()
    answer = refresh(node, client, "no-such-token", timeout=TIMEOUT)
    assert answer.status_code == 503, answer.text
    assert answer.json()["error"] == "temporarily_unavailable"
    assert answer.headers["retry-after"].isdigit()
    assert answer.headers["cache-control"] == "no-store"
    url, _, _ = authorization_request(node, client[0])
    page = httpx.get(url, timeout=TIMEOUT)
    assert page.status_code == 503 and page.headers["content-type"].startswith("text/html")
    assert page.headers["retry-after"].isdigit()
    assert time.monotonic() - started < 10


def test_postgres_restarts_under_load(private_pg: PrivatePostgres, spawn: Spawn) -> None:
    database = private_pg.url("freshid")
    s = seed(database)
    nodes = two_nodes(spawn, database)
    a, b = nodes
    pids = (a.pid, b.pid)
    load = Load()
    browser, first = sign_in(a, s.client[0], s.email, DEMO_PASSWORD, a.issuer)
    codes = [first] + [
        silent_code(browser, nodes[i % 2], s.client[0], a.issuer) for i in range(1, FAMILIES)
    ]
    browser.close()
    families = []
    for i, code in enumerate(codes):
        issued = redeem(nodes[i % 2], s.client, code)
        assert issued.status_code == 200, issued.text
        load.success(jti_of(issued.json()["access_token"]))
        families.append(issued.json()["refresh_token"])
    total = FAMILIES * ROTATIONS

    deadline = time.monotonic() + LOAD_SECONDS
    threads = [
        threading.Thread(
            target=_rotate_family, args=(load, i, nodes, s.client, token, deadline), daemon=True
        )
        for i, token in enumerate(families)
    ] + [
        threading.Thread(
            target=_sign_ins,
            args=(load, i, nodes, s.client, s.email, a.issuer, deadline),
            daemon=True,
        )
        for i in range(SIGN_IN_THREADS)
    ]
    for t in threads:
        t.start()

    def progress(fraction: float) -> Callable[[], bool]:
        return lambda: load.rotations >= fraction * total or bool(load.bad)

    wait_for(progress(0.2), LOAD_SECONDS, "a fifth of the rotations")
    private_pg.restart("fast")  # sessions aborted, a clean shutdown, up again at once
    wait_for(progress(0.45), LOAD_SECONDS, "rotations after the fast restart")
    # Crash while commits are in flight: hold them (durable, not yet acknowledged; the first
    # event writer's, with the others queued behind its chain lock), then crash. Crash recovery
    # keeps them, and their clients were answered 503.
    db = Database(database)
    try:
        private_pg.hold_commits()
        wait_for(lambda: _commits_held(db) or bool(load.bad), 20, "commits in flight")
    finally:
        db.dispose()
    private_pg.release_commits(now=False)
    seen_before_crash = load.unavailable
    private_pg.stop("immediate")  # like a crash: no shutdown checkpoint
    _probe_outage(a, s.client)
    wait_for(
        lambda: load.unavailable >= seen_before_crash + 3 or bool(load.bad),
        20,
        "clients to see the outage",
    )
    private_pg.start()  # crash recovery, then connections again
    back = time.monotonic()
    for t in threads:
        t.join(timeout=max(1.0, deadline - time.monotonic() + 5))
    assert not any(t.is_alive() for t in threads), "load threads did not finish"

    assert not load.bad, load.bad
    # The same node processes carried on after both restarts, and succeeded after the crash.
    assert (a.pid, b.pid) == pids and a.alive() and b.alive()
    assert sum(t > back for t in load.succeeded_at) >= FAMILIES
    assert load.sign_ins == SIGN_IN_THREADS * SIGN_INS
    # Each family rotated ROTATIONS times, or ended because an outage answer hid its rotation.
    assert load.completed_families + len(load.refused_tokens) == FAMILIES

    # Exactly once: every family still alive rotates its newest token once more, and every token
    # that was answered with a new one is used, and refused when presented again.
    for index, newest in sorted(load.latest.items()):
        answer = refresh(nodes[index % 2], s.client, newest)
        assert answer.status_code == 200, answer.text
        load.success(jti_of(answer.json()["access_token"]))
        load.answered.append((newest, answer.json()["refresh_token"]))
    presented = {p for p, _ in load.answered}
    assert len(presented) == len(load.answered)  # no token was answered twice
    db = Database(database)
    try:
        assert _used(db, refresh_tokens.c.token_digest, presented) == presented
        # Requests answered 503 whose commit happened anyway: never answered, found used.
        hidden_rotations = _used(db, refresh_tokens.c.token_digest, load.failed_tokens) - presented
        hidden_codes = (
            _used(db, authorization_codes.c.code_digest, load.failed_codes) - load.redeemed_codes
        )
    finally:
        db.dispose()
    # ...and those are exactly the ones whose retry was refused.
    assert hidden_rotations == load.refused_tokens
    assert hidden_codes == load.refused_codes
    for old, _ in load.answered[:: max(1, len(load.answered) // 10)]:
        assert _invalid_grant(refresh(b, s.client, old))

    # No event lost: the events agree with the state tables, the chain verifies, and the token
    # events are those clients were answered for plus those hidden behind an outage answer.
    ledger = check_ledger(database)
    assert load.seen_jtis <= ledger.jtis
    assert len(ledger.jtis - load.seen_jtis) == len(hidden_rotations) + len(hidden_codes)
    assert ledger.by_type["token.refreshed"] == len(load.answered) + len(hidden_rotations)
    assert ledger.by_type["token.issued"] == FAMILIES + load.sign_ins + len(hidden_codes)
    # Sessions: the first sign-in, those answered, and those whose answer the crash took.
    hidden_sessions = ledger.by_type["session.created"] - 1 - load.sessions_answered
    assert hidden_sessions >= 0
    # The crash did catch a change between its commit and its answer, and kept it.
    assert len(hidden_rotations) + len(hidden_codes) + hidden_sessions >= 1
    for node in nodes:
        assert "unhandled" not in node.log(), node.log()[-3000:]
