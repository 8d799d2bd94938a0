"""Scale-out on one PostgreSQL: any node continues any flow, and the exactly-once transitions
(code redemption, refresh rotation) stay exactly-once when two nodes race for them
(RFC 6749 §4.1.2 and RFC 9700 §4.5, §4.14.2: a second use revokes the grant)."""

from __future__ import annotations

import hashlib
import secrets
import threading
from base64 import urlsafe_b64encode
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import sqlalchemy as sa
from joserfc import jwt
from joserfc.jwk import KeySet

from freshid.storage.tables import events
from tests.conftest import DEMO_PASSWORD, RunningServer
from tests.protocol.rp import Browser, Callback, Page
from tests.scale.conftest import REDIRECT_URI, Cluster

ROUNDS = 5
RACERS = 4  # per round: two requests on each node


@dataclass(frozen=True)
class Code:
    code: str
    verifier: str
    nonce: str


def _request(node: RunningServer, client_id: str, **extra: str) -> tuple[str, str, str]:
    verifier, nonce = secrets.token_urlsafe(48), secrets.token_urlsafe(16)
    challenge = urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    query = {
        "client_id": client_id,
        "redirect_uri": REDIRECT_URI,
        "response_type": "code",
        "scope": "openid offline_access",
        "state": secrets.token_urlsafe(8),
        "nonce": nonce,
        "code_challenge": challenge.decode(),
        "code_challenge_method": "S256",
        **extra,
    }
    return f"{node.url}/authorize?{urlencode(query)}", verifier, nonce


def _code(callback: Callback, cluster: Cluster) -> str:
    assert callback.base == REDIRECT_URI, callback.url
    assert callback.params["iss"] == cluster.issuer  # RFC 9207: the shared issuer, on any node
    return callback.params["code"]


def _token(node: RunningServer, client: tuple[str, str], **body: str) -> httpx.Response:
    return httpx.post(f"{node.url}/token", data=body, auth=client, timeout=30)


def _redeem(node: RunningServer, client: tuple[str, str], code: Code) -> httpx.Response:
    return _token(
        node,
        client,
        grant_type="authorization_code",
        code=code.code,
        redirect_uri=REDIRECT_URI,
        code_verifier=code.verifier,
    )


def _id_claims(cluster: Cluster, node: RunningServer, id_token: str) -> dict[str, Any]:
    jwks = httpx.get(f"{node.url}/jwks").json()
    decoded = jwt.decode(id_token, KeySet.import_key_set(jwks), algorithms=["ES256"])
    return dict(decoded.claims)


def _userinfo(node: RunningServer, access_token: str) -> httpx.Response:
    return httpx.get(f"{node.url}/userinfo", headers={"Authorization": f"Bearer {access_token}"})


def _race(*calls: Callable[[], httpx.Response]) -> list[httpx.Response]:
    """Run the calls in threads released at the same instant; their answers, in call order."""
    barrier = threading.Barrier(len(calls))
    answers: list[httpx.Response | None] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        answers[i] = calls[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert all(a is not None for a in answers)
    return [a for a in answers if a is not None]


def _one_winner(answers: list[httpx.Response]) -> httpx.Response:
    """Exactly one 200; every other answer is ``invalid_grant``."""
    winners = [a for a in answers if a.status_code == 200]
    losers = [a for a in answers if a.status_code != 200]
    assert len(winners) == 1, [(a.status_code, a.text[:100]) for a in answers]
    for loser in losers:
        assert loser.status_code == 400 and loser.json()["error"] == "invalid_grant", loser.text
    return winners[0]


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
    url, verifier, nonce = _request(cluster.a, client_id)
    on_a = Browser(cluster.a.url)
    page = on_a.open(url)
    assert isinstance(page, Page) and page.kind == "login"
    assert page.url.startswith(cluster.a.url + "/interaction/")
    on_b = Browser(cluster.b.url, cookies=dict(on_a.http.cookies))
    on_a.close()
    callback = on_b.submit(page.form("/password"), email=user[0], password=DEMO_PASSWORD)
    assert isinstance(callback, Callback), callback
    return on_b, Code(_code(callback, cluster), verifier, nonce)


def _silent_code(cluster: Cluster, browser: Browser, node: RunningServer, client_id: str) -> Code:
    url, verifier, nonce = _request(node, client_id, prompt="none")
    landing = browser.open(url)
    assert isinstance(landing, Callback), landing
    return Code(_code(landing, cluster), verifier, nonce)


def test_a_flow_started_on_one_node_finishes_on_the_other(
    cluster: Cluster, user: tuple[str, str], client: tuple[str, str]
) -> None:
    browser, code = _sign_in_across(cluster, user, client[0])
    try:
        tokens = _redeem(cluster.b, client, code)
        assert tokens.status_code == 200, tokens.text
        body = tokens.json()
        claims = _id_claims(cluster, cluster.b, body["id_token"])
        assert claims["iss"] == cluster.issuer and claims["sub"] == user[1]
        assert claims["aud"] == client[0] and claims["nonce"] == code.nonce
        # Node A honours what node B issued: the access token, the refresh token, the session.
        info = _userinfo(cluster.a, body["access_token"])
        assert info.status_code == 200 and info.json()["sub"] == user[1]
        refreshed = _token(
            cluster.a, client, grant_type="refresh_token", refresh_token=body["refresh_token"]
        )
        assert refreshed.status_code == 200, refreshed.text
        again = _id_claims(cluster, cluster.a, refreshed.json()["id_token"])
        assert again["sid"] == claims["sid"] and again["auth_time"] == claims["auth_time"]
        silent = _silent_code(cluster, browser, cluster.a, client[0])
        assert _redeem(cluster.a, client, silent).status_code == 200
    finally:
        browser.close()


def test_code_redemption_raced_across_nodes_is_exactly_once(
    cluster: Cluster, user: tuple[str, str], client: tuple[str, str]
) -> None:
    browser, first = _sign_in_across(cluster, user, client[0])
    codes = [first] + [
        _silent_code(cluster, browser, cluster.a, client[0]) for _ in range(ROUNDS - 1)
    ]
    browser.close()
    for code in codes:
        answers = _race(
            *(lambda c=code, n=cluster.nodes[i % 2]: _redeem(n, client, c) for i in range(RACERS))
        )
        winner = _one_winner(answers)
        # The loser's presentation looked like theft: the grant is revoked on every node.
        for node in cluster.nodes:
            assert _userinfo(node, winner.json()["access_token"]).status_code == 401
        refresh = _token(
            cluster.b,
            client,
            grant_type="refresh_token",
            refresh_token=winner.json()["refresh_token"],
        )
        assert refresh.status_code == 400 and refresh.json()["error"] == "invalid_grant"
    # Every losing presentation was recorded as a reuse.
    reuses = _events(cluster.a, "authorization_code.reuse_detected", client[0])
    assert len(reuses) == ROUNDS * (RACERS - 1)
    assert len(_events(cluster.a, "token.issued", client[0])) == ROUNDS


def test_refresh_rotation_raced_across_nodes_is_exactly_once(
    cluster: Cluster, user: tuple[str, str], client: tuple[str, str]
) -> None:
    browser, first = _sign_in_across(cluster, user, client[0])
    codes = [first] + [
        _silent_code(cluster, browser, cluster.b, client[0]) for _ in range(ROUNDS - 1)
    ]
    browser.close()
    for code in codes:
        issued = _redeem(cluster.a, client, code)
        assert issued.status_code == 200, issued.text
        refresh_token = issued.json()["refresh_token"]

        def rotate(node: RunningServer, token: str = refresh_token) -> httpx.Response:
            return _token(node, client, grant_type="refresh_token", refresh_token=token)

        answers = _race(*(lambda n=cluster.nodes[i % 2]: rotate(n) for i in range(RACERS)))
        winner = _one_winner(answers)
        # Reuse detection revoked the family: the winner's new tokens are dead on both nodes.
        for node in cluster.nodes:
            again = rotate(node, winner.json()["refresh_token"])
            assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
            assert _userinfo(node, winner.json()["access_token"]).status_code == 401
    # Reuse detected at least once per family (a loser arriving after the revocation is told the
    # token was revoked, without a second event).
    reuses = _events(cluster.a, "token.refresh_reuse_detected", client[0])
    assert len({r["grant_id"] for r in reuses}) == ROUNDS
    assert len(_events(cluster.a, "token.refreshed", client[0])) == ROUNDS
