"""``decide()``: the one pure function behind every authorization request.

It reads the session, the request (OIDC Core §3.1.2.1 ``prompt``, ``max_age``, ``acr_values``,
§5.5.1.1 essential ``acr`` through ``claims``, ``id_token_hint``), the client's defaults (OIDC
Registration ``default_max_age``) and an optional action policy, plus the current time, and answers
:class:`Allow`, :class:`Authenticate` or :class:`Deny`. It is a declared pipeline of small checks
run in the order of :data:`CHECKS`; the first check that objects decides. No I/O, no clock: ``now``
is an argument.

A proof completed during the current interaction satisfies ``prompt=login`` and any ``max_age``:
the user has just proved it for this very request. The interaction lists the authentication
events completed in it (``proved_events``); comparing times instead would let a sign-in finished
in the same second *before* a ``prompt=login`` request count as made for it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from freshid.errors import (
    InvalidRequest,
    LoginRequired,
    OAuthError,
    UnmetAuthenticationRequirements,
)
from freshid.freshness import levels
from freshid.freshness.policy import ActionPolicy


@dataclass(frozen=True)
class SessionState:
    """What the decision needs to know about the browser's session: its latest authentication
    event (the methods completed together, their combined ``acr`` and ``amr``)."""

    sid: str
    user_id: str
    auth_time: int
    acr: str
    amr: tuple[str, ...]
    methods: tuple[str, ...] = ()
    factors: frozenset[str] = frozenset()
    phishing_resistant: bool = False
    event_id: str | None = None


@dataclass(frozen=True)
class MethodOffer:
    """A method this user has enrolled, and what completing it proves."""

    method: str
    amr: tuple[str, ...]
    factors: frozenset[str]
    phishing_resistant: bool = False
    rank: int = 0


@dataclass(frozen=True)
class AuthRequest:
    prompt: frozenset[str] = frozenset()
    max_age: int | None = None
    acr_values: tuple[str, ...] = ()
    essential_acr: tuple[str, ...] = ()
    hint_subject: str | None = None
    client_default_max_age: int | None = None
    proved_events: frozenset[str] = frozenset()
    """Authentication events completed during this interaction."""


@dataclass(frozen=True)
class Allow:
    acr: str
    """The ``acr`` to state in the ID token: the session's own, or, when the request asked for
    specific values, the strongest requested value the session satisfies (OIDC Core §5.5.1.1)."""


@dataclass(frozen=True)
class Authenticate:
    reason: str
    """``no_session``, ``hint_mismatch``, ``prompt_login``, ``max_age``, ``acr`` or ``policy``."""
    methods: tuple[str, ...] = ()
    """Methods that would satisfy the request, strongest first; empty means any."""
    new_session: bool = False
    """True when the user must sign in from scratch (no session, or another subject): the result
    is a new session, never an extension of the current one."""
    max_age: int | None = None
    """The age limit that was not met, for telling the user why."""


@dataclass(frozen=True)
class Deny:
    error: type[OAuthError]
    description: str


Outcome = Allow | Authenticate | Deny


@dataclass(frozen=True)
class Context:
    session: SessionState | None
    request: AuthRequest
    policy: ActionPolicy | None
    offers: tuple[MethodOffer, ...]
    now: int


Check = Callable[[Context], Authenticate | Deny | None]


def _proved_in_this_interaction(ctx: Context) -> bool:
    s = ctx.session
    return s is not None and s.event_id is not None and s.event_id in ctx.request.proved_events


def _done_here(ctx: Context) -> tuple[frozenset[str], bool, frozenset[str], frozenset[str]]:
    """What this interaction's authentication event has already proved: factors, phishing
    resistance, amr and methods. Empty when the event is not from this interaction."""
    s = ctx.session
    if s is None or not _proved_in_this_interaction(ctx):
        return frozenset(), False, frozenset(), frozenset()
    return s.factors, s.phishing_resistant, frozenset(s.amr), frozenset(s.methods)


def _offers_reaching(
    ctx: Context, acr: str | None, amr: frozenset[str] = frozenset()
) -> tuple[str, ...]:
    """Methods to offer next, best first: those that complete the requirement together with what
    this interaction already proved, then those that start a two-step way to it."""
    factors, phr, done_amr, done = _done_here(ctx)
    candidates = [o for o in ctx.offers if o.method not in done]

    def meets(chosen: list[MethodOffer]) -> bool:
        f = factors.union(*(o.factors for o in chosen))
        level = levels.event_acr(f, phr or any(o.phishing_resistant for o in chosen))
        amr_ok = not amr or bool(amr & done_amr.union(*(set(o.amr) for o in chosen)))
        return (acr is None or levels.satisfies(level, acr)) and amr_ok

    finishing = [o for o in candidates if meets([o])]
    starting = [
        o
        for o in candidates
        if o not in finishing
        and any(meets([o, p]) and not meets([p]) for p in candidates if p is not o)
    ]
    finishing.sort(key=lambda o: -o.rank)
    starting.sort(key=lambda o: -o.rank)
    return tuple(o.method for o in [*finishing, *starting])


def check_prompt_values(ctx: Context) -> Deny | None:
    prompt = ctx.request.prompt
    if "none" in prompt and len(prompt) > 1:
        return Deny(InvalidRequest, "prompt=none cannot be combined with other values")
    unsupported = prompt - {"none", "login"}
    if unsupported:
        return Deny(InvalidRequest, f"unsupported prompt value: {sorted(unsupported)[0]}")
    return None


def check_session_present(ctx: Context) -> Authenticate | None:
    if ctx.session is None:
        return Authenticate("no_session", new_session=True)
    return None


def check_hint_subject(ctx: Context) -> Authenticate | None:
    hint = ctx.request.hint_subject
    if ctx.session is not None and hint is not None and hint != ctx.session.user_id:
        return Authenticate("hint_mismatch", new_session=True)
    return None


def _fitting(ctx: Context) -> tuple[str, ...]:
    """Methods for a re-proof: any, or under an action policy only those that can satisfy it."""
    if ctx.policy is None:
        return _offers_reaching(ctx, None)
    return _offers_reaching(ctx, ctx.policy.min_acr, ctx.policy.amr)


def check_policy_reachable(ctx: Context) -> Deny | None:
    """Refuse up front an action this account has no way to prove, rather than asking for a
    proof that could never be enough."""
    policy = ctx.policy
    if policy is None or ctx.session is None or not (policy.min_acr or policy.amr):
        return None
    if _offers_reaching(ctx, policy.min_acr, policy.amr) or not _policy_unmet(ctx):
        return None
    return Deny(
        UnmetAuthenticationRequirements,
        f"the action {policy.action} needs a sign-in method this account does not have",
    )


def check_prompt_login(ctx: Context) -> Authenticate | None:
    if "login" in ctx.request.prompt and not _proved_in_this_interaction(ctx):
        return Authenticate("prompt_login", _fitting(ctx), max_age=0)
    return None


def _age_exceeded(ctx: Context, max_age: int | None) -> bool:
    if max_age is None or ctx.session is None or _proved_in_this_interaction(ctx):
        return False
    # OIDC Core §3.1.2.1: max_age=0 is prompt=login.
    return max_age == 0 or ctx.now - ctx.session.auth_time > max_age


def check_max_age(ctx: Context) -> Authenticate | None:
    req = ctx.request
    max_age = req.max_age if req.max_age is not None else req.client_default_max_age
    if _age_exceeded(ctx, max_age):
        return Authenticate("max_age", _fitting(ctx), max_age=max_age)
    return None


def _easiest_known(values: tuple[str, ...]) -> str | None:
    known = [v for v in values if levels.rank(v) > 0]
    return min(known, key=levels.rank) if known else None


def check_essential_acr(ctx: Context) -> Authenticate | Deny | None:
    wanted = ctx.request.essential_acr
    if not wanted or ctx.session is None:
        return None
    if any(levels.satisfies(ctx.session.acr, v) for v in wanted):
        return None
    easiest = _easiest_known(wanted)
    methods = _offers_reaching(ctx, easiest) if easiest else ()
    if not methods:
        return Deny(
            UnmetAuthenticationRequirements,
            "the essential acr cannot be met with this account's sign-in methods",
        )
    return Authenticate("acr", methods)


def check_voluntary_acr(ctx: Context) -> Authenticate | None:
    wanted = ctx.request.acr_values
    if not wanted or ctx.session is None or ctx.request.essential_acr:
        return None
    if any(levels.satisfies(ctx.session.acr, v) for v in wanted):
        return None
    easiest = _easiest_known(wanted)
    methods = _offers_reaching(ctx, easiest) if easiest else ()
    # Voluntary (OIDC Core §3.1.2.1): ask for more only when the user can give it.
    return Authenticate("acr", methods) if methods else None


def _policy_unmet(ctx: Context) -> bool:
    policy, session = ctx.policy, ctx.session
    assert policy is not None and session is not None
    stale = _age_exceeded(ctx, policy.max_age)
    weak = policy.min_acr is not None and not levels.satisfies(session.acr, policy.min_acr)
    wrong_method = bool(policy.amr) and not (policy.amr & set(session.amr))
    # A bound action (RFC 9396) needs a proof made for it: in this very interaction.
    unbound = policy.bind and not _proved_in_this_interaction(ctx)
    return stale or weak or wrong_method or unbound


def check_action_policy(ctx: Context) -> Authenticate | Deny | None:
    policy, session = ctx.policy, ctx.session
    if policy is None or session is None or not _policy_unmet(ctx):
        return None
    methods = _offers_reaching(ctx, policy.min_acr, policy.amr)
    if not methods:
        return Deny(
            UnmetAuthenticationRequirements,
            f"the action {policy.action} needs a sign-in method this account does not have",
        )
    return Authenticate("policy", methods, max_age=policy.max_age)


CHECKS: tuple[Check, ...] = (
    check_prompt_values,
    check_session_present,
    check_hint_subject,
    check_policy_reachable,
    check_prompt_login,
    check_max_age,
    check_essential_acr,
    check_voluntary_acr,
    check_action_policy,
)


def _reported_acr(session: SessionState, request: AuthRequest) -> str:
    requested = request.essential_acr or request.acr_values
    met = [v for v in requested if levels.satisfies(session.acr, v)]
    return max(met, key=levels.rank) if met else session.acr


def decide(
    session: SessionState | None,
    request: AuthRequest,
    now: int,
    *,
    policy: ActionPolicy | None = None,
    offers: tuple[MethodOffer, ...] = (),
) -> Outcome:
    ctx = Context(session, request, policy, offers, now)
    for check in CHECKS:
        outcome = check(ctx)
        if outcome is None:
            continue
        if isinstance(outcome, Authenticate) and "none" in request.prompt:
            # OIDC Core §3.1.2.6: prompt=none never shows UI.
            return Deny(LoginRequired, f"end-user authentication is required ({outcome.reason})")
        return outcome
    assert session is not None  # check_session_present objects otherwise
    return Allow(_reported_acr(session, request))
