"""Upstream identity provider connections through the admin API: create and read back (never the
client secret), scopes, refused settings, duplicates, enable/disable, updates, and deletion that
waits until no identity is linked."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from shutil import which
from typing import Any

import httpx
import pytest

from freshid.admin import keys as key_store
from freshid.federation import choices, flows, identities
from freshid.federation import connections as connection_store
from freshid.methods.oidc_upstream import UpstreamProof
from tests.admin.api_client import admin_key as _key
from tests.admin.api_client import api_client as _client
from tests.conftest import RunningServer

JSON = {"content-type": "application/json"}
SECRET = "upstream-client-secret-d41d8cd98f"
OIDC: dict[str, Any] = {
    "id": "corp",
    "kind": "oidc",
    "name": "Corp SSO",
    "config": {"issuer": "https://login.corp.example/", "client_id": "freshid"},
    "client_secret": SECRET,
    "domains": ["Corp.Example"],
    "jit": True,
}


def _events(c: httpx.Client, type_: str) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = c.get("/events", params={"type": type_}).json()["data"]
    return data


@pytest.fixture(scope="module")
def idp_metadata(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real SAML IdP's metadata (pysaml2 and xmlsec1, as the SAML suite needs)."""
    pytest.importorskip("saml2", reason="pysaml2 is not installed")
    if which("xmlsec1") is None:
        pytest.skip("xmlsec1 is not installed (apt-get install xmlsec1)")
    from tests.federation.saml_idp import SamlIdP

    yield SamlIdP(Path(tmp_path_factory.mktemp("saml-idp"))).metadata()


def test_create_and_read_back_without_the_secret(server: RunningServer, idp_metadata: str) -> None:
    with _client(server, _key(server)) as c:
        r = c.post("/connections", json=OIDC)
        assert r.status_code == 201, r.text
        created = r.json()
        assert SECRET not in r.text and "client_secret" not in created
        assert created["client_secret_set"] is True and created["enabled"] is True
        assert created["config"]["issuer"] == "https://login.corp.example"
        assert created["config"]["scopes"] == ["openid", "email", "profile"]
        assert created["domains"] == ["corp.example"] and created["jit"] is True
        assert created["method"] == "fed:corp" and created["show_on_login"] is True
        assert created["redirect_uri"] == f"{server.url}/federation/corp/callback"

        saml = {
            "id": "corp-saml",
            "kind": "saml",
            "name": "Corp SAML",
            "config": {"idp_metadata": idp_metadata, "multi_factor": True},
            "show_on_login": False,
            "enabled": False,
        }
        r = c.post("/connections", json=saml)
        assert r.status_code == 201, r.text
        s = r.json()
        assert s["client_secret_set"] is False and s["enabled"] is False
        assert s["config"]["idp_metadata"] == idp_metadata
        assert s["acs_url"] == f"{server.url}/federation/corp-saml/saml/acs"
        assert s["sp_metadata_url"].endswith("/federation/corp-saml/saml/metadata")

        one = c.get("/connections/corp")
        assert one.status_code == 200 and one.json() == created
        listed = c.get("/connections")
        assert [x["id"] for x in listed.json()["data"]] == ["corp", "corp-saml"]
        assert c.get("/connections/corp-saml").json() == s
        assert c.get("/connections/nope").status_code == 404
        for text in (one.text, listed.text, c.get("/events").text):
            assert SECRET not in text
        created_events = _events(c, "connection.created")
        assert [e["data"]["connection"] for e in created_events] == ["corp", "corp-saml"]
    with server.provider.db.read() as conn:
        stored = connection_store.get(conn, "corp")
    assert stored is not None and stored.client_secret == SECRET


def test_scopes(server: RunningServer) -> None:
    with _client(server, _key(server, "connections:read")) as reader:
        assert reader.get("/connections").status_code == 200
        r = reader.post("/connections", json=OIDC)
        assert r.status_code == 403 and "insufficient_scope" in r.headers["www-authenticate"]
        assert 'scope="connections:write"' in r.headers["www-authenticate"]
        assert r.headers["content-type"] == "application/problem+json"
        for method, path in [
            ("PATCH", "/connections/corp"),
            ("DELETE", "/connections/corp"),
            ("POST", "/connections/corp/enable"),
            ("POST", "/connections/corp/disable"),
            ("DELETE", "/users/u1/identities/corp"),
        ]:
            assert reader.request(method, path, json={}).status_code == 403, path
    with _client(server, _key(server, "users:read", "webhooks:write")) as other:
        assert other.get("/connections").status_code == 403
        assert other.get("/users/u1/identities").status_code == 403
    with _client(server) as anon:
        assert anon.get("/connections").status_code == 401
    assert key_store.parse_scopes(["connections:read,connections:write"]) == {
        "connections:read",
        "connections:write",
    }
    doc = httpx.get(server.url + "/api/v1/openapi.json").json()
    described = doc["components"]["securitySchemes"]["adminKey"]["description"]
    assert "connections:read" in described and "connections:write" in described
    with server.provider.db.read() as conn:
        assert connection_store.all_connections(conn) == []


def _with(**changes: Any) -> dict[str, Any]:
    body = {**OIDC, "config": dict(OIDC["config"])}
    for key, value in changes.items():
        if key.startswith("config_"):
            body["config"][key[len("config_") :]] = value
        elif value is _DROP:
            body.pop(key)
        else:
            body[key] = value
    return body


_DROP = object()

REFUSED: list[tuple[dict[str, Any], str]] = [
    (_with(client_secret=_DROP), "client_secret"),
    (_with(client_secret=""), "client_secret"),
    (_with(client_secret="x" * 513), "client_secret"),
    (_with(client_secret=42), "client_secret"),
    (_with(config_issuer="http://login.corp.example"), "issuer"),
    (_with(config_issuer=None), "issuer"),
    (_with(config_client_id=None), "client_id"),
    (_with(config_scopes="openid"), "scopes"),
    (_with(config_scopes=["email"]), "scopes"),
    (_with(config_algorithms=["none"]), "algorithms"),
    (_with(config_token_auth=["client_secret_post"]), "token_auth"),
    (_with(config_multi_factor="false"), "multi_factor"),
    (_with(config="issuer=https://x.example"), "config"),
    (_with(config=_DROP), "config"),
    (_with(id="Corp_SSO"), "id"),
    (_with(id=_DROP), "id"),
    (_with(id=7), "id"),
    (_with(kind="ldap"), "kind"),
    (_with(name="   "), "name"),
    (_with(name="x" * 101), "name"),
    (_with(name="Corp\x00SSO"), "name"),
    (_with(name="Corp \ud800"), "name"),
    (_with(config_client_id="free\x00id"), "config"),
    (_with(domains="corp.example"), "domains"),
    (_with(domains=[1]), "domains"),
    (_with(domains=["not a domain"]), "domains"),
    (_with(freshness_skew=601), "freshness_skew"),
    (_with(freshness_skew=-1), "freshness_skew"),
    (_with(freshness_skew="60"), "freshness_skew"),
    (_with(freshness_skew=True), "freshness_skew"),
    (_with(freshness_skew=2**80), "freshness_skew"),
    (_with(jit="yes"), "jit"),
    (_with(enabled=1), "enabled"),
    (_with(secret=SECRET), "secret"),
    ({"id": "s", "kind": "saml", "name": "S", "config": {}}, "idp_metadata"),
    (
        {
            "id": "s",
            "kind": "oauth2",
            "name": "S",
            "config": {"client_id": "c"},
            "client_secret": "x",
        },
        "authorization_endpoint",
    ),
]


def test_invalid_settings_are_400_naming_the_setting(server: RunningServer) -> None:
    with _client(server, _key(server)) as c:
        for body, setting in REFUSED:
            # json.dumps escapes a lone surrogate, which httpx's encoder would refuse to send.
            r = c.post("/connections", content=json.dumps(body), headers=JSON)
            assert r.status_code == 400, (setting, r.text)
            assert r.headers["content-type"] == "application/problem+json"
            problem = r.json()
            assert problem["setting"] == setting, (setting, problem)
            assert problem["detail"].startswith(setting + ":"), problem
        # What json.loads accepts but JSON does not, and what is not JSON at all.
        nan = b'{"id":"corp","kind":"oidc","name":"C","config":{"x":NaN}}'
        r = c.post("/connections", content=nan, headers=JSON)
        assert r.status_code == 400 and r.json()["setting"] == "config"
        assert c.post("/connections", content=b"{").status_code == 400
        assert c.post("/connections", content=b"[]").status_code == 400
        deep: Any = {}
        for _ in range(100):
            deep = {"a": deep}
        assert c.post("/connections", json=_with(config_deep=deep)).status_code == 400
        assert c.post("/connections", content=b" " * (1024 * 1024 + 1)).status_code == 413
        assert c.get("/connections").json()["data"] == []


def test_saml_metadata_is_parsed_before_it_is_stored(
    server: RunningServer, idp_metadata: str
) -> None:
    broken = idp_metadata.replace("</", "<", 3)
    body = {"id": "s", "kind": "saml", "name": "S", "config": {"idp_metadata": broken}}
    with _client(server, _key(server)) as c:
        r = c.post("/connections", json=body)
        assert r.status_code == 400 and r.json()["setting"] == "idp_metadata", r.text
        assert c.get("/connections/s").status_code == 404


def test_duplicates_are_409(server: RunningServer) -> None:
    with _client(server, _key(server)) as c:
        assert c.post("/connections", json=OIDC).status_code == 201
        r = c.post("/connections", json={**OIDC, "name": "Another"})
        assert r.status_code == 409 and r.json()["setting"] == "id"
        assert r.headers["content-type"] == "application/problem+json"
        assert c.get("/connections/corp").json()["name"] == "Corp SSO"


def test_enable_and_disable_take_effect(server: RunningServer) -> None:
    def offered() -> tuple[list[str], list[str]]:
        with server.provider.db.read() as conn:
            enabled = [x.id for x in connection_store.enabled(conn)]
            buttons = choices.login_choices(conn, "/i/x")["federation"]
        return enabled, [b["action_url"] for b in buttons]

    with _client(server, _key(server)) as c:
        assert c.post("/connections", json=OIDC).status_code == 201
        assert offered() == (["corp"], ["/i/x/fed/corp"])
        r = c.post("/connections/corp/disable")
        assert r.status_code == 200 and r.json()["enabled"] is False
        assert c.get("/connections/corp").json()["enabled"] is False
        assert offered() == ([], [])
        assert c.post("/connections/corp/disable").json()["enabled"] is False  # idempotent
        assert c.post("/connections/corp/enable").json()["enabled"] is True
        assert offered() == (["corp"], ["/i/x/fed/corp"])
        assert c.post("/connections/nope/enable").status_code == 404
        assert c.post("/connections/nope/disable").status_code == 404
        # One event a change, none for a no-op.
        assert [e["data"]["connection"] for e in _events(c, "connection.disabled")] == ["corp"]
        assert [e["data"]["connection"] for e in _events(c, "connection.enabled")] == ["corp"]


def test_update(server: RunningServer) -> None:
    with _client(server, _key(server)) as c:
        assert c.post("/connections", json=OIDC).status_code == 201
        new_secret = "rotated-upstream-secret-0cc175b9c0"
        r = c.patch(
            "/connections/corp",
            json={
                "name": "Corp Okta",
                "domains": ["corp.example", "Sub.Corp.Example"],
                "client_secret": new_secret,
                "freshness_skew": 30,
                "show_on_login": False,
            },
        )
        assert r.status_code == 200, r.text
        updated = r.json()
        assert new_secret not in r.text and "client_secret" not in updated
        assert updated["name"] == "Corp Okta" and updated["freshness_skew"] == 30
        assert updated["domains"] == ["corp.example", "sub.corp.example"]
        assert updated["show_on_login"] is False and updated["jit"] is True
        assert updated["config"] == {
            "issuer": "https://login.corp.example",
            "client_id": "freshid",
            "scopes": ["openid", "email", "profile"],
        }
        # config is replaced as a whole, and checked again.
        config = {"issuer": "https://idp.corp.example", "client_id": "fid", "mfa_amr": ["hwk"]}
        r = c.patch("/connections/corp", json={"config": config})
        assert r.status_code == 200 and r.json()["config"]["mfa_amr"] == ["hwk"]
        assert r.json()["config"]["scopes"] == ["openid", "email", "profile"]
        for body, setting in [
            ({"config": {"issuer": "https://idp.corp.example"}}, "client_id"),
            ({"client_secret": ""}, "client_secret"),
            ({"name": ""}, "name"),
            ({"freshness_skew": 1.5}, "freshness_skew"),
            ({"kind": "saml"}, "kind"),
            ({"id": "other"}, "id"),
            ({"enabled": False}, "enabled"),
            ({"domain": "corp.example"}, "domain"),
        ]:
            r = c.patch("/connections/corp", json=body)
            assert r.status_code == 400 and r.json()["setting"] == setting, (body, r.text)
        assert c.patch("/connections/nope", json={"name": "N"}).status_code == 404
        assert c.patch("/connections/corp", json={}).status_code == 200
        changed = [e["data"]["changed"] for e in _events(c, "connection.updated")]
        assert changed == [
            ["client_secret", "domains", "freshness_skew", "name", "show_on_login"],
            ["config"],
        ]
        assert new_secret not in c.get("/events").text
    with server.provider.db.read() as conn:
        stored = connection_store.get(conn, "corp")
    assert stored is not None and stored.client_secret == new_secret
    assert stored.name == "Corp Okta" and stored.client_id == "fid"


def test_delete_waits_until_no_identity_is_linked(server: RunningServer) -> None:
    user_id = server.create_user("alice@corp.example")
    now = server.clock.now()
    with _client(server, _key(server)) as c:
        assert c.post("/connections", json=OIDC).status_code == 201
        with server.provider.db.write() as conn:
            connection = connection_store.get(conn, "corp")
            assert connection is not None
            proof = UpstreamProof("alice-sub", "alice@corp.example", True, now, None, ())
            identities.link(conn, connection, proof, user_id, identities.ACCOUNT_PAGE, now)
            # A sign-in in flight: it goes with the connection.
            flows.begin(
                conn,
                state="st",
                connection_id="corp",
                browser="b",
                interaction_id=None,
                purpose="signin",
                user_id=None,
                force=False,
                now=now,
            )

        linked = c.get(f"/users/{user_id}/identities")
        assert linked.status_code == 200
        (identity,) = linked.json()["data"]
        assert identity["connection_id"] == "corp" and identity["subject"] == "alice-sub"
        assert identity["linked_by"] == "account_page" and identity["user_id"] == user_id
        assert c.get("/users/nobody/identities").status_code == 404

        r = c.delete("/connections/corp")
        assert r.status_code == 409 and r.headers["content-type"] == "application/problem+json"
        assert r.json()["linked_identities"] == 1 and "unlink" in r.json()["detail"]
        assert c.get("/connections/corp").status_code == 200

        assert c.delete(f"/users/{user_id}/identities/corp").status_code == 204
        assert c.delete(f"/users/{user_id}/identities/corp").status_code == 404
        assert c.get(f"/users/{user_id}/identities").json()["data"] == []
        removed = _events(c, "credential.removed")
        assert [(e["user_id"], e["data"]["connection"]) for e in removed] == [(user_id, "corp")]

        assert c.delete("/connections/corp").status_code == 204
        assert c.get("/connections/corp").status_code == 404
        assert c.delete("/connections/corp").status_code == 404
        assert [e["data"]["connection"] for e in _events(c, "connection.deleted")] == ["corp"]
        # The id is free again.
        assert c.post("/connections", json=OIDC).status_code == 201
