"""RFC 9396 action-bound step-up: a proof made for one action, carried in the token, used once.

The provider side: ``authorization_details`` naming a catalog action forces a proof inside this
interaction even when the session is fresh; the tokens say which action; a bound grant has no
refresh token; the event names the action. The app side: freshid_guard accepts the token for that
action once and for no other action.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest
from freshid_guard import Allowed, Freshness, InMemoryReplayStore, KeySet, StepUp, TokenVerifier

from freshid.freshness.policy import ActionPolicy
from tests.conftest import DEMO_PASSWORD, RunningServer
from tests.protocol.conftest import ADA, EventReader
from tests.protocol.rp import Browser, Callback, RelyingParty

DETAILS = json.dumps([{"type": "urn:freshid:action", "action": "project.delete"}])


@pytest.fixture
def catalog(server: RunningServer) -> dict[str, ActionPolicy]:
    policies = {
        "project.delete": ActionPolicy(
            "project.delete", "delete the project", max_age=120, bind=True
        ),
        "billing.update": ActionPolicy("billing.update", "change billing details", max_age=300),
    }
    server.provider.policies.update(policies)
    return policies


def test_bound_action_forces_a_proof_and_marks_the_token(
    server: RunningServer,
    rp: RelyingParty,
    browser: Browser,
    ada: str,
    events: EventReader,
    catalog: dict[str, ActionPolicy],
) -> None:
    first = rp.authorization_request()
    signed_in = rp.redeem(first, browser.authorize(first.url, ADA, DEMO_PASSWORD))

    # The session is seconds old, but a bound action still needs a proof made for it.
    bound = rp.authorization_request(authorization_details=DETAILS)
    page = browser.open(bound.url)
    assert not isinstance(page, Callback) and page.kind == "reauth"
    assert "to delete the project" in page.html
    callback = browser.submit(page.form("/password"), password=DEMO_PASSWORD)
    assert isinstance(callback, Callback)
    tokens = rp.redeem(bound, callback)

    assert tokens.raw["authorization_details"] == json.loads(DETAILS)
    assert "refresh_token" not in tokens.raw
    assert tokens.id_claims["sid"] == signed_in.id_claims["sid"]
    introspected = rp.oauth.introspect_token(
        rp.metadata["introspection_endpoint"], token=tokens.access_token
    ).json()
    assert introspected["active"] and introspected["authorization_details"] == json.loads(DETAILS)
    reauth = events("authentication.reauthenticated")
    assert reauth[-1].data["action"] == "project.delete"
    issued = events("token.issued")
    assert issued[-1].data["action"] == "project.delete" and issued[-1].data["jti"]

    # The guard, as the app would run it: once for this action, never for another.
    keys = KeySet.from_jwks(rp.jwks())
    token = TokenVerifier(server.url).verify(tokens.access_token, keys, server.clock.now())
    freshness = Freshness(catalog, replay_store=InMemoryReplayStore())
    now = server.clock.now()
    assert isinstance(freshness.require_fresh(token, "project.delete", now), Allowed)
    assert isinstance(freshness.require_fresh(token, "project.delete", now), StepUp)  # replay
    assert isinstance(freshness.require_fresh(token, "billing.update", now), StepUp)


@pytest.mark.parametrize(
    "details",
    [
        "not json",
        "[]",
        json.dumps([{"type": "payment_initiation", "amount": 1}]),
        json.dumps([{"type": "urn:freshid:action", "action": "no.such.action"}]),
        json.dumps([{"type": "urn:freshid:action", "action": "project.delete", "x": 1}]),
        json.dumps(
            [
                {"type": "urn:freshid:action", "action": "project.delete"},
                {"type": "urn:freshid:action", "action": "billing.update"},
            ]
        ),
    ],
)
def test_bad_authorization_details_are_refused(
    rp: RelyingParty,
    browser: Browser,
    ada: str,
    details: str,
    catalog: dict[str, ActionPolicy],
) -> None:
    request = rp.authorization_request(authorization_details=details)
    landing = browser.open(request.url)
    assert isinstance(landing, Callback)
    query = parse_qs(urlsplit(landing.url).query)
    assert query["error"] == ["invalid_authorization_details"]
    assert query["state"] == [request.state]


def test_discovery_names_the_action_type(rp: RelyingParty) -> None:
    assert rp.metadata["authorization_details_types_supported"] == ["urn:freshid:action"]
