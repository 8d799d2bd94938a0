"""``freshid connections create | list | enable | disable``: upstream identity providers.

Secrets are read from an environment variable or a file (``--client-secret-env``,
``--client-secret-file``) rather than the command line, where they would land in shell history
and the process list; ``--client-secret`` exists for scripts that accept that.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from freshid.clock import SystemClock
from freshid.federation import connections as store
from freshid.federation.presets import PRESETS
from freshid.settings import Settings
from freshid.storage.database import Database


def add_parser(sub: Any) -> None:
    conns = sub.add_parser("connections", help="manage upstream identity providers").add_subparsers(
        dest="action", required=True
    )
    cc = conns.add_parser("create", help="add an OIDC, OAuth 2.0 or SAML connection")
    cc.add_argument("--id", required=True, help="slug: a-z, 0-9 and '-', at most 24")
    cc.add_argument("--name", help="what the button says: 'Continue with NAME'")
    cc.add_argument("--kind", choices=store.KINDS)
    cc.add_argument("--preset", choices=sorted(PRESETS))
    cc.add_argument("--param", action="append", default=[], help="preset parameter KEY=VALUE")
    cc.add_argument("--issuer")
    cc.add_argument("--client-id")
    cc.add_argument("--client-secret")
    cc.add_argument("--client-secret-env", help="read the client secret from this variable")
    cc.add_argument("--client-secret-file", help="read the client secret from this file")
    cc.add_argument("--token-auth", choices=["client_secret_basic", "client_secret_post"])
    cc.add_argument("--scope", action="append", dest="scopes")
    cc.add_argument("--algorithm", action="append", dest="algorithms")
    cc.add_argument("--authorization-endpoint")
    cc.add_argument("--token-endpoint")
    cc.add_argument("--userinfo-endpoint")
    cc.add_argument("--idp-metadata", help="SAML: file with the IdP's metadata XML")
    cc.add_argument("--domain", action="append", default=[], dest="domains")
    cc.add_argument("--freshness-skew", type=int, default=store.DEFAULT_SKEW)
    cc.add_argument("--mfa-acr", action="append", dest="mfa_acr")
    cc.add_argument("--phr-acr", action="append", dest="phr_acr")
    cc.add_argument("--mfa-amr", action="append", dest="mfa_amr")
    cc.add_argument("--step-up-acr", action="append", dest="step_up_acr_values")
    cc.add_argument("--multi-factor", action="store_true", help="the upstream always does MFA")
    cc.add_argument("--jit", action="store_true", help="create users on first sign-in")
    cc.add_argument(
        "--link-verified-email",
        action="store_true",
        help="link to an existing user with the same verified address",
    )
    cc.add_argument("--hidden", action="store_true", help="no button on the sign-in page")
    conns.add_parser("list")
    for name in ("enable", "disable"):
        conns.add_parser(name).add_argument("--id", required=True)


def _secret(args: argparse.Namespace) -> str | None:
    if args.client_secret_env:
        return os.environ.get(args.client_secret_env) or None
    if args.client_secret_file:
        return Path(args.client_secret_file).read_text(encoding="utf-8").strip() or None
    value: str | None = args.client_secret
    return value


def _config(args: argparse.Namespace) -> tuple[str, str, dict[str, Any]]:
    kind, name = args.kind, args.name
    config: dict[str, Any] = {}
    if args.preset:
        preset = PRESETS[args.preset]
        params = dict(p.split("=", 1) for p in args.param if "=" in p)
        config = preset.apply(params)
        kind, name = kind or preset.kind, name or preset.name
    if not kind or not name:
        raise ValueError("give --kind and --name, or a --preset")
    for key in (
        "issuer",
        "client_id",
        "token_auth",
        "scopes",
        "algorithms",
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "mfa_acr",
        "phr_acr",
        "mfa_amr",
        "step_up_acr_values",
    ):
        value = getattr(args, key)
        if value is not None:
            config[key] = value
    if args.multi_factor:
        config["multi_factor"] = True
    if args.idp_metadata:
        config["idp_metadata"] = Path(args.idp_metadata).read_text(encoding="utf-8")
    if kind == store.SAML and isinstance(config.get("idp_metadata"), str):
        store.check_saml_metadata(config["idp_metadata"])
    return kind, name, config


def _public(c: store.Connection, issuer: str) -> dict[str, Any]:
    base = f"{issuer}/federation/{c.id}"
    out: dict[str, Any] = {
        "id": c.id,
        "kind": c.kind,
        "name": c.name,
        "enabled": c.enabled,
        "domains": list(c.domains),
        "jit": c.jit,
        "link_verified_email": c.link_verified_email,
        "freshness_skew": c.freshness_skew,
    }
    if c.kind == store.SAML:
        out.update(acs_url=f"{base}/saml/acs", sp_metadata_url=f"{base}/saml/metadata")
    else:
        out.update(redirect_uri=f"{base}/callback", client_id=c.client_id)
        if c.kind == store.OIDC:
            out["issuer"] = c.issuer
    return out


def run(args: argparse.Namespace, settings: Settings, open_db: Callable[[], Database]) -> int:
    db, now = open_db(), SystemClock().now()
    issuer = settings.effective_issuer.rstrip("/")
    if args.action == "create":
        try:
            kind, name, config = _config(args)
            with db.write() as conn:
                c = store.create(
                    conn,
                    id=args.id,
                    kind=kind,
                    name=name,
                    config=config,
                    now=now,
                    client_secret=_secret(args),
                    domains=args.domains,
                    freshness_skew=args.freshness_skew,
                    jit=args.jit,
                    link_verified_email=args.link_verified_email,
                    show_on_login=not args.hidden,
                )
        except (ValueError, OSError) as exc:
            print(f"freshid: {exc}", file=sys.stderr)
            return 2
        print(json.dumps(_public(c, issuer), sort_keys=True, separators=(",", ":")))
        return 0
    if args.action == "list":
        with db.read() as conn:
            for c in store.all_connections(conn):
                print(json.dumps(_public(c, issuer), sort_keys=True, separators=(",", ":")))
        return 0
    with db.write() as conn:
        found = store.set_enabled(conn, args.id, args.action == "enable", now)
    if not found:
        print(f"freshid: no connection {args.id!r}", file=sys.stderr)
        return 1
    return 0
