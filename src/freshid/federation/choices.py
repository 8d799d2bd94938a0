"""What the hosted pages offer from federation: "Continue with X" buttons on the sign-in page,
routing by email domain, and each linked upstream as a method to re-prove it with.

Kept apart from :mod:`freshid.ui.methods.upstream` (the HTTP endpoints) so that the interaction
page and the authorization flow can ask without importing the endpoints that import them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy.engine import Connection as DB

from freshid.federation import connections, identities
from freshid.freshness import MethodOffer
from freshid.methods import oidc_upstream


def offers(db: DB, user_id: str) -> list[MethodOffer]:
    """The user's linked upstreams that can re-prove it (OIDC and SAML; never plain OAuth 2.0,
    which cannot say when the user authenticated)."""
    out: list[MethodOffer] = []
    for identity in identities.for_user(db, user_id):
        c = connections.get(db, identity.connection_id)
        if c is None or not c.enabled or not c.can_prove_freshness:
            continue
        info = oidc_upstream.info(c.id, c.label, multi_factor=c.multi_factor)
        amr = (*oidc_upstream.AMR, "mfa") if c.multi_factor else oidc_upstream.AMR
        out.append(
            MethodOffer(info.name, amr, frozenset(info.factors), info.phishing_resistant, info.rank)
        )
    return out


def is_federated(method: str) -> bool:
    return method.startswith(oidc_upstream.METHOD_PREFIX)


def connection_id(method: str) -> str:
    return method[len(oidc_upstream.METHOD_PREFIX) :]


def labels(db: DB, methods: Iterable[str]) -> dict[str, str]:
    out = {}
    for m in methods:
        if is_federated(m):
            c = connections.get(db, connection_id(m))
            if c is not None:
                out[m] = c.label
    return out


def login_choices(db: DB, base: str) -> dict[str, Any]:
    """Buttons for the sign-in page, and the domain-routing form when any connection owns one."""
    enabled = connections.enabled(db)
    return {
        "federation": [
            {"label": c.label, "action_url": f"{base}/fed/{c.id}"}
            for c in enabled
            if c.show_on_login
        ],
        "sso_url": f"{base}/sso" if any(c.domains for c in enabled) else None,
    }
