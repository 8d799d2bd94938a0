"""The freshness decision, table-driven: ages, amr, acr, binding, replay, evidence."""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType
from typing import Any

import pytest
from freshid_guard import (
    ActionPolicy,
    Allowed,
    Evidence,
    Freshness,
    InMemoryReplayStore,
    StepUp,
    UnknownAction,
    VerifiedToken,
    judge,
)

NOW = 1_800_000_000
MFA = "urn:freshid:acr:mfa"
PHR = "urn:freshid:acr:phr"
ONE = "urn:freshid:acr:1fa"


def token(age: int = 0, **overrides: Any) -> VerifiedToken:
    base = VerifiedToken(
        issuer="https://id.example.test",
        sub="user-1",
        client_id="rp-1",
        jti="jti-1",
        scope=frozenset({"openid"}),
        auth_time=NOW - age,
        acr=ONE,
        amr=("pwd",),
        sid="sid-1",
        iat=NOW,
        exp=NOW + 600,
    )
    return replace(base, **overrides)


def bound(*actions: str) -> tuple[MappingProxyType[str, Any], ...]:
    return tuple(MappingProxyType({"type": "urn:freshid:action", "action": a}) for a in actions)


REVEAL = ActionPolicy("keys.reveal", "reveal an API key", max_age=600)
BILLING = ActionPolicy("billing.update", "change billing details", max_age=300, min_acr=MFA)
DELETE = ActionPolicy(
    "account.delete", "delete your account", max_age=120, amr=frozenset({"hwk", "otp"}), bind=True
)
ZERO = ActionPolicy("now", "do it now", max_age=0)


@pytest.mark.parametrize(
    ("policy", "tok", "expected"),
    [
        # age against max_age; the boundary is allowed (OIDC max_age: "greater than")
        (REVEAL, token(0), "allowed"),
        (REVEAL, token(600), "allowed"),
        (REVEAL, token(601), "stale"),
        (REVEAL, token(10**9), "stale"),
        (ZERO, token(0), "allowed"),
        (ZERO, token(1), "stale"),
        (REVEAL, token(-20), "allowed"),  # within leeway in the future: age counts as 0
        # acr ladder
        (BILLING, token(10, acr=ONE), "acr"),
        (BILLING, token(10, acr=MFA), "allowed"),
        (BILLING, token(10, acr=PHR), "allowed"),
        (BILLING, token(10, acr=None), "acr"),
        (BILLING, token(10, acr="urn:other:gold"), "acr"),
        (BILLING, token(301, acr=PHR), "stale"),
        # amr: any one of the listed values
        (DELETE, token(10, amr=("pwd",), authorization_details=bound("account.delete")), "amr"),
        (DELETE, token(10, amr=(), authorization_details=bound("account.delete")), "amr"),
        (
            DELETE,
            token(10, amr=("pwd", "otp"), authorization_details=bound("account.delete")),
            "allowed",
        ),
        (DELETE, token(10, amr=("hwk",), authorization_details=bound("account.delete")), "allowed"),
        (DELETE, token(121, amr=("hwk",), authorization_details=bound("account.delete")), "stale"),
        # binding
        (DELETE, token(10, amr=("hwk",)), "unbound"),
        (
            DELETE,
            token(10, amr=("hwk",), authorization_details=bound("billing.update")),
            "other_action",
        ),
        (
            DELETE,
            token(
                10, amr=("hwk",), authorization_details=bound("billing.update", "account.delete")
            ),
            "allowed",
        ),
        (REVEAL, token(10, authorization_details=bound("account.delete")), "other_action"),
        (
            DELETE,
            token(
                10,
                amr=("hwk",),
                authorization_details=(MappingProxyType({"type": "payment", "action": "x"}),),
            ),
            "unbound",
        ),
        (
            REVEAL,
            token(10, authorization_details=(MappingProxyType({"type": "payment"}),)),
            "allowed",
        ),
    ],
)
def test_judge(policy: ActionPolicy, tok: VerifiedToken, expected: str) -> None:
    outcome = judge(tok, policy, NOW)
    got = "allowed" if isinstance(outcome, Allowed) else outcome.reason
    assert got == expected
    if isinstance(outcome, StepUp):
        assert outcome.max_age == policy.max_age and outcome.acr_values == policy.min_acr


def test_step_up_descriptions_say_what_the_user_confirms() -> None:
    outcome = judge(token(400), BILLING, NOW)
    assert isinstance(outcome, StepUp)
    assert outcome.description == (
        "Confirm it's you to change billing details: the last proof is too old"
    )
    assert outcome.proof_age == 400


def freshness(**options: Any) -> Freshness:
    return Freshness({p.action: p for p in (REVEAL, BILLING, DELETE)}, **options)


def test_a_bound_proof_is_good_for_one_use() -> None:
    f = freshness()
    tok = token(10, amr=("otp",), authorization_details=bound("account.delete"))
    first = f.require_fresh(tok, "account.delete", NOW)
    assert isinstance(first, Allowed) and first.bound
    second = f.require_fresh(tok, "account.delete", NOW + 1)
    assert isinstance(second, StepUp) and second.reason == "replayed"
    other = f.require_fresh(replace(tok, jti="jti-2"), "account.delete", NOW + 1)
    assert isinstance(other, Allowed)


def test_a_refused_bound_proof_is_not_consumed() -> None:
    f = freshness()
    tok = token(10, amr=("pwd",), authorization_details=bound("account.delete"))
    assert isinstance(f.require_fresh(tok, "account.delete", NOW), StepUp)  # amr
    assert len(f.replay_store) == 0  # type: ignore[arg-type]


def test_unbound_actions_are_not_single_use() -> None:
    f = freshness()
    for _ in range(3):
        assert isinstance(f.require_fresh(token(10), "keys.reveal", NOW), Allowed)


def test_evidence_on_every_allowed_action() -> None:
    seen: list[Evidence] = []
    f = freshness(on_evidence=seen.append)
    tok = token(30, amr=("hwk",), authorization_details=bound("account.delete"))
    f.require_fresh(tok, "account.delete", NOW)
    f.require_fresh(tok, "account.delete", NOW)  # replayed: no evidence
    f.require_fresh(token(30), "keys.reveal", NOW)
    f.require_fresh(token(3000), "keys.reveal", NOW)  # stale: no evidence
    assert [(e.action, e.bound) for e in seen] == [("account.delete", True), ("keys.reveal", False)]
    e = seen[0]
    assert (e.user, e.session, e.auth_time, e.amr, e.token_id, e.proof_age, e.decided_at) == (
        "user-1",
        "sid-1",
        NOW - 30,
        ("hwk",),
        "jti-1",
        30,
        NOW,
    )


def test_a_failing_evidence_hook_refuses_the_action() -> None:
    def boom(evidence: Evidence) -> None:
        raise RuntimeError("audit log down")

    with pytest.raises(RuntimeError):
        freshness(on_evidence=boom).require_fresh(token(1), "keys.reveal", NOW)


def test_unknown_actions_are_programming_errors() -> None:
    with pytest.raises(UnknownAction):
        freshness().require_fresh(token(), "nope", NOW)


def test_in_memory_replay_store_forgets_expired_proofs() -> None:
    store = InMemoryReplayStore()
    assert store.consume("a", "x", NOW + 10, NOW)
    assert not store.consume("a", "x", NOW + 10, NOW + 5)
    assert store.consume("a", "y", NOW + 10, NOW + 5)  # same proof, another action: its own key
    assert store.consume("b", "x", NOW + 100, NOW + 11)  # purges the expired ones
    assert len(store) == 1
