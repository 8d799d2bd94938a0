"""Refresh tokens (oidcc-refresh-token; OIDC Core §12.2; RFC 9700 §4.14.2 rotation and reuse),
introspection (RFC 7662) and revocation (RFC 7009)."""

from __future__ import annotations

import pytest

from tests.conftest import DEMO_PASSWORD, RunningServer
from tests.protocol.conftest import ADA, EventReader, RPFactory
from tests.protocol.rp import Browser, Callback, OAuthError, RelyingParty, shifted, sign_in

PROOF = ("auth_time", "acr", "amr", "sid")


def test_refreshed_id_token_keeps_the_original_proof_after_a_later_reauthentication(
    server: RunningServer, ada: str, rp: RelyingParty, browser: Browser
) -> None:
    with shifted(server.clock, -300):
        original = sign_in(rp, browser, ADA, DEMO_PASSWORD)
    later = sign_in(rp, browser, ADA, DEMO_PASSWORD, prompt="login")
    assert browser.shown == ["login", "reauth"]
    assert later.id_claims["auth_time"] > original.id_claims["auth_time"]

    refreshed = rp.refresh(original.refresh_token)
    claims = refreshed.id_claims
    for name in PROOF:
        assert claims[name] == original.id_claims[name], name
    for name in ("iss", "sub", "aud", "azp"):
        assert claims[name] == original.id_claims[name], name
    assert claims["iat"] > original.id_claims["iat"]  # a new token, about an old proof
    assert "nonce" not in claims
    introspected = rp.introspect(refreshed.access_token)
    assert introspected["auth_time"] == original.id_claims["auth_time"]


def test_refresh_tokens_rotate_and_reuse_revokes_the_whole_family(
    server: RunningServer, ada: str, rp: RelyingParty, browser: Browser, events: EventReader
) -> None:
    first = sign_in(rp, browser, ADA, DEMO_PASSWORD)
    second = rp.refresh(first.refresh_token)
    third = rp.refresh(second.refresh_token)
    assert len({first.refresh_token, second.refresh_token, third.refresh_token}) == 3
    assert rp.introspect(first.refresh_token) == {"active": False}  # retired by rotation
    assert rp.introspect(third.refresh_token)["active"] is True
    assert rp.userinfo(third.access_token).status_code == 200

    with pytest.raises(OAuthError) as reuse:
        rp.refresh(first.refresh_token)
    assert reuse.value.error == "invalid_grant"

    with pytest.raises(OAuthError) as newest:
        rp.refresh(third.refresh_token)
    assert newest.value.error == "invalid_grant"
    for tokens in (first, second, third):
        assert rp.userinfo(tokens.access_token).status_code == 401
        assert rp.introspect(tokens.access_token) == {"active": False}
    assert rp.introspect(third.refresh_token) == {"active": False}

    [event] = events("token.refresh_reuse_detected")
    assert event.client_id == rp.client_id
    assert event.user_id == ada
    assert event.session_id == first.id_claims["sid"]


def test_a_refused_refresh_request_leaves_the_refresh_token_usable(
    server: RunningServer, ada: str, rp: RelyingParty, browser: Browser, events: EventReader
) -> None:
    tokens = sign_in(rp, browser, ADA, DEMO_PASSWORD, scope="openid offline_access")
    widened = rp.token_request(
        {
            "grant_type": "refresh_token",
            "refresh_token": tokens.refresh_token,
            "scope": "openid email",
        }
    )
    assert widened.status_code == 400 and widened.json()["error"] == "invalid_scope"
    # The client's corrected retry is not mistaken for a stolen token being replayed.
    assert rp.introspect(tokens.refresh_token)["active"] is True
    retried = rp.refresh(tokens.refresh_token)
    assert retried.raw["scope"] == "openid offline_access"
    assert rp.userinfo(tokens.access_token).status_code == 200
    assert events("token.refresh_reuse_detected") == []


def test_refresh_token_without_offline_access_ends_with_its_session(
    server: RunningServer, ada: str, rp: RelyingParty, browser: Browser, events: EventReader
) -> None:
    tokens = sign_in(rp, browser, ADA, DEMO_PASSWORD, scope="openid")
    page = browser.open(f"{rp.metadata['end_session_endpoint']}?id_token_hint={tokens.id_token}")
    assert not isinstance(page, Callback)
    browser.submit(page.form("/logout/confirm"), confirm="yes")
    assert rp.introspect(tokens.refresh_token) == {"active": False}
    for _ in range(2):
        with pytest.raises(OAuthError) as exc:
            rp.refresh(tokens.refresh_token)
        assert exc.value.error == "invalid_grant"
    assert events("token.refresh_reuse_detected") == []  # refused, not "reused"


def test_tokens_introspect_active_with_auth_time_until_revoked_per_rfc7009(
    server: RunningServer, ada: str, rp: RelyingParty, browser: Browser, events: EventReader
) -> None:
    tokens = sign_in(rp, browser, ADA, DEMO_PASSWORD)
    for token, kind in ((tokens.access_token, "bearer"), (tokens.refresh_token, "refresh_token")):
        body = rp.introspect(token)
        assert body["active"] is True
        assert body["token_type"].lower() == kind
        assert body["client_id"] == rp.client_id
        assert body["sub"] == tokens.id_claims["sub"]
        assert body["auth_time"] == tokens.id_claims["auth_time"]
        assert body["exp"] > body["iat"]

    assert rp.revoke(tokens.access_token, "access_token").status_code == 200
    assert rp.introspect(tokens.access_token) == {"active": False}
    assert rp.userinfo(tokens.access_token).status_code == 401
    assert rp.introspect(tokens.refresh_token)["active"] is True
    refreshed = rp.refresh(tokens.refresh_token)
    assert rp.userinfo(refreshed.access_token).status_code == 200

    # RFC 7009 §2.1: revoking the refresh token revokes the grant's access tokens too.
    assert rp.revoke(refreshed.refresh_token, "refresh_token").status_code == 200
    assert rp.introspect(refreshed.refresh_token) == {"active": False}
    assert rp.introspect(refreshed.access_token) == {"active": False}
    assert rp.userinfo(refreshed.access_token).status_code == 401
    with pytest.raises(OAuthError) as exc:
        rp.refresh(refreshed.refresh_token)
    assert exc.value.error == "invalid_grant"
    # Revoking again, or revoking nonsense, is the same quiet 200 (RFC 7009 §2.2).
    assert rp.revoke(refreshed.refresh_token).status_code == 200
    assert rp.revoke("no-such-token").status_code == 200
    kinds = [e.data.get("token_type") for e in events("token.revoked")]
    assert kinds == ["access_token", "refresh_token"]


def test_another_client_can_neither_introspect_nor_revoke_the_tokens(
    server: RunningServer, ada: str, rp: RelyingParty, make_rp: RPFactory, browser: Browser
) -> None:
    tokens = sign_in(rp, browser, ADA, DEMO_PASSWORD)
    other = make_rp(name="Other RP")
    for token in (tokens.access_token, tokens.refresh_token):
        assert other.introspect(token) == {"active": False}
        assert other.revoke(token).status_code == 200
        assert rp.introspect(token)["active"] is True
    with pytest.raises(OAuthError) as exc:
        other.refresh(tokens.refresh_token)
    assert exc.value.error == "invalid_grant"
    assert rp.introspect(tokens.refresh_token)["active"] is True
