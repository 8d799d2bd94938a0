"""The OpenID Foundation Config plan, re-created: discovery and JWKS as a certified RP reads them
(OIDC Discovery 1.0 §3-§4, RFC 8414 §2-§3, RFC 7517)."""

from __future__ import annotations

import httpx

from tests.conformance.openid_client import CertifiedRP
from tests.conftest import RunningServer

REQUIRED = (
    "issuer",
    "authorization_endpoint",
    "token_endpoint",
    "jwks_uri",
    "response_types_supported",
    "subject_types_supported",
    "id_token_signing_alg_values_supported",
)


def test_discovery_endpoint_verification(server: RunningServer, rp: CertifiedRP) -> None:
    """oidcc-discovery-endpoint-verification: openid-client's discovery accepts the document (its
    `issuer` is exactly the URL it was fetched from); every REQUIRED member is present and
    well-typed; endpoints are absolute URLs under the issuer; `scopes_supported` has `openid`;
    `response_types_supported` is `code` alone; the document is JSON with a cache lifetime"""
    m = rp.discover()
    for name in REQUIRED:
        assert name in m, name
    assert m["issuer"] == server.url
    for name, value in m.items():
        if name.endswith("_endpoint") or name == "jwks_uri":
            assert isinstance(value, str) and value.startswith(server.url + "/"), name
    assert "openid" in m["scopes_supported"]
    assert m["response_types_supported"] == ["code"]
    assert "public" in m["subject_types_supported"]
    assert "none" not in m["id_token_signing_alg_values_supported"]
    for name in (
        "claims_supported",
        "grant_types_supported",
        "token_endpoint_auth_methods_supported",
    ):
        assert isinstance(m[name], list) and all(isinstance(v, str) for v in m[name]), name
    raw = httpx.get(f"{server.url}/.well-known/openid-configuration")
    assert raw.status_code == 200
    assert raw.headers["content-type"].startswith("application/json")
    assert "max-age=" in raw.headers["cache-control"]
    assert raw.json() == m


def test_discovery_advertises_rs256(rp: CertifiedRP) -> None:
    """oidcc-discovery-endpoint-verification (RS256): OIDC Core §15.1 makes RS256 mandatory to
    implement for ID tokens; FreshID signs with ES256 only, by design (ES256 allow-list,
    RFC 8725 §3.1). The check asserts the deviation is stated honestly: ES256 is the one
    algorithm listed, and openid-client validates ES256 ID tokens without configuration"""
    assert rp.discover()["id_token_signing_alg_values_supported"] == ["ES256"]


def test_jwks_verification(server: RunningServer, rp: CertifiedRP) -> None:
    """oidcc-discovery-endpoint-verification (jwks_uri): the JWKS is JSON with at least one
    signing key; every key has a unique `kid`, `use` = `sig`, `kty` = EC on P-256 with `x`/`y`,
    and no private member (`d`, `p`, `q`, `dp`, `dq`, `qi`, `k`)"""
    jwks = httpx.get(rp.discover()["jwks_uri"])
    assert jwks.status_code == 200
    # RFC 7517 §8.5 registers application/jwk-set+json; plain JSON is fine too.
    assert jwks.headers["content-type"].split(";")[0] in {
        "application/jwk-set+json",
        "application/json",
    }
    keys = jwks.json()["keys"]
    assert keys
    assert len({k["kid"] for k in keys}) == len(keys)
    for key in keys:
        assert key["kty"] == "EC" and key["crv"] == "P-256" and key["x"] and key["y"]
        assert key.get("use") == "sig"
        assert key.get("alg", "ES256") == "ES256"
        assert not {"d", "p", "q", "dp", "dq", "qi", "k"} & key.keys()
