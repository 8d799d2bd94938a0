"""Scale-out on one PostgreSQL: any node continues any flow, and the exactly-once transitions
(code redemption, refresh rotation) stay exactly-once when two nodes race for them
(RFC 6749 §4.1.2 and RFC 9700 §4.5, §4.14.2: a second use revokes the grant)."""

from __future__ import annotations

from typing import Any

import httpx
import sqlalchemy as sa
from joserfc import jwt
from joserfc.jwk import KeySet

from freshid.storage.tables import events
from tests.conftest import DEMO_PASSWORD, RunningServer
from tests.flows import (
    Code,
    authorization_request,
    code_from,
    one_winner,
    race,
    redeem,
    refresh,
    silent_code,
    userinfo,
)
from tests.protocol.rp import Browser, Callback, Page
from tests.scale.conftest import Cluster

ROUNDS = 5
RACERS = 4  # per round: two requests on each node


def _id_claims(cluster: Cluster, node: RunningServer, id_token: str) -> dict[str, Any]:
    jwks = httpx.get(f"{node.url}/jwks").json()
    decoded = jwt.decode(id_token, KeySet.import_key_set(jwks), algorithms=["ES256"])
    return dict(decoded.claims)


def _events(node: RunningServer, type_: str, client_id: str) -> list[dict[str, Any]]:
    with node.provider.db.read() as conn:
        rows = conn.execute(
            sa.select(events).where(events.c.type == type_, events.c.client_id == client_id)
        ).all()
    return [dict(r.data) for r in rows]


def _sign_in_across(
    cluster: Cluster, user: tuple[str, str], client_id: str
) -> tuple[Browser, Code]:
    """Start on node A (authorization request and sign-in page), finish on node B (the password
    POST and the redirect with the code); the browser keeps its cookies across nodes."""
    url, verifier, nonce = authorization_request(cluster.a, client_id)
    on_a = Browser(cluster.a.url)
    page = on_a.open(url)
    assert isinstance(page, Page) and page.kind == "login"
    assert page.url.startswith(cluster.a.url + "/interaction/")
    on_b = Browser(cluster.b.url, cookies=dict(on_a.http.cookies))
    on_a.close()
    callback = on_b.submit(page.form("/password"), email=user[0], password=DEMO_PASSWORD)
    assert isinstance(callback, Callback), callback
    return on_b, Code(code_from(callback, cluster.issuer), verifier, nonce)


def test_a_flow_started_on_one_node_finishes_on_the_other(
    cluster: Cluster, user: tuple[str, str], client: tuple[str, str]
) -> None:
    browser, code = _sign_in_across(cluster, user, client[0])
    try:
        tokens = redeem(cluster.b, client, code)
        assert tokens.status_code == 200, tokens.text
        body = tokens.json()
        claims = _id_claims(cluster, cluster.b, body["id_token"])
        assert claims["iss"] == cluster.issuer and claims["sub"] == user[1]
        assert claims["aud"] == client[0] and claims["nonce"] == code.nonce
        # Node A honours what node B issued: the access token, the refresh token, the session.
        info = userinfo(cluster.a, body["access_token"])
        assert info.status_code == 200 and info.json()["sub"] == user[1]
        refreshed = refresh(cluster.a, client, body["refresh_token"])
        assert refreshed.status_code == 200, refreshed.text
        again = _id_claims(cluster, cluster.a, refreshed.json()["id_token"])
        assert again["sid"] == claims["sid"] and again["auth_time"] == claims["auth_time"]
        silent = silent_code(browser, cluster.a, client[0], cluster.issuer)
        assert redeem(cluster.a, client, silent).status_code == 200
    finally:
        browser.close()


def test_code_redemption_raced_across_nodes_is_exactly_once(
    cluster: Cluster, user: tuple[str, str], client: tuple[str, str]
) -> None:
    browser, first = _sign_in_across(cluster, user, client[0])
    codes = [first] + [
        silent_code(browser, cluster.a, client[0], cluster.issuer) for _ in range(ROUNDS - 1)
    ]
    browser.close()
    for code in codes:
        answers = race(
            *(lambda c=code, n=cluster.nodes[i % 2]: redeem(n, client, c) for i in range(RACERS))
        )
        winner = one_winner(answers)
        # The loser's presentation looked like theft: the grant is revoked on every node.
        for node in cluster.nodes:
            assert userinfo(node, winner.json()["access_token"]).status_code == 401
        rotated = refresh(cluster.b, client, winner.json()["refresh_token"])
        assert rotated.status_code == 400 and rotated.json()["error"] == "invalid_grant"
    # Every losing presentation was recorded as a reuse.
    reuses = _events(cluster.a, "authorization_code.reuse_detected", client[0])
    assert len(reuses) == ROUNDS * (RACERS - 1)
    assert len(_events(cluster.a, "token.issued", client[0])) == ROUNDS


def test_refresh_rotation_raced_across_nodes_is_exactly_once(
    cluster: Cluster, user: tuple[str, str], client: tuple[str, str]
) -> None:
    browser, first = _sign_in_across(cluster, user, client[0])
    codes = [first] + [
        silent_code(browser, cluster.b, client[0], cluster.issuer) for _ in range(ROUNDS - 1)
    ]
    browser.close()
    for code in codes:
        issued = redeem(cluster.a, client, code)
        assert issued.status_code == 200, issued.text
        refresh_token = issued.json()["refresh_token"]

        def rotate(node: RunningServer, presented: str = refresh_token) -> httpx.Response:
            return refresh(node, client, presented)

        answers = race(*(lambda n=cluster.nodes[i % 2]: rotate(n) for i in range(RACERS)))
        winner = one_winner(answers)
        # Reuse detection revoked the family: the winner's new tokens are dead on both nodes.
        for node in cluster.nodes:
            again = rotate(node, winner.json()["refresh_token"])
            assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
            assert userinfo(node, winner.json()["access_token"]).status_code == 401
    # Reuse detected at least once per family (a loser arriving after the revocation is told the
    # token was revoked, without a second event).
    reuses = _events(cluster.a, "token.refresh_reuse_detected", client[0])
    assert len({r["grant_id"] for r in reuses}) == ROUNDS
    assert len(_events(cluster.a, "token.refreshed", client[0])) == ROUNDS
