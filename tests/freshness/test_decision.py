"""Table-driven tests of the pure freshness decision; time is an argument, nobody sleeps."""

from __future__ import annotations

from dataclasses import replace

import pytest

from freshid.errors import InvalidRequest, LoginRequired, UnmetAuthenticationRequirements
from freshid.freshness import (
    ACR_1FA,
    ACR_MFA,
    ACR_PHR,
    ActionPolicy,
    Allow,
    Authenticate,
    AuthRequest,
    Deny,
    MethodOffer,
    SessionState,
    decide,
)
from freshid.freshness.decision import CHECKS

NOW = 1_800_000_000
HERE = "event-in-this-interaction"
PASSWORD = MethodOffer("password", ("pwd",), frozenset({"knowledge"}), rank=10)
PASSKEY = MethodOffer(
    "passkey",
    ("hwk", "user", "mfa"),
    frozenset({"possession", "inherence"}),
    phishing_resistant=True,
    rank=30,
)
TOTP = MethodOffer("totp", ("otp",), frozenset({"possession"}), rank=20)
EMAIL = MethodOffer("email_code", ("email",), frozenset({"possession"}), rank=5)


def session(
    age: int,
    acr: str = ACR_1FA,
    amr: tuple[str, ...] = ("pwd",),
    user: str = "u1",
    methods: tuple[str, ...] = ("password",),
    factors: frozenset[str] = frozenset({"knowledge"}),
    here: bool = False,
) -> SessionState:
    return SessionState(
        sid="sid-1",
        user_id=user,
        auth_time=NOW - age,
        acr=acr,
        amr=amr,
        methods=methods,
        factors=factors,
        event_id=HERE if here else "an-earlier-event",
    )


def req(**kw: object) -> AuthRequest:
    base = AuthRequest(proved_events=frozenset({HERE}))
    return replace(base, **kw)  # type: ignore[arg-type]


CASES = [
    # (name, session, request, offers, expected type, expected reason or error)
    ("no session -> sign in", None, req(), (PASSWORD,), Authenticate, "no_session"),
    (
        "no session, prompt=none -> login_required",
        None,
        req(prompt=frozenset({"none"})),
        (PASSWORD,),
        Deny,
        LoginRequired,
    ),
    ("fresh session, nothing asked -> allow", session(30), req(), (PASSWORD,), Allow, None),
    ("max_age met exactly -> allow", session(120), req(max_age=120), (PASSWORD,), Allow, None),
    (
        "max_age exceeded by 1 s -> re-auth",
        session(121),
        req(max_age=120),
        (PASSWORD,),
        Authenticate,
        "max_age",
    ),
    (
        "max_age=0 is prompt=login",
        session(10),
        req(max_age=0),
        (PASSWORD,),
        Authenticate,
        "max_age",
    ),
    (
        "prompt=login -> re-auth",
        session(10),
        req(prompt=frozenset({"login"})),
        (PASSWORD,),
        Authenticate,
        "prompt_login",
    ),
    (
        "prompt=login satisfied by a proof in this interaction",
        session(2, here=True),
        req(prompt=frozenset({"login"})),
        (PASSWORD,),
        Allow,
        None,
    ),
    (
        "max_age=1 satisfied by a proof in this interaction",
        session(3, here=True),
        req(max_age=1),
        (PASSWORD,),
        Allow,
        None,
    ),
    (
        "stale with prompt=none -> login_required",
        session(500),
        req(max_age=60, prompt=frozenset({"none"})),
        (PASSWORD,),
        Deny,
        LoginRequired,
    ),
    (
        "prompt=none plus login -> invalid_request",
        session(1),
        req(prompt=frozenset({"none", "login"})),
        (PASSWORD,),
        Deny,
        InvalidRequest,
    ),
    (
        "unsupported prompt -> invalid_request",
        session(1),
        req(prompt=frozenset({"consent"})),
        (PASSWORD,),
        Deny,
        InvalidRequest,
    ),
    (
        "client default_max_age applies",
        session(400),
        req(client_default_max_age=300),
        (PASSWORD,),
        Authenticate,
        "max_age",
    ),
    (
        "request max_age overrides client default",
        session(400),
        req(client_default_max_age=300, max_age=600),
        (PASSWORD,),
        Allow,
        None,
    ),
    (
        "hint names another subject -> new session",
        session(1),
        req(hint_subject="u2"),
        (PASSWORD,),
        Authenticate,
        "hint_mismatch",
    ),
    (
        "hint names another subject, prompt=none -> login_required",
        session(1),
        req(hint_subject="u2", prompt=frozenset({"none"})),
        (PASSWORD,),
        Deny,
        LoginRequired,
    ),
    (
        "hint names this subject -> allow",
        session(1),
        req(hint_subject="u1"),
        (PASSWORD,),
        Allow,
        None,
    ),
    (
        "essential mfa, user has totp -> step up",
        session(1),
        req(essential_acr=(ACR_MFA,)),
        (PASSWORD, TOTP),
        Authenticate,
        "acr",
    ),
    (
        "essential phr, password only -> unmet",
        session(1),
        req(essential_acr=(ACR_PHR,)),
        (PASSWORD,),
        Deny,
        UnmetAuthenticationRequirements,
    ),
    (
        "essential unknown acr -> unmet",
        session(1),
        req(essential_acr=("urn:other:gold",)),
        (PASSWORD,),
        Deny,
        UnmetAuthenticationRequirements,
    ),
    (
        "essential 1fa met by mfa session -> allow",
        session(1, ACR_MFA, ("pwd", "otp", "mfa")),
        req(essential_acr=(ACR_1FA,)),
        (PASSWORD, TOTP),
        Allow,
        None,
    ),
    (
        "voluntary phr, password only -> allow (no downgrade error)",
        session(1),
        req(acr_values=(ACR_PHR,)),
        (PASSWORD,),
        Allow,
        None,
    ),
    (
        "voluntary phr, user has passkey -> step up",
        session(1),
        req(acr_values=(ACR_PHR,)),
        (PASSWORD, PASSKEY),
        Authenticate,
        "acr",
    ),
]


@pytest.mark.parametrize(
    ("name", "sess", "request_", "offers", "kind", "detail"), CASES, ids=[c[0] for c in CASES]
)
def test_decision_table(
    name: str,
    sess: SessionState | None,
    request_: AuthRequest,
    offers: tuple[MethodOffer, ...],
    kind: type,
    detail: object,
) -> None:
    outcome = decide(sess, request_, NOW, offers=offers)
    assert isinstance(outcome, kind), outcome
    if isinstance(outcome, Authenticate):
        assert outcome.reason == detail
    if isinstance(outcome, Deny):
        assert outcome.error is detail


def test_new_session_only_when_no_session_or_other_subject() -> None:
    assert decide(None, req(), NOW).new_session  # type: ignore[union-attr]
    stale = decide(session(999), req(max_age=10), NOW, offers=(PASSWORD,))
    assert isinstance(stale, Authenticate) and not stale.new_session and stale.max_age == 10


def test_max_age_boundary_moves_with_the_clock() -> None:
    s = session(0)
    for elapsed in range(0, 200, 7):
        outcome = decide(s, req(max_age=100), NOW + elapsed, offers=(PASSWORD,))
        assert isinstance(outcome, Allow) == (elapsed <= 100)


def test_reported_acr_is_a_requested_value_when_one_is_met() -> None:
    outcome = decide(
        session(1, ACR_PHR, ("hwk", "user")),
        req(essential_acr=(ACR_1FA, ACR_MFA)),
        NOW,
        offers=(PASSKEY,),
    )
    assert outcome == Allow(ACR_MFA)
    assert decide(session(1), req(), NOW) == Allow(ACR_1FA)


def test_methods_offered_strongest_first_and_only_if_sufficient() -> None:
    outcome = decide(
        session(1, here=True), req(essential_acr=(ACR_MFA,)), NOW, offers=(PASSWORD, TOTP, PASSKEY)
    )
    assert isinstance(outcome, Authenticate)
    assert outcome.methods == ("passkey", "totp")


class TestActionPolicy:
    billing = ActionPolicy("billing.update", "change billing details", max_age=300)
    delete = ActionPolicy(
        "account.delete",
        "delete the account",
        max_age=120,
        amr=frozenset({"hwk", "otp"}),
        bind=True,
    )

    def test_fresh_enough(self) -> None:
        assert isinstance(
            decide(session(299), req(), NOW, policy=self.billing, offers=(PASSWORD,)), Allow
        )

    def test_too_old(self) -> None:
        outcome = decide(session(301), req(), NOW, policy=self.billing, offers=(PASSWORD,))
        assert (
            isinstance(outcome, Authenticate)
            and outcome.reason == "policy"
            and outcome.max_age == 300
        )

    def test_wrong_method_even_when_fresh(self) -> None:
        outcome = decide(session(1), req(), NOW, policy=self.delete, offers=(PASSWORD, TOTP))
        assert isinstance(outcome, Authenticate) and outcome.methods == ("totp",)

    def test_unprovable_action_is_refused_before_asking_for_any_proof(self) -> None:
        # max_age=0 (as the guard sends for bound actions) must not lead to a password prompt
        # that could never satisfy "passkey or authenticator code".
        outcome = decide(session(999), req(max_age=0), NOW, policy=self.delete, offers=(PASSWORD,))
        assert isinstance(outcome, Deny) and outcome.error is UnmetAuthenticationRequirements

    def test_reproof_offers_only_methods_the_action_accepts(self) -> None:
        outcome = decide(
            session(999), req(max_age=0), NOW, policy=self.delete, offers=(PASSWORD, TOTP)
        )
        assert isinstance(outcome, Authenticate) and outcome.methods == ("totp",)

    def test_user_without_an_accepted_method(self) -> None:
        outcome = decide(session(1), req(), NOW, policy=self.delete, offers=(PASSWORD,))
        assert isinstance(outcome, Deny) and outcome.error is UnmetAuthenticationRequirements


def test_second_factor_completes_the_event_started_in_this_interaction() -> None:
    # Password proved 2 s ago, inside this interaction; mfa is essential.
    outcome = decide(
        session(2, here=True), req(essential_acr=(ACR_MFA,)), NOW, offers=(PASSWORD, TOTP, EMAIL)
    )
    # An emailed code is a possession factor too: with the password it makes mfa.
    assert isinstance(outcome, Authenticate) and outcome.methods == ("totp", "email_code")


def test_two_step_route_is_offered_when_no_single_method_suffices() -> None:
    # Proof from an earlier interaction: nothing done here yet; password + TOTP reach mfa.
    outcome = decide(
        session(60), req(essential_acr=(ACR_MFA,)), NOW, offers=(PASSWORD, TOTP, EMAIL)
    )
    assert isinstance(outcome, Authenticate)
    assert outcome.methods == ("totp", "password", "email_code")  # any first step; stronger first


def test_two_possession_factors_are_not_multi_factor() -> None:
    only_possession = (TOTP, EMAIL)
    outcome = decide(
        session(60, amr=("email",), methods=("email_code",), factors=frozenset({"possession"})),
        req(essential_acr=(ACR_MFA,)),
        NOW,
        offers=only_possession,
    )
    assert isinstance(outcome, Deny) and outcome.error is UnmetAuthenticationRequirements


def test_a_proof_from_the_same_second_but_another_interaction_does_not_count() -> None:
    # Whole-second clocks: a sign-in that finished in this very second, before the request.
    outcome = decide(session(0), req(prompt=frozenset({"login"})), NOW, offers=(PASSWORD,))
    assert isinstance(outcome, Authenticate) and outcome.reason == "prompt_login"
    outcome = decide(session(0), req(max_age=0), NOW, offers=(PASSWORD,))
    assert isinstance(outcome, Authenticate) and outcome.reason == "max_age"


def test_pipeline_order_is_declared() -> None:
    names = [c.__name__ for c in CHECKS]
    assert names[:3] == ["check_prompt_values", "check_session_present", "check_hint_subject"]
    assert names.index("check_prompt_login") < names.index("check_max_age")
