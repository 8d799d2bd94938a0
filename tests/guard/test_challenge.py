"""WWW-Authenticate challenges (exact strings) and the browser step-up redirect."""

from __future__ import annotations

import base64
import hashlib
import json
from urllib.parse import parse_qs, urlsplit

import pytest
from freshid_guard import (
    ActionPolicy,
    InMemoryPendingStore,
    InsufficientScope,
    InvalidToken,
    StepUp,
    StepUpRequired,
    TokenMissing,
    UnsafeReturnPath,
    bearer_challenge,
    refusal_challenge,
    safe_return_path,
    step_up_challenge,
    step_up_redirect,
)
from freshid_guard.challenge import sanitize_description

BILLING = ActionPolicy(
    "billing.update", "change billing details", max_age=300, min_acr="urn:freshid:acr:mfa"
)
DELETE = ActionPolicy("account.delete", "delete your account", max_age=120, bind=True)
NOW = 1_800_000_000


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, "Bearer"),
        ({"realm": "acme"}, 'Bearer realm="acme"'),
        (
            {"realm": "acme", "error": "invalid_token", "error_description": "The token expired"},
            'Bearer realm="acme", error="invalid_token", error_description="The token expired"',
        ),
        (
            {"error": "insufficient_scope", "error_description": "", "scope": "read write"},
            'Bearer error="insufficient_scope", scope="read write"',
        ),
        (
            {
                "error": "insufficient_user_authentication",
                "error_description": "More recent authentication is required",
                "max_age": 5,
            },
            'Bearer error="insufficient_user_authentication", '
            'error_description="More recent authentication is required", max_age="5"',
        ),
        (
            {
                "error": "insufficient_user_authentication",
                "error_description": "A different authentication level is required",
                "acr_values": "myACR",
            },
            'Bearer error="insufficient_user_authentication", '
            'error_description="A different authentication level is required", acr_values="myACR"',
        ),
        ({"realm": 'a "quoted" \\ realm'}, 'Bearer realm="a \\"quoted\\" \\\\ realm"'),
        (
            {"error": "invalid_token", "error_description": 'say "hi"\\\n\tnow ✓ ok'},
            'Bearer error="invalid_token", error_description="say \'hi\'/ now ok"',
        ),
    ],
)
def test_bearer_challenge_exact_strings(kwargs: dict[str, object], expected: str) -> None:
    assert bearer_challenge(**kwargs) == expected  # type: ignore[arg-type]


def test_rfc_9470_step_up_challenge() -> None:
    step_up = StepUp(BILLING, "stale", 400)
    assert step_up_challenge(step_up) == (
        'Bearer error="insufficient_user_authentication", '
        "error_description=\"Confirm it's you to change billing details: the last proof is too "
        'old", max_age="300", acr_values="urn:freshid:acr:mfa"'
    )
    assert refusal_challenge(StepUpRequired(step_up), realm="api") == (
        'Bearer realm="api", error="insufficient_user_authentication", '
        "error_description=\"Confirm it's you to change billing details: the last proof is too "
        'old", max_age="300", acr_values="urn:freshid:acr:mfa"'
    )
    no_acr = StepUp(DELETE, "unbound")
    assert step_up_challenge(no_acr) == (
        'Bearer error="insufficient_user_authentication", '
        "error_description=\"Confirm it's you to delete your account: this action needs a proof "
        'given for it alone", max_age="120"'
    )


@pytest.mark.parametrize(
    ("refusal", "expected"),
    [
        (TokenMissing("no bearer token"), "Bearer"),
        (
            InvalidToken("the token has expired"),
            'Bearer error="invalid_token", error_description="the token has expired"',
        ),
        (
            InsufficientScope("needs write", frozenset({"write", "admin"})),
            'Bearer error="insufficient_scope", error_description="needs write", '
            'scope="admin write"',
        ),
    ],
)
def test_refusal_challenges(refusal: InvalidToken, expected: str) -> None:
    assert refusal_challenge(refusal) == expected


def test_description_sanitising_keeps_only_rfc_6749_characters() -> None:
    text = sanitize_description('é"\\\x00\x7f' + "".join(chr(c) for c in range(0x20, 0x7F)))
    assert all(0x20 <= ord(c) <= 0x7E and c not in '"\\' for c in text)


def test_values_that_cannot_be_quoted_are_refused() -> None:
    with pytest.raises(ValueError):
        bearer_challenge(realm="line\nbreak")
    with pytest.raises(ValueError):
        bearer_challenge(error='bad"code')
    with pytest.raises(ValueError):
        bearer_challenge(error="x", max_age=-1)


# --- return paths ---


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/billing",
        "/billing?tab=cards&x=%2F%2F",
        "/a/b/../c",
        "/javascript:alert(1)",
        "/%2F%2Fevil",
    ],
)
def test_same_origin_relative_paths_are_accepted(path: str) -> None:
    assert safe_return_path(path) == path


@pytest.mark.parametrize(
    "path",
    [
        "",
        "//evil.example",
        "//evil.example/billing",
        "/\\evil.example",
        "\\\\evil.example",
        "/\\/evil.example",
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        "https://evil.example/",
        "http:/evil.example",
        "evil.example/billing",
        "billing",
        "/\t/evil.example",
        "/\n/evil.example",
        " /billing",
        "/bill ing",
        "/" + "a" * 3000,
        "data:text/html,hi",
    ],
)
def test_open_redirect_targets_are_refused(path: str) -> None:
    with pytest.raises(UnsafeReturnPath):
        safe_return_path(path)


# --- the redirect ---


def test_step_up_redirect_for_a_stale_proof() -> None:
    redirect = step_up_redirect(
        authorization_endpoint="https://id.example.test/authorize",
        client_id="rp 1",
        redirect_uri="https://app.example/cb?x=1",
        policy=BILLING,
        return_to="/billing?tab=cards",
        now=NOW,
        reason="stale",
        login_hint="ada@example.com",
    )
    parts = urlsplit(redirect.url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "id.example.test", "/authorize")
    q = {k: v[0] for k, v in parse_qs(parts.query, strict_parsing=True).items()}
    pending = redirect.pending
    assert q == {
        "response_type": "code",
        "client_id": "rp 1",
        "redirect_uri": "https://app.example/cb?x=1",
        "scope": "openid",
        "state": pending.state,
        "nonce": pending.nonce,
        "code_challenge": base64.urlsafe_b64encode(
            hashlib.sha256(pending.code_verifier.encode()).digest()
        )
        .rstrip(b"=")
        .decode(),
        "code_challenge_method": "S256",
        "max_age": "300",
        "acr_values": "urn:freshid:acr:mfa",
        "login_hint": "ada@example.com",
    }
    assert "return" not in parts.query and "/billing" not in parts.query
    assert pending.return_to == "/billing?tab=cards" and pending.action == "billing.update"
    assert len(pending.state) >= 32


def test_step_up_redirect_for_a_bound_action_carries_authorization_details() -> None:
    redirect = step_up_redirect(
        authorization_endpoint="https://id.example.test/authorize?tenant=a",
        client_id="rp",
        redirect_uri="https://app.example/cb",
        policy=DELETE,
        return_to="/account",
        now=NOW,
        id_token_hint="eyJ.x.y",
    )
    query = urlsplit(redirect.url).query
    assert "authorization_details=%5B%7B%22type%22%3A%22urn%3Afreshid%3Aaction%22" in query
    q = {k: v[0] for k, v in parse_qs(query).items()}
    assert q["tenant"] == "a"
    assert json.loads(q["authorization_details"]) == [
        {"type": "urn:freshid:action", "action": "account.delete"}
    ]
    assert q["max_age"] == "0"  # a bound proof is always a new one
    assert q["id_token_hint"] == "eyJ.x.y"
    assert "acr_values" not in q and "login_hint" not in q


@pytest.mark.parametrize("reason", ["acr", "amr", "replayed", "other_action"])
def test_reasons_other_than_age_force_a_new_proof(reason: str) -> None:
    redirect = step_up_redirect(
        authorization_endpoint="https://id.example.test/authorize",
        client_id="rp",
        redirect_uri="https://app.example/cb",
        policy=BILLING,
        return_to="/",
        now=NOW,
        reason=reason,  # type: ignore[arg-type]
    )
    assert parse_qs(urlsplit(redirect.url).query)["max_age"] == ["0"]


def test_the_redirect_refuses_unsafe_return_paths_and_bad_endpoints() -> None:
    common = {"client_id": "rp", "redirect_uri": "https://app/cb", "policy": BILLING, "now": NOW}
    with pytest.raises(UnsafeReturnPath):
        step_up_redirect(
            authorization_endpoint="https://id/authorize",
            return_to="//evil",
            **common,  # type: ignore[arg-type]
        )
    with pytest.raises(ValueError):
        step_up_redirect(
            authorization_endpoint="javascript:alert(1)",
            return_to="/",
            **common,  # type: ignore[arg-type]
        )


def test_states_are_unique_and_pending_records_are_one_use() -> None:
    store = InMemoryPendingStore(ttl=60)
    made = [
        step_up_redirect(
            authorization_endpoint="https://id/authorize",
            client_id="rp",
            redirect_uri="https://app/cb",
            policy=BILLING,
            return_to="/billing",
            now=NOW,
        )
        for _ in range(20)
    ]
    assert len({r.pending.state for r in made}) == 20
    for r in made:
        store.save(r.pending)
    assert store.pop(made[0].pending.state, NOW + 10) == made[0].pending
    assert store.pop(made[0].pending.state, NOW + 10) is None
    assert store.pop(made[1].pending.state, NOW + 61) is None  # expired
    assert store.pop("guessed", NOW) is None
