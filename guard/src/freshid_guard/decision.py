"""The freshness decision: may this verified token perform this action now?

:func:`judge` is pure. For an :class:`~freshid_guard.policy.ActionPolicy` it applies, in order:

1. **other action** — a token whose proof is bound to actions (RFC 9396 ``authorization_details``
   of type ``urn:freshid:action``) is refused for every action it does not name;
2. **stale** — the proof's age, ``now - auth_time`` (OIDC Core §2), exceeds ``max_age``
   (the boundary is allowed, as with OIDC ``max_age``);
3. **acr** — the token's ``acr`` is below ``min_acr`` on the FreshID ladder;
4. **amr** — the policy lists ``amr`` values (RFC 8176) and the token carries none of them;
5. **unbound** — the policy says ``bind`` and the token does not name this action.

:class:`Freshness` adds the stateful part: for ``bind`` actions the token's ``jti`` is consumed in a
:class:`ReplayStore` for that action, so a bound proof authorizes one use; a second use is refused
(**replayed**). A refusal is a :class:`StepUp`, which the challenge and redirect builders turn into
an RFC 9470 ``WWW-Authenticate`` header or a re-authentication redirect.

**Evidence.** ``on_evidence`` is called with an :class:`Evidence` record on *every* allowed action
of the catalog — bound or not — after a bound proof has been consumed; ``Evidence.bound`` tells
which. An app can thus show which re-verification covered which operation. If the hook raises,
the exception propagates and the action does not happen (adapters answer ``500``); a bound proof
consumed before stays consumed, so audit gaps fail closed.

The decision is never cached: only token verification is.
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

from freshid_guard._frozen import build
from freshid_guard.acr import satisfies
from freshid_guard.errors import UnknownAction
from freshid_guard.policy import ActionPolicy
from freshid_guard.verify import DEFAULT_LEEWAY, VerifiedToken

_NO_ACTIONS: frozenset[str] = frozenset()

StepUpReason = Literal["other_action", "stale", "acr", "amr", "unbound", "replayed"]


@dataclass(frozen=True)
class Allowed:
    """The action may proceed."""

    token: VerifiedToken
    policy: ActionPolicy
    proof_age: int
    bound: bool = False
    """Whether a bound proof (one use of this action) was consumed for it."""

    @property
    def action(self) -> str:
        return self.policy.action


_REASONS: Mapping[StepUpReason, str] = {
    "other_action": "this proof was given for another action",
    "stale": "the last proof is too old",
    "acr": "a stronger authentication is required",
    "amr": "a different authentication method is required",
    "unbound": "this action needs a proof given for it alone",
    "replayed": "this proof has already been used",
}


@dataclass(frozen=True)
class StepUp:
    """The user must authenticate again before the action (RFC 9470)."""

    policy: ActionPolicy
    reason: StepUpReason
    proof_age: int | None = None
    """The presented proof's age in seconds, when there was one."""

    @property
    def action(self) -> str:
        return self.policy.action

    @property
    def max_age(self) -> int:
        return self.policy.max_age

    @property
    def acr_values(self) -> str | None:
        return self.policy.min_acr

    @property
    def description(self) -> str:
        """Human text for ``error_description`` (sanitised to RFC 6749 characters on output)."""
        return f"Confirm it's you to {self.policy.label}: {_REASONS[self.reason]}"


@dataclass(frozen=True)
class Evidence:
    """What an allowed sensitive action rested on (see the module docstring)."""

    user: str
    session: str | None
    client_id: str
    action: str
    auth_time: int
    proof_age: int
    acr: str | None
    amr: tuple[str, ...]
    token_id: str
    bound: bool
    decided_at: int


EvidenceHook = Callable[[Evidence], None]


def judge(token: VerifiedToken, policy: ActionPolicy, now: int) -> Allowed | StepUp:
    """The pure decision (checks 1-5 above), without consuming a bound proof."""
    age = now - token.auth_time
    if age < 0:
        age = 0
    # Most tokens carry no authorization details: skip the property call for them.
    bound_to = token.bound_actions if token.authorization_details else _NO_ACTIONS
    if bound_to and policy.action not in bound_to:
        return StepUp(policy, "other_action", age)
    if age > policy.max_age:
        return StepUp(policy, "stale", age)
    if policy.min_acr is not None and not satisfies(token.acr, policy.min_acr):
        return StepUp(policy, "acr", age)
    if policy.amr and policy.amr.isdisjoint(token.amr):
        return StepUp(policy, "amr", age)
    if policy.bind and policy.action not in bound_to:
        return StepUp(policy, "unbound", age)
    # Every allowed request builds one: without the dataclass __init__ (see _frozen).
    return build(Allowed, token=token, policy=policy, proof_age=age, bound=policy.bind)


class ReplayStore(Protocol):
    """Remembers which bound proofs were used, until they expire."""

    blocking: bool
    """Whether :meth:`consume` does blocking I/O (async adapters then run it in a thread)."""

    def consume(self, jti: str, action: str, expires_at: int, now: int) -> bool:
        """Record one use of proof ``jti`` for ``action``; ``False`` if it was used before."""
        ...


class InMemoryReplayStore:
    """A per-process :class:`ReplayStore`; entries live until the token's expiry.

    Enough for one app process. Several processes need a shared store
    (:class:`freshid_guard.replay_sql.SQLReplayStore`), or one process could accept a proof that
    another already consumed.
    """

    blocking = False

    def __init__(self) -> None:
        self._used: dict[tuple[str, str], int] = {}
        self._expiry: list[tuple[int, str, str]] = []
        self._lock = threading.Lock()

    def consume(self, jti: str, action: str, expires_at: int, now: int) -> bool:
        with self._lock:
            while self._expiry and self._expiry[0][0] <= now:
                _, old_jti, old_action = heapq.heappop(self._expiry)
                if self._used.get((old_jti, old_action), now + 1) <= now:
                    del self._used[(old_jti, old_action)]
            key = (jti, action)
            if key in self._used:
                return False
            self._used[key] = expires_at
            heapq.heappush(self._expiry, (expires_at, jti, action))
            return True

    def __len__(self) -> int:
        return len(self._used)


class Freshness:
    """The catalog, the replay store and the evidence hook: one call decides an action."""

    def __init__(
        self,
        policies: Mapping[str, ActionPolicy],
        *,
        replay_store: ReplayStore | None = None,
        on_evidence: EvidenceHook | None = None,
        leeway: int = DEFAULT_LEEWAY,
    ) -> None:
        for name, policy in policies.items():
            if name != policy.action:
                raise ValueError(f"policy for {name!r} is named {policy.action!r}")
        self.policies = dict(policies)
        # "is not None": an empty InMemoryReplayStore is falsy (it has __len__), yet it was given.
        self.replay_store: ReplayStore = (
            replay_store if replay_store is not None else InMemoryReplayStore()
        )
        self.on_evidence = on_evidence
        self.leeway = leeway

    def policy(self, action: str) -> ActionPolicy:
        try:
            return self.policies[action]
        except KeyError:
            raise UnknownAction(f"no policy for action {action!r}") from None

    def needs_blocking_io(self, action: str) -> bool:
        return self.policy(action).bind and self.replay_store.blocking

    def require_fresh(self, token: VerifiedToken, action: str, now: int) -> Allowed | StepUp:
        """Judge ``token`` for ``action`` at ``now``, consume a bound proof, record evidence."""
        return self.decide(token, self.policy(action), now)

    def decide(self, token: VerifiedToken, policy: ActionPolicy, now: int) -> Allowed | StepUp:
        """:meth:`require_fresh` for a policy already looked up (the caller checked the action
        exists before verifying the token; one dictionary lookup per request is enough)."""
        action = policy.action
        outcome = judge(token, policy, now)
        if isinstance(outcome, StepUp):
            return outcome
        if policy.bind and not self.replay_store.consume(
            token.jti, action, token.exp + self.leeway, now
        ):
            return StepUp(policy, "replayed", outcome.proof_age)
        if self.on_evidence is not None:
            self.on_evidence(
                Evidence(
                    user=token.sub,
                    session=token.sid,
                    client_id=token.client_id,
                    action=action,
                    auth_time=token.auth_time,
                    proof_age=outcome.proof_age,
                    acr=token.acr,
                    amr=token.amr,
                    token_id=token.jti,
                    bound=outcome.bound,
                    decided_at=now,
                )
            )
        return outcome
