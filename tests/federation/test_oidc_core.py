"""The pure upstream-OIDC core: ID token validation (OIDC Core §3.1.3.7), the request it sends,
freshness of the upstream proof and the acr/amr mapping. No network, no database."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from freshid.federation.jose import UnknownKid
from freshid.freshness.levels import ACR_1FA, ACR_MFA, ACR_PHR
from freshid.methods import oidc_upstream as core
from freshid.methods.base import Factor, MethodFailed

NOW = 1_800_000_000
ISSUER = "https://idp.example"
CLIENT = "freshid-client"
NONCE = "n-0S6_WzA2Mj"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _int(n: int) -> str:
    return _b64(n.to_bytes((n.bit_length() + 7) // 8, "big"))


def jwks(kid: str = "k1") -> dict[str, Any]:
    pub = KEY.public_key().public_numbers()
    return {"keys": [{"kty": "RSA", "kid": kid, "use": "sig", "n": _int(pub.n), "e": _int(pub.e)}]}


def token(claims: dict[str, Any] | None = None, **header: Any) -> str:
    body = {
        "iss": ISSUER,
        "aud": CLIENT,
        "sub": "248289761001",
        "exp": NOW + 300,
        "iat": NOW,
        "nonce": NONCE,
        "auth_time": NOW - 5,
        **(claims or {}),
    }
    head = {"alg": "RS256", "kid": "k1", **header}
    signing_input = f"{_b64(json.dumps(head).encode())}.{_b64(json.dumps(body).encode())}"
    if head["alg"] == "HS256":
        mac = hmac.HMAC(b"client-secret", hashes.SHA256())
        mac.update(signing_input.encode())
        sig = mac.finalize()
    elif head["alg"] == "none":
        sig = b""
    else:
        sig = KEY.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64(sig)}"


def validate(id_token: str, keys: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {"issuer": ISSUER, "client_id": CLIENT, "nonce": NONCE, "now": NOW}
    args.update(kw)
    return core.validate_id_token(id_token, keys or jwks(), **args)


def test_a_valid_id_token_passes() -> None:
    assert validate(token())["sub"] == "248289761001"


@pytest.mark.parametrize(
    ("claims", "header", "reason"),
    [
        ({"iss": "https://other.example"}, {}, "wrong_issuer"),
        ({"aud": "someone-else"}, {}, "wrong_audience"),
        ({"aud": [CLIENT, "other"]}, {}, "wrong_azp"),
        ({"aud": [CLIENT, "other"], "azp": "other"}, {}, "wrong_azp"),
        ({"azp": "other"}, {}, "wrong_azp"),
        ({"exp": NOW - 61}, {}, "id_token_expired"),
        ({"iat": NOW + 120}, {}, "id_token_from_future"),
        ({"nonce": "replayed"}, {}, "wrong_nonce"),
        ({"nonce": None}, {}, "wrong_nonce"),
        ({"exp": None}, {}, "missing_time_claims"),
        ({}, {"alg": "HS256"}, "alg_not_allowed"),
        ({}, {"alg": "none"}, "alg_not_allowed"),
        ({}, {"jku": "https://evil.example/jwks"}, "invalid_signature"),
    ],
)
def test_each_rule_of_id_token_validation(
    claims: dict[str, Any], header: dict[str, Any], reason: str
) -> None:
    with pytest.raises(MethodFailed) as failed:
        validate(token(claims, **header))
    assert failed.value.reason == reason


def test_an_allowed_list_without_the_tokens_alg_refuses_it() -> None:
    with pytest.raises(MethodFailed) as failed:
        validate(token(), algorithms=("ES256",))
    assert failed.value.reason == "alg_not_allowed"


def test_a_signature_by_another_key_is_refused() -> None:
    forged = token()[:-8] + "AAAAAAAA"
    with pytest.raises(MethodFailed) as failed:
        validate(forged)
    assert failed.value.reason == "invalid_signature"


def test_an_unknown_kid_asks_for_a_jwks_refresh() -> None:
    with pytest.raises(UnknownKid):
        validate(token(kid="rotated"))


def test_a_re_authentication_request_demands_a_new_login() -> None:
    flow = core.new_flow()
    url = core.authorization_url(
        "https://idp.example/authorize?tenant=t1",
        client_id=CLIENT,
        redirect_uri="https://id.example/federation/corp/callback",
        scope=("openid", "email"),
        flow=flow,
        force_login=True,
        auth_time_within=3600,
        login_hint="alice@corp.example",
    )
    q = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert q["prompt"] == "login" and q["max_age"] == "0"
    assert q["tenant"] == "t1"
    assert q["state"] == flow.state and q["nonce"] == flow.nonce
    assert q["code_challenge_method"] == "S256" and q["code_challenge"] == flow.challenge
    assert q["login_hint"] == "alice@corp.example"
    plain = core.authorization_url(
        "https://idp.example/authorize",
        client_id=CLIENT,
        redirect_uri="https://id.example/cb",
        scope=("openid",),
        flow=flow,
        force_login=False,
        auth_time_within=3600,
    )
    q = {k: v[0] for k, v in parse_qs(urlsplit(plain).query).items()}
    assert "prompt" not in q and q["max_age"] == "3600"


def _proof(auth_time: int | None, acr: str | None = None, amr: tuple[str, ...] = ()) -> Any:
    return core.UpstreamProof("sub", None, False, auth_time, acr, amr)


@pytest.mark.parametrize(
    ("auth_time", "fresh"),
    [(NOW, True), (NOW - 60, True), (NOW - 61, False), (None, False), (NOW + 30, True)],
)
def test_freshness_of_the_upstream_proof(auth_time: int | None, fresh: bool) -> None:
    if fresh:
        assert core.check_fresh(_proof(auth_time), NOW, 60) == auth_time
    else:
        with pytest.raises(MethodFailed) as failed:
            core.check_fresh(_proof(auth_time), NOW, 60)
        assert failed.value.reason == "upstream_not_fresh"


def test_an_auth_time_far_in_the_future_is_not_trusted() -> None:
    with pytest.raises(MethodFailed) as failed:
        core.check_fresh(_proof(NOW + 600), NOW, 60)
    assert failed.value.reason == "upstream_clock_skew"


@pytest.mark.parametrize(
    ("acr", "amr", "level", "phr"),
    [
        (None, (), ACR_1FA, False),
        (None, ("pwd",), ACR_1FA, False),
        (None, ("pwd", "mfa"), ACR_MFA, False),
        ("urn:corp:mfa", (), ACR_MFA, False),
        ("urn:corp:phr", (), ACR_PHR, True),
        (None, ("pwd", "otp"), ACR_MFA, False),
    ],
)
def test_upstream_acr_and_amr_map_to_factor_kinds(
    acr: str | None, amr: tuple[str, ...], level: str, phr: bool
) -> None:
    assurance = core.Assurance(
        mfa_acr=frozenset({"urn:corp:mfa"}), phr_acr=frozenset({"urn:corp:phr"})
    )
    done = core.completed("corp", _proof(NOW, acr, amr), assurance, completed_at=NOW, forced=True)
    assert done.acr == level and done.phishing_resistant is phr
    assert done.method == "fed:corp" and "fed" in done.amr
    assert ("mfa" in done.amr) is (level != ACR_1FA)
    assert done.upstream == {
        "connection": "corp",
        "subject": "sub",
        "auth_time": NOW,
        "acr": acr,
        "amr": list(amr),
        "forced": True,
    }
    if level == ACR_1FA:
        assert len(done.factors) == 1
    else:
        assert {Factor.KNOWLEDGE, Factor.POSSESSION} <= done.factors or len(done.factors) >= 2


def test_discovery_is_accepted_only_for_its_own_issuer() -> None:
    doc = {
        "issuer": ISSUER,
        "authorization_endpoint": f"{ISSUER}/authorize",
        "token_endpoint": f"{ISSUER}/token",
        "jwks_uri": f"{ISSUER}/jwks",
        "authorization_response_iss_parameter_supported": True,
    }
    assert core.parse_metadata(doc, ISSUER).iss_parameter_supported
    with pytest.raises(MethodFailed, match="metadata_issuer_mismatch"):
        core.parse_metadata({**doc, "issuer": "https://evil.example"}, ISSUER)
    with pytest.raises(MethodFailed, match="metadata_insecure_token_endpoint"):
        core.parse_metadata({**doc, "token_endpoint": "http://idp.example/token"}, ISSUER)


def test_an_authorization_response_from_another_issuer_is_refused() -> None:
    md = core.parse_metadata(
        {
            "issuer": ISSUER,
            "authorization_endpoint": f"{ISSUER}/a",
            "token_endpoint": f"{ISSUER}/t",
            "jwks_uri": f"{ISSUER}/j",
            "authorization_response_iss_parameter_supported": True,
        },
        ISSUER,
    )
    assert core.check_response({"code": "c", "iss": ISSUER}, md, ISSUER) == "c"
    for params in ({"code": "c"}, {"code": "c", "iss": "https://evil.example"}):
        with pytest.raises(MethodFailed, match="issuer_mismatch"):
            core.check_response(params, md, ISSUER)
    with pytest.raises(MethodFailed, match="upstream_error:access_denied"):
        core.check_response({"error": "access_denied", "iss": ISSUER}, md, ISSUER)
