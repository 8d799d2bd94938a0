"""Federated sign-in and step-up through a SAML 2.0 IdP (pysaml2's ``Server``, in-process)."""

from __future__ import annotations

import pytest

pytest.importorskip("saml2", reason="pysaml2 is not installed")

from freshid.freshness.levels import ACR_MFA
from tests.conftest import RunningServer
from tests.federation.conftest import connect_saml
from tests.federation.peers import FedBrowser
from tests.federation.saml_idp import MFA, SamlIdP
from tests.protocol.conftest import EventReader, RPFactory
from tests.protocol.rp import Callback, Page, RelyingParty, Tokens

pytestmark = pytest.mark.e2e


def _to_idp(browser: FedBrowser, page: Page | Callback) -> Callback:
    assert isinstance(page, Page), page
    at_idp = browser.submit(page, page.form("/fed/corp-saml"))
    assert isinstance(at_idp, Callback), at_idp
    return at_idp


def _sign_in(
    browser: FedBrowser, rp: RelyingParty, idp: SamlIdP, sp: str, authn_age: int = 0
) -> Tokens:
    request = rp.authorization_request()
    sent = idp.read_request(_to_idp(browser, browser.open(request.url)).url)
    assert not sent.force_authn
    done = browser.post(sent.acs_url, idp.respond(sent, authn_age=authn_age, sp_entity_id=sp))
    assert isinstance(done, Callback), done.html
    return rp.redeem(request, done)


def test_sign_in_and_a_forced_step_up(
    server: RunningServer,
    saml_idp: SamlIdP,
    make_rp: RPFactory,
    fed_browser: FedBrowser,
    events: EventReader,
) -> None:
    sp = connect_saml(server, saml_idp, mfa_authn_context=[MFA])
    rp = make_rp()
    first = _sign_in(fed_browser, rp, saml_idp, sp, authn_age=600)
    assert "fed" in first.id_claims["amr"]
    assert server.clock.now() - first.id_claims["auth_time"] >= 600
    assert events("user.created")

    request = rp.authorization_request(max_age="300")
    reauth = fed_browser.open(request.url)
    assert isinstance(reauth, Page) and reauth.title.startswith("Confirm it")
    sent = saml_idp.read_request(_to_idp(fed_browser, reauth).url)
    assert sent.force_authn  # SAML 2.0 Core §3.4.1 ForceAuthn="true"
    form = saml_idp.respond(sent, class_ref=MFA, sp_entity_id=sp)
    done = fed_browser.post(sent.acs_url, form)
    assert isinstance(done, Callback), events("authentication.failed")
    tokens = rp.redeem(request, done)
    assert tokens.id_claims["sid"] == first.id_claims["sid"]
    assert tokens.id_claims["acr"] == ACR_MFA
    assert server.clock.now() - tokens.id_claims["auth_time"] <= 5
    upstream = events("authentication.reauthenticated")[-1].data["upstream"]
    assert upstream["connection"] == "corp-saml" and upstream["subject"] == "alice-saml"
    assert upstream["acr"] == MFA and upstream["forced"] is True

    # The same response posted again: its assertion was already accepted.
    replayed = fed_browser.post(sent.acs_url, form)
    assert isinstance(replayed, Page) and replayed.status == 400
    assert events("authentication.failed")[-1].data["reason"] == "assertion_replayed"


def test_a_step_up_with_an_old_authn_instant_is_refused(
    server: RunningServer,
    saml_idp: SamlIdP,
    make_rp: RPFactory,
    fed_browser: FedBrowser,
    events: EventReader,
) -> None:
    sp = connect_saml(server, saml_idp)
    rp = make_rp()
    _sign_in(fed_browser, rp, saml_idp, sp, authn_age=600)
    request = rp.authorization_request(prompt="login")
    sent = saml_idp.read_request(_to_idp(fed_browser, fed_browser.open(request.url)).url)
    assert sent.force_authn
    # An IdP that ignored ForceAuthn answers with its old session's AuthnInstant.
    refused = fed_browser.post(sent.acs_url, saml_idp.respond(sent, authn_age=600, sp_entity_id=sp))
    assert isinstance(refused, Page) and refused.status == 401, refused
    assert "did not ask you to sign in again" in refused.html
    failed = events("authentication.failed")[-1]
    assert failed.data["reason"] == "upstream_not_fresh"
    assert failed.data["method"] == "fed:corp-saml"
    assert not events("authentication.reauthenticated")


@pytest.mark.parametrize(
    ("knobs", "reason"),
    [
        ({"sign_assertion": False}, "saml_invalid:SignatureError"),
        ({"in_response_to": "id-of-another-request"}, "saml_invalid:UnsolicitedResponse"),
    ],
)
def test_unsigned_or_unsolicited_assertions_are_refused(
    server: RunningServer,
    saml_idp: SamlIdP,
    make_rp: RPFactory,
    fed_browser: FedBrowser,
    events: EventReader,
    knobs: dict[str, object],
    reason: str,
) -> None:
    sp = connect_saml(server, saml_idp)
    rp = make_rp()
    request = rp.authorization_request()
    sent = saml_idp.read_request(_to_idp(fed_browser, fed_browser.open(request.url)).url)
    refused = fed_browser.post(
        sent.acs_url,
        saml_idp.respond(sent, sp_entity_id=sp, **knobs),  # type: ignore[arg-type]
    )
    assert isinstance(refused, Page) and refused.status == 400
    assert events("authentication.failed")[-1].data["reason"] == reason
    assert not events("user.created")
