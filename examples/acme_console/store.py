"""What Acme Console keeps in memory: server-side sessions, the users' workspaces, the activity log.

Everything is per process and lost on restart; that is enough for a demo and keeps the console
free of a database. Three small stores, each behind a lock (uvicorn may run sync code in threads):

* :class:`SessionStore` — one :class:`ServerSession` per signed-in browser, found through a random
  key in the signed cookie. It holds what must never sit in a cookie: the access tokens FreshID
  issued (the general one and, per bound action, the action-bound one), the ``state`` values of
  step-ups this browser started, and the form a user submitted before being sent to re-prove it.
* :class:`Workspaces` — each user's Acme account: projects with API keys, billing details. Seeded
  on first sign-in so the demo has something to browse.
* :class:`ActivityLog` — the evidence ``freshid_guard`` reports for every allowed sensitive action
  (which re-verification covered which operation). It outlives a deleted account, as audit
  records do.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict, deque
from dataclasses import dataclass, field, replace

from freshid_guard import Evidence

__all__ = [
    "PLANS",
    "Account",
    "ActivityLog",
    "ApiKey",
    "Billing",
    "Plan",
    "Project",
    "ServerSession",
    "SessionStore",
    "Workspaces",
]

API_KEY_PREFIX = "acme_live_"


# --- server-side sessions -----------------------------------------------------------------------


@dataclass
class ServerSession:
    """The server half of a signed-in browser session (see the module docstring)."""

    key: str
    sub: str
    created_at: float
    access_token: str | None = None
    """The access token of the latest sign-in or unbound step-up (RFC 9068 JWT)."""
    bound_tokens: dict[str, str] = field(default_factory=dict)
    """Action-bound access tokens by action. The console never drops one after use: making a
    bound proof single-use is the guard's replay store's job."""
    step_up_states: set[str] = field(default_factory=set)
    """``state`` values of step-ups started by this browser: a callback must come back to the
    browser that left."""
    drafts: dict[str, dict[str, str]] = field(default_factory=dict)
    """A submitted form per action, kept while the user re-proves it, for the confirm page."""

    def token_for(self, action: str, bound: bool) -> str | None:
        return self.bound_tokens.get(action) if bound else self.access_token


class SessionStore:
    """Bounded in-memory :class:`ServerSession` records that expire ``ttl`` seconds after
    sign-in (the cookie's own lifetime)."""

    def __init__(self, ttl: int, maxsize: int = 10_000) -> None:
        self.ttl = ttl
        self.maxsize = maxsize
        self._items: OrderedDict[str, ServerSession] = OrderedDict()
        self._lock = threading.Lock()

    def create(self, sub: str, now: float) -> ServerSession:
        record = ServerSession(key=secrets.token_urlsafe(32), sub=sub, created_at=now)
        with self._lock:
            self._items[record.key] = record
            while len(self._items) > self.maxsize:
                self._items.popitem(last=False)
        return record

    def get(self, key: str | None, sub: str, now: float) -> ServerSession | None:
        """The live record for ``key``, if it belongs to ``sub``."""
        if key is None:
            return None
        with self._lock:
            record = self._items.get(key)
            if record is not None and now - record.created_at > self.ttl:
                del self._items[key]
                record = None
        if record is None or record.sub != sub:
            return None
        return record

    def drop(self, key: str | None) -> None:
        if key is not None:
            with self._lock:
                self._items.pop(key, None)

    def __len__(self) -> int:
        return len(self._items)


# --- workspaces ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    id: str
    name: str
    price: str


PLANS: tuple[Plan, ...] = (
    Plan("starter", "Starter", "free"),
    Plan("team", "Team", "$49 a month"),
    Plan("enterprise", "Enterprise", "$499 a month"),
)


@dataclass(frozen=True)
class ApiKey:
    id: str
    label: str
    secret: str
    created_at: int

    @property
    def masked(self) -> str:
        return f"{API_KEY_PREFIX}••••••••{self.secret[-4:]}"


@dataclass(frozen=True)
class Project:
    id: str
    name: str
    summary: str
    keys: tuple[ApiKey, ...]

    def key(self, key_id: str) -> ApiKey | None:
        return next((k for k in self.keys if k.id == key_id), None)


@dataclass(frozen=True)
class Billing:
    email: str
    plan: str

    @property
    def plan_name(self) -> str:
        return next((p.name for p in PLANS if p.id == self.plan), self.plan)


@dataclass(frozen=True)
class Account:
    sub: str
    created_at: int
    projects: tuple[Project, ...]
    billing: Billing | None
    deleted_at: int | None = None

    def project(self, project_id: str) -> Project | None:
        return next((p for p in self.projects if p.id == project_id), None)


_SEED: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("rocket-launcher", "Rocket launcher", "Countdowns and launch windows.", ("Production", "CI")),
    ("weather-station", "Weather station", "Readings from the roof sensors.", ("Default",)),
    ("support-inbox", "Support inbox", "Customer tickets, triaged.", ("Zapier bridge",)),
)


def _new_key(label: str, index: int, now: int) -> ApiKey:
    return ApiKey(f"key-{index}", label, API_KEY_PREFIX + secrets.token_hex(16), now)


def _seeded(sub: str, email: str | None, now: int) -> Account:
    projects: list[Project] = []
    index = 0
    for project_id, name, summary, labels in _SEED:
        keys: list[ApiKey] = []
        for label in labels:
            index += 1
            keys.append(_new_key(label, index, now))
        projects.append(Project(project_id, name, summary, tuple(keys)))
    billing = Billing(email=email or "billing@example.com", plan="team")
    return Account(sub=sub, created_at=now, projects=tuple(projects), billing=billing)


class Workspaces:
    """Each user's Acme account, by FreshID subject; created (seeded) on first sign-in."""

    def __init__(self) -> None:
        self._accounts: dict[str, Account] = {}
        self._lock = threading.Lock()

    def open(self, sub: str, email: str | None, now: int) -> Account:
        """The user's account, creating a seeded one on first use."""
        with self._lock:
            account = self._accounts.get(sub)
            if account is None:
                account = self._accounts[sub] = _seeded(sub, email, now)
            return account

    def get(self, sub: str) -> Account | None:
        with self._lock:
            return self._accounts.get(sub)

    def update_billing(self, sub: str, billing: Billing) -> Account:
        with self._lock:
            account = replace(self._accounts[sub], billing=billing)
            self._accounts[sub] = account
            return account

    def delete(self, sub: str, now: int) -> Account:
        """Wipe the account's projects, keys and billing details; remember when."""
        with self._lock:
            account = replace(self._accounts[sub], projects=(), billing=None, deleted_at=now)
            self._accounts[sub] = account
            return account

    def recreate(self, sub: str, email: str | None, now: int) -> Account:
        """A new, seeded account for a user whose account was deleted."""
        with self._lock:
            account = self._accounts[sub] = _seeded(sub, email, now)
            return account


# --- activity -----------------------------------------------------------------------------------


class ActivityLog:
    """The guard's evidence records, newest last, bounded; install :meth:`record` as the guard's
    ``on_evidence`` hook."""

    def __init__(self, maxlen: int = 10_000) -> None:
        self._records: deque[Evidence] = deque(maxlen=maxlen)
        self._lock = threading.Lock()

    def record(self, evidence: Evidence) -> None:
        with self._lock:
            self._records.append(evidence)

    def for_user(self, sub: str) -> list[Evidence]:
        """The user's records, newest first."""
        with self._lock:
            return [e for e in reversed(self._records) if e.user == sub]

    def all(self) -> list[Evidence]:
        with self._lock:
            return list(self._records)
