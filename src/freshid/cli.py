"""The ``freshid`` command: serve, demo, migrate, prune, users, clients, keys, events.

Every command reads the same settings (``--config FILE`` plus ``FRESHID_*`` variables); a bad
setting stops it with a message naming the setting and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from freshid import allocator, collector
from freshid.admin import commands as admin_commands
from freshid.clock import SystemClock
from freshid.events.catalog import EventType
from freshid.federation import cli as federation_cli
from freshid.methods.password import PasswordMethod
from freshid.settings import Settings, SettingsError, load_settings
from freshid.storage import clients as client_store
from freshid.storage import keys as key_store
from freshid.storage import migrate, retention
from freshid.storage import users as user_store
from freshid.storage.database import Database
from freshid.storage.tables import events


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="freshid", description="FreshID OpenID Provider")
    p.add_argument("--config", help="TOML settings file")
    sub = p.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the provider")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--log-format", choices=["text", "json"], default="text")
    serve.add_argument("--no-worker", action="store_true", help="do not deliver webhooks here")

    demo = sub.add_parser("demo", help="run the provider and the Acme Console demo app, seeded")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument("--app-port", type=int, default=8001)

    sub.add_parser("migrate", help="create or upgrade the database schema")

    prune = sub.add_parser(
        "prune", help="delete rows no request can use again (spent tokens, ended sessions...)"
    )
    prune.add_argument("--dry-run", action="store_true", help="count them, delete nothing")

    users = sub.add_parser("users", help="manage users").add_subparsers(
        dest="action", required=True
    )
    uc = users.add_parser("create")
    uc.add_argument("--email", required=True)
    uc.add_argument("--password", required=True)
    users.add_parser("list")
    ud = users.add_parser("disable")
    ud.add_argument("--email", required=True)

    clients = sub.add_parser("clients", help="manage clients").add_subparsers(
        dest="action", required=True
    )
    cc = clients.add_parser("create")
    cc.add_argument("--name", required=True)
    cc.add_argument("--redirect-uri", action="append", required=True, dest="redirect_uris")
    cc.add_argument("--public", action="store_true")
    cc.add_argument("--post-logout-redirect-uri", action="append", default=[], dest="post_logout")
    cc.add_argument("--default-max-age", type=int)
    cc.add_argument("--require-auth-time", action="store_true")
    clients.add_parser("list")

    keys = sub.add_parser("keys", help="manage signing keys").add_subparsers(
        dest="action", required=True
    )
    keys.add_parser("rotate")
    keys.add_parser("list")

    federation_cli.add_parser(sub)
    admin_commands.add_parsers(sub)

    ev = sub.add_parser("events", help="read events").add_subparsers(dest="action", required=True)
    el = ev.add_parser("list")
    el.add_argument("--type", choices=[t.value for t in EventType])
    el.add_argument("--after", type=int, default=0, help="cursor: the id of the last event seen")
    el.add_argument("--limit", type=int, default=1000)
    return p


def _db(settings: Settings) -> Database:
    db = Database(settings.database_url)
    migrate.upgrade(db)
    return db


def _print(obj: Any) -> None:
    print(json.dumps(obj, separators=(",", ":"), sort_keys=True))


def _users(args: argparse.Namespace, settings: Settings) -> int:
    db, now = _db(settings), SystemClock().now()
    if args.action == "create":
        hasher = PasswordMethod.from_settings(settings, concurrency=1)
        try:
            hashed = hasher.hash_sync(args.password)
        except ValueError as exc:
            print(f"freshid: {exc}", file=sys.stderr)
            return 2
        with db.write() as conn:
            if user_store.by_email(conn, args.email):
                print(f"freshid: a user with email {args.email} exists", file=sys.stderr)
                return 1
            user = user_store.create(conn, args.email, hashed, now)
        _print({"id": user.id, "email": user.email})
    elif args.action == "list":
        with db.read() as conn:
            for u in user_store.all_users(conn):
                _print(
                    {
                        "id": u.id,
                        "email": u.email,
                        "disabled": u.disabled,
                        "created_at": u.created_at,
                    }
                )
    else:
        with db.write() as conn:
            found = user_store.by_email(conn, args.email)
            if found is None:
                print(f"freshid: no user with email {args.email}", file=sys.stderr)
                return 1
            user_store.disable(conn, found.id, now)
        _print({"id": found.id, "email": found.email, "disabled": True})
    return 0


def _clients(args: argparse.Namespace, settings: Settings) -> int:
    db, now = _db(settings), SystemClock().now()
    if args.action == "create":
        try:
            with db.write() as conn:
                client, secret = client_store.create(
                    conn,
                    args.name,
                    args.redirect_uris,
                    now,
                    public=args.public,
                    post_logout_redirect_uris=args.post_logout,
                    default_max_age=args.default_max_age,
                    require_auth_time=args.require_auth_time,
                )
        except ValueError as exc:
            print(f"freshid: {exc}", file=sys.stderr)
            return 2
        out: dict[str, Any] = {
            "client_id": client.client_id,
            "name": client.name,
            "public": client.is_public,
            "redirect_uris": list(client.redirect_uris),
        }
        if secret is not None:
            out["client_secret"] = secret
        _print(out)
    else:
        with db.read() as conn:
            for c in client_store.all_clients(conn):
                _print(
                    {
                        "client_id": c.client_id,
                        "name": c.name,
                        "public": c.is_public,
                        "redirect_uris": list(c.redirect_uris),
                    }
                )
    return 0


def _keys(args: argparse.Namespace, settings: Settings) -> int:
    db, now = _db(settings), SystemClock().now()
    if args.action == "rotate":
        with db.write() as conn:
            key = key_store.rotate(conn, now, settings.signing_alg)
        _print({"kid": key.kid, "alg": key.alg, "created_at": key.created_at})
    else:
        with db.read() as conn:
            for k in key_store.load_all(conn):
                _print(
                    {
                        "kid": k.kid,
                        "alg": k.alg,
                        "created_at": k.created_at,
                        "retired_at": k.retired_at,
                    }
                )
    return 0


def _events(args: argparse.Namespace, settings: Settings) -> int:
    db = _db(settings)
    query = (
        sa.select(events).where(events.c.id > args.after).order_by(events.c.id).limit(args.limit)
    )
    if args.type:
        query = query.where(events.c.type == args.type)
    with db.read() as conn:
        for row in conn.execute(query):
            m = row._mapping
            _print(
                {
                    "id": m["id"],
                    "type": m["type"],
                    "occurred_at": m["occurred_at"],
                    "user_id": m["user_id"],
                    "session_id": m["session_id"],
                    "client_id": m["client_id"],
                    "data": m["data"],
                }
            )
    return 0


def _prune(args: argparse.Namespace, settings: Settings) -> int:
    db = _db(settings)
    try:
        report = retention.prune(
            db,
            SystemClock().now(),
            retention.RetentionPolicy.from_settings(settings),
            dry_run=args.dry_run,
        )
    finally:
        db.dispose()
    _print({"dry_run": report.dry_run, "rows": report.rows, "total": report.total})
    return 0


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from freshid.app import create_app

    app = create_app(settings, webhook_worker=not args.no_worker)
    collector.freeze_startup_objects()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if args.log_format == "json":
        admin_commands.use_json_logs()
    # uvicorn's access log prints query strings, which carry codes and hints: ours does not.
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level="info",
        access_log=False,
        proxy_headers=False,
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "serve" and argv is None:
        # A command-line server (not a call from Python): run under the allocator settings that
        # keep its memory flat (freshid.allocator); returns at once if it already does.
        allocator.restart_tuned(["-m", "freshid", *sys.argv[1:]])
    overrides: dict[str, Any] = {}
    if args.command == "serve":
        overrides = {"host": args.host, "port": args.port}
    elif args.command == "demo":
        overrides = {"port": args.port, "dev_mode": True, "mail_backend": "outbox"}
        if not os.environ.get("FRESHID_ISSUER"):
            # Passkeys need a domain name as relying party id; browsers refuse 127.0.0.1.
            overrides["issuer"] = f"http://localhost:{args.port}"
    try:
        settings = load_settings(args.config, **overrides)
    except SettingsError as exc:
        print(f"freshid: {exc}", file=sys.stderr)
        return 2
    if args.command == "serve":
        return _serve(args, settings)
    if args.command == "demo":
        from freshid.demo import run_demo

        return run_demo(settings, app_port=args.app_port)
    if args.command == "migrate":
        _db(settings)
        print("freshid: schema is up to date")
        return 0
    if args.command == "connections":
        return federation_cli.run(args, settings, lambda: _db(settings))
    handlers = {
        "users": _users,
        "clients": _clients,
        "keys": _keys,
        "events": _events,
        "prune": _prune,
    }
    handlers.update(admin_commands.HANDLERS)
    return handlers[args.command](args, settings)


if __name__ == "__main__":
    sys.exit(main())
