"""Retention: delete the rows no request can ever use again, in small batches, on both stores.

A provider writes rows as it works — a grant and a code per sign-in, a refresh token and an
access-token record per refresh, a session per browser, an interaction per authorization request,
a throttle counter per failed attempt — and no flow deletes them. :func:`prune` deletes the
*dead* ones: rows every request would treat exactly as if they did not exist, or whose only
remaining effect is on things that are themselves dead. Every rule waits a further
:attr:`RetentionPolicy.grace` after the moment the row died, so a request in flight at that
moment, clock skew between nodes or a lifetime setting lowered since never meets a row that
just vanished. Below, ``D`` is ``now - grace``.

``access_tokens``
    RFC 9068 tokens carry their own ``exp``; the record only answers "revoked?" for
    introspection (RFC 7662 §2.2), userinfo and revocation (RFC 7009 §2.2 answers an unknown
    token like a revoked one). An expired token is inactive whatever its record says: deleted
    once ``expires_at <= D``.
``authorization_codes``
    Short-lived and single use (RFC 6749 §4.1.2, §10.5). A *redeemed* code still matters while
    its grant lives: presenting it again must revoke what it issued (RFC 6749 §4.1.2, RFC 9700
    §4.5), and a missing row would answer a plain "invalid code" instead. So a redeemed code goes
    only with its grant. A code never redeemed issued nothing: deleted once ``expires_at <= D``.
``refresh_tokens``
    Rotation (RFC 9700 §4.14.2) retires a token at every use, and the retired token must stay
    findable: presenting it is the theft signal that revokes the whole family
    (:mod:`freshid.protocol.grants.refresh_token`). Deleting it would turn that signal into a plain
    "invalid token". So no refresh token of a live grant is deleted, spent or not; all of a
    grant's tokens go once the grant is dead.
``grants``
    Dead once expired (``expires_at <= D``: ``refresh_token_ttl`` is the family's absolute
    lifetime, which rotation does not extend) or revoked (``revoked_at <= D``): nothing issued
    under them works any more, and a replayed token of a dead family has nothing left to revoke.
    Deleted once nothing refers to them — their codes and refresh tokens go first in the same
    run, their access-token records when those expire (no foreign key cascades, see
    :mod:`freshid.storage.tables`).
``sessions`` and their ``session_authentications``
    Ended once revoked, past ``expires_at`` or idle for ``session_idle_ttl``
    (:func:`freshid.storage.sessions.is_alive`; nothing moves an ended session's
    ``last_seen_at``): deleted once ended at or before ``D`` and no grant refers to them. An
    ``offline_access`` grant outlives its session, and refreshing it reads the session row, so
    the session waits for its grants. The authentication history goes with its session; the
    events that recorded it stay.
``interactions``, ``email_codes``, ``challenges``
    A sign-in page (``interaction_ttl``), an emailed code (single use, minutes) and a WebAuthn
    challenge (WebAuthn §13.4.3: single use, for the ceremony's timeout) are refused after
    ``expires_at``, used or not: deleted once ``expires_at <= D``.
``login_failures``
    A throttle counter (OWASP ASVS 5.0 V6.3) whose window has ended restarts at 1 on the next
    attempt (:mod:`freshid.storage.throttle`), exactly as if it were absent: deleted once
    ``window_start <= D - window``, for the longest window any counter uses.
``credentials``
    Only an authenticator app added but never confirmed (``type = 'totp'`` and ``confirmed_at``
    null: :func:`freshid.storage.credentials.add_totp`, never usable to sign in) older than
    :attr:`RetentionPolicy.abandoned_enrolment`: an enrolment abandoned midway. Confirmed
    credentials are never touched.

Never pruned: ``events`` and the chain head (the audit hash chain, :mod:`freshid.events.chain`:
deleting a link breaks verification, and how long audit evidence is kept is the operator's
decision), webhook deliveries, users, clients, signing keys, known addresses, and the federation
tables (flows and seen SAML assertions purge themselves as new ones arrive).

Deleting: each batch reads up to ``batch_size`` candidate keys in a read transaction (on SQLite a
WAL reader blocks no writer, however long its scan), then deletes those keys in a short write
transaction of one statement that checks the rule again, ``DELETE ... WHERE pk IN (...) AND
<rule>``, so a row that changed meanwhile stays. The write lock (SQLite) or the row locks
(PostgreSQL) are held for one delete by primary key of at most ``batch_size`` rows, never for a
scan; the foreign-key checks of deleting a grant or a session go through an index on every
child table (``authorization_codes.grant_id`` since migration 0008).
Deleting is idempotent: two nodes pruning one PostgreSQL database at once each delete what the
other has not, and a rule, once true for a row, stays true. A table is done when a batch finds
fewer than ``batch_size`` candidates (a concurrent pruner may leave a few for the next run).

The module has a pure part (:class:`RetentionPolicy`, :func:`cutoffs`, the rules) and an I/O part
(:func:`prune`, :class:`Pruner` for the server's periodic job and :func:`background_pruner`).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import sqlalchemy as sa

from freshid.settings import Settings
from freshid.storage.credentials import TOTP
from freshid.storage.database import Database
from freshid.storage.tables import (
    access_tokens,
    authorization_codes,
    challenges,
    credentials,
    email_codes,
    grants,
    interactions,
    login_failures,
    refresh_tokens,
    session_authentications,
    sessions,
)

log = logging.getLogger("freshid.retention")

DAY = 24 * 3600


# -- the pure part ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetentionPolicy:
    """How long dead rows stay, and how many go per statement. All periods in seconds."""

    grace: int = DAY
    """Time a row stays after it died (expired, revoked, ended, used up)."""

    abandoned_enrolment: int = DAY
    """Age at which an authenticator app added but never confirmed is an abandoned enrolment."""

    session_idle_ttl: int = 3 * DAY
    """The idle lifetime sessions end after (``Settings.session_idle_ttl``)."""

    throttle_window: int = 900
    """The longest window any throttle counter counts over."""

    batch_size: int = 1_000
    """Rows deleted per statement (and per write transaction)."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            if getattr(self, f.name) < 0:
                raise ValueError(f"retention {f.name}: must not be negative")
        if self.batch_size < 1:
            raise ValueError("retention batch_size: must be at least 1")

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: int) -> RetentionPolicy:
        # Imported here, not at the top: the fixed windows belong to the methods and pages that
        # count attempts, and the storage layer must not import the pages at module level.
        from freshid.methods.totp import ATTEMPT_WINDOW
        from freshid.ui.methods.email_code import SEND_WINDOW

        policy = cls(
            session_idle_ttl=settings.session_idle_ttl,
            throttle_window=max(settings.throttle_window, ATTEMPT_WINDOW, SEND_WINDOW),
        )
        return dataclasses.replace(policy, **overrides)


@dataclass(frozen=True)
class Cutoffs:
    """Epoch-second thresholds: a row whose time is at or before one is dead."""

    dead_before: int
    """Expired, revoked or ended at or before this: dead for at least the grace."""
    idle_before: int
    """A session last seen at or before this went idle at or before :attr:`dead_before`."""
    throttle_before: int
    """A throttle window that started at or before this ended at or before
    :attr:`dead_before`."""
    enrolment_before: int
    """An unconfirmed TOTP created at or before this is abandoned."""


def cutoffs(now: int, policy: RetentionPolicy) -> Cutoffs:
    dead = now - policy.grace
    return Cutoffs(
        dead_before=dead,
        idle_before=dead - policy.session_idle_ttl,
        throttle_before=dead - policy.throttle_window,
        enrolment_before=now - policy.abandoned_enrolment,
    )


Condition = sa.ColumnElement[bool]
Rule = Callable[[Cutoffs, bool], Condition]
"""``rule(cutoffs, counting)``: the rows of one table this run deletes. ``counting`` (a dry run)
assumes the earlier steps of the run deleted their rows, so the counts match a real run."""


def _at_or_before(column: sa.Column[Any], when: int) -> Condition:
    """Null-safe: a null time (not revoked, not used) is never "at or before"."""
    return sa.and_(column.is_not(None), column <= when)


def _grant_dead(c: Cutoffs) -> Condition:
    return sa.or_(
        grants.c.expires_at <= c.dead_before, _at_or_before(grants.c.revoked_at, c.dead_before)
    )


def _dead_grant_ids(c: Cutoffs) -> sa.Select[Any]:
    return sa.select(grants.c.id).where(_grant_dead(c))


def _access_tokens(c: Cutoffs, counting: bool) -> Condition:
    return access_tokens.c.expires_at <= c.dead_before


def _authorization_codes(c: Cutoffs, counting: bool) -> Condition:
    return sa.or_(
        authorization_codes.c.grant_id.in_(_dead_grant_ids(c)),
        sa.and_(
            authorization_codes.c.used_at.is_(None),
            authorization_codes.c.expires_at <= c.dead_before,
        ),
    )


def _refresh_tokens(c: Cutoffs, counting: bool) -> Condition:
    return refresh_tokens.c.grant_id.in_(_dead_grant_ids(c))


def _grants(c: Cutoffs, counting: bool) -> Condition:
    access = sa.select(access_tokens.c.jti).where(access_tokens.c.grant_id == grants.c.id)
    if counting:
        # The codes and refresh tokens of a dead grant are all deleted before it; only its
        # access-token records still within their grace hold it back.
        return sa.and_(
            _grant_dead(c),
            ~access.where(~_access_tokens(c, counting)).exists(),
        )
    codes = sa.select(authorization_codes.c.code_digest).where(
        authorization_codes.c.grant_id == grants.c.id
    )
    tokens = sa.select(refresh_tokens.c.token_digest).where(
        refresh_tokens.c.grant_id == grants.c.id
    )
    # Every child is indexed by grant_id (migration 0008 for the codes), for these checks and
    # for the foreign-key checks of the DELETE itself.
    return sa.and_(_grant_dead(c), ~codes.exists(), ~tokens.exists(), ~access.exists())


def _session_ended(c: Cutoffs) -> Condition:
    return sa.or_(
        _at_or_before(sessions.c.revoked_at, c.dead_before),
        sessions.c.expires_at <= c.dead_before,
        sessions.c.last_seen_at <= c.idle_before,
    )


def _session_free(c: Cutoffs, counting: bool) -> Condition:
    """Ended, and no grant (that this run keeps) refers to the session."""
    held = sa.select(grants.c.id).where(grants.c.session_id == sessions.c.id)
    if counting:
        held = held.where(~_grants(c, counting))
    return sa.and_(_session_ended(c), ~held.exists())


def _session_authentications(c: Cutoffs, counting: bool) -> Condition:
    # Correlated, not ``session_id IN (...)``: with the keys' ``id IN (...)`` SQLite would probe
    # its (session_id, id) index for every pair of the two lists, under the write lock.
    return (
        sa.select(sessions.c.id)
        .where(
            sessions.c.id == session_authentications.c.session_id,
            _session_free(c, counting),
        )
        .exists()
    )


def _sessions(c: Cutoffs, counting: bool) -> Condition:
    if counting:
        return _session_free(c, counting)
    history = sa.select(session_authentications.c.id).where(
        session_authentications.c.session_id == sessions.c.id
    )
    return sa.and_(_session_free(c, counting), ~history.exists())


def _interactions(c: Cutoffs, counting: bool) -> Condition:
    return interactions.c.expires_at <= c.dead_before


def _email_codes(c: Cutoffs, counting: bool) -> Condition:
    return email_codes.c.expires_at <= c.dead_before


def _challenges(c: Cutoffs, counting: bool) -> Condition:
    return challenges.c.expires_at <= c.dead_before


def _login_failures(c: Cutoffs, counting: bool) -> Condition:
    return login_failures.c.window_start <= c.throttle_before


def _credentials(c: Cutoffs, counting: bool) -> Condition:
    return sa.and_(
        credentials.c.type == TOTP,
        credentials.c.confirmed_at.is_(None),
        credentials.c.created_at <= c.enrolment_before,
    )


@dataclass(frozen=True)
class Step:
    table: sa.Table
    key: sa.Column[Any]
    rule: Rule


STEPS: tuple[Step, ...] = (
    # Children before parents: nothing here cascades, and foreign keys are enforced.
    Step(access_tokens, access_tokens.c.jti, _access_tokens),
    Step(authorization_codes, authorization_codes.c.code_digest, _authorization_codes),
    Step(refresh_tokens, refresh_tokens.c.token_digest, _refresh_tokens),
    Step(grants, grants.c.id, _grants),
    Step(session_authentications, session_authentications.c.id, _session_authentications),
    Step(sessions, sessions.c.id, _sessions),
    Step(interactions, interactions.c.id, _interactions),
    Step(email_codes, email_codes.c.id, _email_codes),
    Step(challenges, challenges.c.id, _challenges),
    Step(login_failures, login_failures.c.bucket, _login_failures),
    Step(credentials, credentials.c.id, _credentials),
)
"""What :func:`prune` deletes, in order."""


# -- the I/O part -------------------------------------------------------------------------------


@dataclass
class PruneReport:
    dry_run: bool
    rows: dict[str, int] = field(default_factory=dict)
    """Rows deleted per table (in a dry run: rows a run would delete now)."""
    batches: dict[str, int] = field(default_factory=dict)
    """DELETE statements run per table (none in a dry run)."""
    complete: bool = True
    """False when the run was asked to stop before its last step."""

    @property
    def total(self) -> int:
        return sum(self.rows.values())


def _delete_batch(db: Database, step: Step, c: Cutoffs, batch_size: int) -> tuple[int, int]:
    """One batch: (candidates found, rows deleted)."""
    with db.read() as conn:
        keys = list(
            conn.execute(sa.select(step.key).where(step.rule(c, False)).limit(batch_size)).scalars()
        )
    if not keys:
        return 0, 0
    with db.write() as conn:
        deleted = conn.execute(
            step.table.delete().where(step.key.in_(keys), step.rule(c, False))
        ).rowcount
    return len(keys), int(deleted)


def prune(
    db: Database,
    now: int,
    policy: RetentionPolicy | None = None,
    *,
    dry_run: bool = False,
    stop: Callable[[], bool] | None = None,
) -> PruneReport:
    """Delete the dead rows of every table in :data:`STEPS` (or only count them, ``dry_run``).

    ``stop`` is asked between batches; when it answers True the run ends early (what is deleted
    stays deleted; the next run carries on)."""
    policy = policy or RetentionPolicy()
    c = cutoffs(now, policy)
    report = PruneReport(dry_run=dry_run)
    for step in STEPS:
        name = step.table.name
        report.rows[name] = 0
        report.batches[name] = 0
        if dry_run:
            with db.read() as conn:
                counted = conn.execute(
                    sa.select(sa.func.count()).select_from(step.table).where(step.rule(c, True))
                ).scalar_one()
            report.rows[name] = int(counted)
            continue
        while True:
            if stop is not None and stop():
                report.complete = False
                return report
            found, deleted = _delete_batch(db, step, c, policy.batch_size)
            if found:
                report.batches[name] += 1
                report.rows[name] += deleted
            if found < policy.batch_size:
                break
    return report


STARTUP_DELAY = 60.0
"""Seconds after start-up before a server's first prune (then every ``retention_interval``)."""


class Pruner:
    """The server's periodic prune: every ``interval`` seconds, in a worker thread, never on the
    event loop. A failed run is logged (its exception type only: messages can quote SQL
    parameters) and the next one tries again."""

    def __init__(
        self,
        db: Database,
        now: Callable[[], int],
        policy: RetentionPolicy,
        interval: float,
        *,
        first_delay: float | None = None,
    ) -> None:
        self.db = db
        self.now = now
        self.policy = policy
        self.interval = interval
        self.first_delay = min(interval, STARTUP_DELAY) if first_delay is None else first_delay
        self.runs = 0
        self.failures = 0
        self.last_error: str | None = None
        self.last_report: PruneReport | None = None
        self._stopping = threading.Event()
        self._limiter = anyio.CapacityLimiter(1)

    def _prune(self) -> PruneReport:
        return prune(self.db, self.now(), self.policy, stop=self._stopping.is_set)

    async def run_once(self) -> PruneReport | None:
        try:
            report = await anyio.to_thread.run_sync(self._prune, limiter=self._limiter)
        except Exception as exc:  # a database outage must not end the job, or the server
            self.failures += 1
            self.last_error = type(exc).__name__
            log.warning("retention prune failed: %s", type(exc).__name__)
            return None
        self.runs += 1
        self.last_report = report
        if report.total:
            deleted = ", ".join(f"{t}={n}" for t, n in report.rows.items() if n)
            log.info("retention pruned %d rows (%s)", report.total, deleted)
        return report

    async def run(self) -> None:
        delay = self.first_delay
        while not self._stopping.is_set():
            await anyio.sleep(delay)
            await self.run_once()
            delay = self.interval

    def stop(self) -> None:
        """Ask a run in progress to end after its current batch."""
        self._stopping.set()


@asynccontextmanager
async def background_pruner(
    db: Database, now: Callable[[], int], policy: RetentionPolicy, interval: float
) -> AsyncIterator[Pruner | None]:
    """Run a :class:`Pruner` for the duration of the block (the app's lifespan); none when
    ``interval`` is 0. On exit a run in progress ends after its current batch."""
    if interval <= 0:
        yield None
        return
    pruner = Pruner(db, now, policy, interval)
    async with anyio.create_task_group() as tg:
        tg.start_soon(pruner.run)
        try:
            yield pruner
        finally:
            pruner.stop()
            # A thread in flight is waited for (one batch at most), so the database is not
            # disposed under it.
            tg.cancel_scope.cancel()
