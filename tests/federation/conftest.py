"""Fixtures for federation: two real oidc-provider upstreams (one honours ``prompt=login``, one
ignores it), a FreshID with a connection to each, a relying party and a two-sided browser."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from shutil import which
from typing import TYPE_CHECKING

import httpx
import pytest

from freshid.federation import client as upstream_client
from freshid.federation import connections as connection_store
from tests.conftest import RunningServer
from tests.federation.peers import SAML_SSO_URL, FedBrowser, OidcPeer, node_ready

if TYPE_CHECKING:
    from tests.federation.saml_idp import SamlIdP
from tests.protocol.conftest import (  # noqa: F401  (fixtures shared with the protocol suite)
    REDIRECT_URI,
    events,
    make_rp,
    make_user,
)

ACCOUNTS = {
    "alice-sub": {"email": "alice@corp.example", "email_verified": True},
    "mallory-sub": {"email": "mallory@corp.example", "email_verified": False},
    "ada-upstream": {"email": "ada@example.com", "email_verified": True},
}


def _peer(ignore_prompt_login: bool) -> Iterator[OidcPeer]:
    reason = node_ready()
    if reason is not None:
        pytest.skip(reason)
    peer = OidcPeer(ACCOUNTS, ignore_prompt_login=ignore_prompt_login)
    yield peer
    peer.stop()


@pytest.fixture(scope="session")
def upstream() -> Iterator[OidcPeer]:
    """oidc-provider as it ships: prompt=login and max_age=0 make the user sign in again."""
    yield from _peer(False)


@pytest.fixture(scope="session")
def lazy_upstream() -> Iterator[OidcPeer]:
    """oidc-provider configured to ignore prompt=login and max_age (keeps the old auth_time)."""
    yield from _peer(True)


@dataclass(frozen=True)
class Federated:
    server: RunningServer
    peer: OidcPeer
    connection_id: str


def connect(
    server: RunningServer,
    peer: OidcPeer,
    connection_id: str = "corp",
    **options: object,
) -> Federated:
    """Register FreshID at ``peer`` and create the connection on FreshID."""
    redirect = f"{server.url}/federation/{connection_id}/callback"
    client_id, secret = peer.register(redirect)
    upstream_client.forget_caches()
    config = {"issuer": peer.issuer, "client_id": client_id}
    config.update(options.pop("config", {}))  # type: ignore[arg-type]
    with server.provider.db.write() as conn:
        connection_store.create(
            conn,
            id=connection_id,
            kind="oidc",
            name=str(options.pop("name", "Corp SSO")),
            config=config,
            client_secret=secret,
            now=server.clock.now(),
            domains=options.pop("domains", ["corp.example"]),  # type: ignore[arg-type]
            jit=bool(options.pop("jit", True)),
            link_verified_email=bool(options.pop("link_verified_email", False)),
        )
    assert not options, options
    return Federated(server, peer, connection_id)


@pytest.fixture
def fed_browser() -> Iterator[FedBrowser]:
    browser = FedBrowser.make((REDIRECT_URI, SAML_SSO_URL))
    yield browser
    browser.close()


@pytest.fixture(scope="session")
def saml_idp(tmp_path_factory: pytest.TempPathFactory) -> SamlIdP:
    pytest.importorskip("saml2", reason="pysaml2 is not installed")
    if which("xmlsec1") is None:
        pytest.skip("xmlsec1 is not installed (apt-get install xmlsec1)")
    from tests.federation.saml_idp import SamlIdP

    return SamlIdP(tmp_path_factory.mktemp("saml-idp"))


def connect_saml(
    server: RunningServer, idp: SamlIdP, connection_id: str = "corp-saml", **config: object
) -> str:
    """Create the SAML connection on FreshID and make the IdP trust FreshID's SP metadata;
    returns FreshID's SP entity ID."""
    with server.provider.db.write() as conn:
        connection_store.create(
            conn,
            id=connection_id,
            kind="saml",
            name="Corp SAML",
            config={"idp_metadata": idp.metadata(), **config},
            now=server.clock.now(),
            domains=["corp.example"],
            jit=True,
        )
    response = httpx.get(f"{server.url}/federation/{connection_id}/saml/metadata", timeout=10)
    assert response.status_code == 200, response.text
    idp.trust(response.text)
    return f"{server.url}/federation/{connection_id}/saml/metadata"
