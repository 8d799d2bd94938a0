"""Connections to upstream identity providers: OpenID Connect, plain OAuth 2.0 and SAML 2.0.

A connection is identified by a short slug chosen by the admin. The slug names the method in the
session history (``fed:<slug>``) and the connection's own callback path, which is the per-provider
redirect URI that RFC 9700 §4.4.2 recommends against mix-up attacks.

Per-protocol settings live in one JSON ``config`` object, checked here when the connection is
created, so a typo stops ``freshid connections create`` instead of a sign-in:

- ``oidc``: ``issuer``, ``client_id``, ``scopes``, ``algorithms`` (ID token ``alg`` allow-list),
  ``token_auth`` (``client_secret_basic`` or ``client_secret_post``), and the assurance mapping
  ``mfa_acr``, ``phr_acr``, ``mfa_amr``, ``multi_factor``, ``step_up_acr_values``.
- ``oauth2``: ``authorization_endpoint``, ``token_endpoint``, ``userinfo_endpoint``,
  ``client_id``, ``scopes``, ``subject_claim``, ``email_claim``, ``emails_endpoint``.
- ``saml``: ``idp_metadata`` (the IdP's metadata XML), ``mfa_authn_context``,
  ``phr_authn_context``, ``multi_factor``.

Changes record ``connection.*`` events in the caller's transaction. A connection is deleted only
while no identity is linked to it: the links are the users' sign-in methods, so they are unlinked
first, one by one, as a decision of their own.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection as DB

from freshid.events import outbox
from freshid.events.catalog import EventType
from freshid.methods.oidc_upstream import DEFAULT_ALGS, Assurance, method_name
from freshid.storage.tables_federation import (
    federated_identities,
    federation_flows,
    saml_assertions_seen,
)
from freshid.storage.tables_federation import federation_connections as table

OIDC = "oidc"
OAUTH2 = "oauth2"
SAML = "saml"
KINDS = (OIDC, OAUTH2, SAML)
DEFAULT_SKEW = 60
MAX_SKEW = 600
_SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,23}")
_DOMAIN = re.compile(r"(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")


class InvalidConnection(ValueError):
    """A connection's settings are invalid; the message names the setting."""


class DuplicateConnection(InvalidConnection):
    """A connection with this id exists."""


class ConnectionInUse(Exception):
    """The connection cannot be deleted: identities are linked to it."""

    def __init__(self, connection_id: str, linked: int) -> None:
        super().__init__(f"{linked} identities are linked to connection {connection_id!r}")
        self.linked = linked


@dataclass(frozen=True)
class Connection:
    id: str
    kind: str
    name: str
    config: Mapping[str, Any]
    client_secret: str | None
    domains: tuple[str, ...]
    freshness_skew: int
    jit: bool
    link_verified_email: bool
    show_on_login: bool
    enabled: bool
    created_at: int

    @property
    def method(self) -> str:
        return method_name(self.id)

    @property
    def label(self) -> str:
        return f"Continue with {self.name}"

    @property
    def can_prove_freshness(self) -> bool:
        """Plain OAuth 2.0 says nothing about when the user authenticated (no ``auth_time``)."""
        return self.kind in {OIDC, SAML}

    @property
    def multi_factor(self) -> bool:
        return bool(self.config.get("multi_factor", False))

    @property
    def issuer(self) -> str:
        return str(self.config.get("issuer", ""))

    @property
    def client_id(self) -> str:
        return str(self.config.get("client_id", ""))

    @property
    def scopes(self) -> tuple[str, ...]:
        return tuple(self.config.get("scopes", ()))

    @property
    def algorithms(self) -> tuple[str, ...]:
        return tuple(self.config.get("algorithms", DEFAULT_ALGS))

    @property
    def assurance(self) -> Assurance:
        c = self.config
        if self.kind == SAML:
            return Assurance(
                mfa_acr=frozenset(c.get("mfa_authn_context", ())),
                phr_acr=frozenset(c.get("phr_authn_context", ())),
                mfa_amr=frozenset(),
            )
        return Assurance(
            mfa_acr=frozenset(c.get("mfa_acr", ())),
            phr_acr=frozenset(c.get("phr_acr", ())),
            mfa_amr=frozenset(c.get("mfa_amr", ("mfa",))),
        )

    def allows_email(self, email: str) -> bool:
        """Whether this upstream may speak for ``email``: any address when the connection has no
        domains, else only addresses in them (an enterprise IdP must not vouch for Gmail users)."""
        if not self.domains:
            return True
        return email.rsplit("@", 1)[-1].lower() in self.domains


def _row(m: Any) -> Connection:
    return Connection(
        m["id"],
        m["kind"],
        m["name"],
        dict(m["config"]),
        m["client_secret"],
        tuple(m["domains"] or ()),
        int(m["freshness_skew"]),
        bool(m["jit"]),
        bool(m["link_verified_email"]),
        bool(m["show_on_login"]),
        bool(m["enabled"]),
        int(m["created_at"]),
    )


def _strings(config: Mapping[str, Any], key: str) -> None:
    value = config.get(key)
    if value is not None and not (
        isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)
    ):
        raise InvalidConnection(f"{key}: must be a list of strings")


def _url(config: Mapping[str, Any], key: str, *, required: bool = True) -> None:
    value = config.get(key)
    if value is None and not required:
        return
    if not isinstance(value, str) or not re.match(r"https?://[^\s]+$", value):
        raise InvalidConnection(f"{key}: must be an http(s) URL")
    if value.startswith("http://") and not re.match(
        r"http://(127\.0\.0\.1|localhost|\[::1\])(:\d+)?(/|$)", value
    ):
        raise InvalidConnection(f"{key}: plain http is only allowed on loopback")


def validate(
    id: str,
    kind: str,
    name: str,
    config: Mapping[str, Any],
    client_secret: str | None,
    domains: Sequence[str],
    freshness_skew: int,
) -> None:
    if not _SLUG.fullmatch(id):
        raise InvalidConnection("id: 1-24 characters of a-z, 0-9 and '-', starting alphanumeric")
    if kind not in KINDS:
        raise InvalidConnection(f"kind: one of {', '.join(KINDS)}")
    if not name.strip() or len(name) > 100:
        raise InvalidConnection("name: 1-100 characters")
    for d in domains:
        if not _DOMAIN.fullmatch(d):
            raise InvalidConnection(f"domains: {d!r} is not a lower-case domain name")
    if not 0 <= freshness_skew <= MAX_SKEW:
        raise InvalidConnection(f"freshness_skew: 0 to {MAX_SKEW} seconds")
    for key in (
        "scopes",
        "algorithms",
        "mfa_acr",
        "phr_acr",
        "mfa_amr",
        "step_up_acr_values",
        "mfa_authn_context",
        "phr_authn_context",
    ):
        _strings(config, key)
    if not isinstance(config.get("multi_factor", False), bool):
        # "false" would read as true, and claim a second factor nobody proved.
        raise InvalidConnection("multi_factor: must be true or false")
    if kind in {OIDC, OAUTH2}:
        if not isinstance(config.get("client_id"), str) or not config["client_id"]:
            raise InvalidConnection("client_id: required")
        if not client_secret:
            raise InvalidConnection("client_secret: required (FreshID is a confidential client)")
        token_auth = config.get("token_auth", "client_secret_basic")
        if not isinstance(token_auth, str) or token_auth not in {
            "client_secret_basic",
            "client_secret_post",
        }:
            raise InvalidConnection("token_auth: client_secret_basic or client_secret_post")
    if kind == OIDC:
        _url(config, "issuer")
        if "openid" not in config.get("scopes", ["openid"]):
            raise InvalidConnection("scopes: must include openid")
        from freshid.federation.jose import SUPPORTED_ALGS

        bad = set(config.get("algorithms", ())) - SUPPORTED_ALGS
        if bad:
            raise InvalidConnection(f"algorithms: unsupported {sorted(bad)}")
    elif kind == OAUTH2:
        for key in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint"):
            _url(config, key)
        _url(config, "emails_endpoint", required=False)
    else:
        metadata = config.get("idp_metadata")
        if not isinstance(metadata, str) or "EntityDescriptor" not in metadata:
            raise InvalidConnection("idp_metadata: the IdP's SAML metadata XML")


def check_saml_metadata(xml: str) -> None:
    """Parse SAML IdP metadata now, so a bad document stops the change rather than a sign-in.

    Blocking (pysaml2, xmlsec1): call it from a worker thread in async code."""
    try:
        from freshid.methods import saml
    except ImportError:
        raise InvalidConnection("idp_metadata: SAML needs pysaml2 and xmlsec1") from None
    from freshid.methods.base import MethodFailed

    try:
        saml.check_metadata(
            saml.ServiceProvider("urn:freshid:check", "https://check.invalid/acs", xml)
        )
    except MethodFailed as exc:
        raise InvalidConnection(f"idp_metadata: {exc.reason}") from None


def _normalise(
    kind: str, config: Mapping[str, Any], domains: Sequence[str]
) -> tuple[dict[str, Any], list[str]]:
    out = dict(config)
    if kind == OIDC:
        out.setdefault("scopes", ["openid", "email", "profile"])
        out["issuer"] = str(out.get("issuer", "")).rstrip("/") or out.get("issuer")
    return out, [d.strip().lower() for d in domains if d.strip()]


def create(
    db: DB,
    *,
    id: str,
    kind: str,
    name: str,
    config: Mapping[str, Any],
    now: int,
    client_secret: str | None = None,
    domains: Sequence[str] = (),
    freshness_skew: int = DEFAULT_SKEW,
    jit: bool = False,
    link_verified_email: bool = False,
    show_on_login: bool = True,
    enabled: bool = True,
) -> Connection:
    config, domains = _normalise(kind, config, domains)
    validate(id, kind, name, config, client_secret, domains, freshness_skew)
    if get(db, id) is not None:
        raise DuplicateConnection(f"id: a connection {id!r} exists")
    values = {
        "id": id,
        "kind": kind,
        "name": name.strip(),
        "config": config,
        "client_secret": client_secret,
        "domains": domains,
        "freshness_skew": freshness_skew,
        "jit": jit,
        "link_verified_email": link_verified_email,
        "show_on_login": show_on_login,
        "enabled": enabled,
        "created_at": now,
    }
    db.execute(table.insert().values(**values))
    outbox.record(
        db, EventType.CONNECTION_CREATED, now, connection=id, kind=kind, name=values["name"]
    )
    return _row(values)


def get(db: DB, connection_id: str) -> Connection | None:
    row = db.execute(table.select().where(table.c.id == connection_id)).first()
    return _row(row._mapping) if row else None


def all_connections(db: DB) -> list[Connection]:
    return [_row(r._mapping) for r in db.execute(table.select().order_by(table.c.id))]


def enabled(db: DB) -> list[Connection]:
    rows = db.execute(table.select().where(table.c.enabled.is_(True)).order_by(table.c.id))
    return [_row(r._mapping) for r in rows]


def for_domain(db: DB, email_or_domain: str) -> Connection | None:
    """The enabled connection that owns the domain of an address (home-realm discovery)."""
    domain = email_or_domain.rsplit("@", 1)[-1].strip().lower()
    if not domain:
        return None
    for c in enabled(db):
        if domain in c.domains:
            return c
    return None


def _locked(db: DB, connection_id: str) -> Connection | None:
    """The connection, its row locked until the transaction ends (PostgreSQL; SQLite writers
    are serialised already)."""
    row = db.execute(table.select().where(table.c.id == connection_id).with_for_update()).first()
    return _row(row._mapping) if row else None


def set_enabled(db: DB, connection_id: str, value: bool, now: int | None = None) -> bool:
    """Enable or disable a connection; False if there is none. With ``now``, a change records
    ``connection.enabled`` or ``connection.disabled``."""
    current = _locked(db, connection_id)
    if current is None:
        return False
    if current.enabled != value:
        db.execute(table.update().where(table.c.id == connection_id).values(enabled=value))
        if now is not None:
            kind = EventType.CONNECTION_ENABLED if value else EventType.CONNECTION_DISABLED
            outbox.record(db, kind, now, connection=connection_id)
    return True


def update(
    db: DB,
    connection_id: str,
    now: int,
    *,
    name: str | None = None,
    config: Mapping[str, Any] | None = None,
    client_secret: str | None = None,
    domains: Sequence[str] | None = None,
    freshness_skew: int | None = None,
    jit: bool | None = None,
    link_verified_email: bool | None = None,
    show_on_login: bool | None = None,
) -> Connection | None:
    """Change the given settings (None: unchanged) and check the result as :func:`create` does;
    the id and kind never change. None if there is no such connection."""
    current = _locked(db, connection_id)
    if current is None:
        return None
    new_config, new_domains = _normalise(
        current.kind,
        current.config if config is None else config,
        current.domains if domains is None else domains,
    )
    new_name = current.name if name is None else name
    new_secret = current.client_secret if client_secret is None else client_secret
    new_skew = current.freshness_skew if freshness_skew is None else freshness_skew
    validate(current.id, current.kind, new_name, new_config, new_secret, new_domains, new_skew)
    wanted: dict[str, Any] = {
        "name": new_name.strip(),
        "config": new_config,
        "client_secret": new_secret,
        "domains": new_domains,
        "freshness_skew": new_skew,
        "jit": current.jit if jit is None else jit,
        "link_verified_email": (
            current.link_verified_email if link_verified_email is None else link_verified_email
        ),
        "show_on_login": current.show_on_login if show_on_login is None else show_on_login,
    }
    before: dict[str, Any] = {
        "name": current.name,
        "config": dict(current.config),
        "client_secret": current.client_secret,
        "domains": list(current.domains),
        "freshness_skew": current.freshness_skew,
        "jit": current.jit,
        "link_verified_email": current.link_verified_email,
        "show_on_login": current.show_on_login,
    }
    changed = {k: v for k, v in wanted.items() if v != before[k]}
    if changed:
        db.execute(table.update().where(table.c.id == connection_id).values(**changed))
        # The names of the settings only: never the secret.
        outbox.record(
            db, EventType.CONNECTION_UPDATED, now, connection=connection_id, changed=sorted(changed)
        )
    return get(db, connection_id)


def delete(db: DB, connection_id: str, now: int) -> bool:
    """Delete a connection with its flows in flight and replay records; False if there is none.

    Raises :class:`ConnectionInUse` while identities are linked to it. The row lock makes a
    concurrent link wait, then fail on its foreign key, rather than orphan an identity."""
    if _locked(db, connection_id) is None:
        return False
    fi = federated_identities
    linked = db.execute(
        sa.select(sa.func.count()).select_from(fi).where(fi.c.connection_id == connection_id)
    ).scalar_one()
    if linked:
        raise ConnectionInUse(connection_id, int(linked))
    db.execute(federation_flows.delete().where(federation_flows.c.connection_id == connection_id))
    db.execute(
        saml_assertions_seen.delete().where(saml_assertions_seen.c.connection_id == connection_id)
    )
    db.execute(table.delete().where(table.c.id == connection_id))
    outbox.record(db, EventType.CONNECTION_DELETED, now, connection=connection_id)
    return True
