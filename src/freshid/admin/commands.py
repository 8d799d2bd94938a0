"""The events feature's ``freshid`` sub-commands: audit, admin-keys, webhooks, sessions, worker.

``freshid.cli`` adds them with :func:`add_parsers` and runs them through :data:`HANDLERS`. Output
is one JSON document per line, as for the other commands; exit status 1 means "not found" or, for
``audit verify``, a broken chain or checkpoint.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import sqlalchemy as sa

from freshid.admin import keys as key_store
from freshid.admin.observability import use_json_logs
from freshid.events import audit, delivery
from freshid.events import webhooks as hooks
from freshid.events.catalog import EventType
from freshid.settings import Settings
from freshid.storage import keys as signing_key_store
from freshid.storage import migrate
from freshid.storage import sessions as session_store
from freshid.storage.database import Database
from freshid.storage.tables import sessions


def add_parsers(sub: Any) -> None:
    au = sub.add_parser("audit", help="verify the audit chain; sign checkpoints").add_subparsers(
        dest="action", required=True
    )
    av = au.add_parser("verify", help="check every event's hash link; name the first break")
    av.add_argument(
        "--checkpoint",
        action="append",
        default=[],
        metavar="FILE",
        help="a checkpoint document the log must still contain (repeatable)",
    )
    au.add_parser("checkpoint", help="print a signed checkpoint of the chain head (JSON)")

    ak = sub.add_parser("admin-keys", help="manage admin API keys").add_subparsers(
        dest="action", required=True
    )
    akc = ak.add_parser("create", help="create a key; it is printed once")
    akc.add_argument("--name", required=True)
    akc.add_argument(
        "--scope",
        action="append",
        required=True,
        dest="scopes",
        help="repeatable: " + ", ".join(s.value for s in key_store.Scope),
    )
    ak.add_parser("list")
    akr = ak.add_parser("revoke")
    akr.add_argument("key_id")

    wh = sub.add_parser("webhooks", help="manage webhook endpoints").add_subparsers(
        dest="action", required=True
    )
    whc = wh.add_parser("create", help="register an endpoint; its secret is printed once")
    whc.add_argument("--url", required=True)
    whc.add_argument(
        "--event-type",
        action="append",
        default=[],
        dest="event_types",
        choices=[t.value for t in EventType],
        help="repeatable; none means every type",
    )
    whc.add_argument("--description", default="")
    wh.add_parser("list")
    for action in ("show", "delete", "rotate-secret", "enable", "disable", "deliveries"):
        wh.add_parser(action).add_argument("endpoint_id")

    se = sub.add_parser("sessions", help="list and revoke users' sessions").add_subparsers(
        dest="action", required=True
    )
    sel = se.add_parser("list")
    sel.add_argument("--user-id", required=True)
    ser = se.add_parser("revoke")
    ser.add_argument("session_id")

    ad = sub.add_parser("admins", help="who may open the admin dashboard").add_subparsers(
        dest="action", required=True
    )
    for action in ("grant", "revoke"):
        ad.add_parser(action).add_argument("--email", required=True)
    ad.add_parser("list")

    wk = sub.add_parser("worker", help="deliver webhooks (also runs inside serve)")
    wk.add_argument("--concurrency", type=int, default=8)
    wk.add_argument("--poll-interval", type=float, default=1.0)
    wk.add_argument("--attempt-timeout", type=float, default=10.0)
    wk.add_argument("--lease-slack", type=int, default=5)
    wk.add_argument(
        "--retry-schedule",
        default=",".join(str(s) for s in delivery.RETRY_SCHEDULE),
        help="seconds before each retry, comma-separated",
    )
    wk.add_argument("--max-seconds", type=float, help="stop after this long (default: never)")
    wk.add_argument("--log-format", choices=["text", "json"], default="text")


def _db(settings: Settings) -> Database:
    db = Database(settings.database_url)
    migrate.upgrade(db)
    return db


def _print(obj: Any) -> None:
    print(json.dumps(obj, separators=(",", ":"), sort_keys=True))


def _fail(message: str, status: int = 1) -> int:
    print(f"freshid: {message}", file=sys.stderr)
    return status


def _now() -> int:
    from freshid.clock import SystemClock

    return SystemClock().now()


def _audit(args: argparse.Namespace, settings: Settings) -> int:
    db = _db(settings)
    if args.action == "checkpoint":
        from freshid.provider import Provider

        provider = Provider(settings, db=db)
        ring = provider.keyring(refresh=True)
        with db.read() as conn:
            _print(audit.make_checkpoint(conn, ring, provider.issuer, provider.now()))
        return 0
    with db.read() as conn:
        keys = signing_key_store.load_all(conn)
    checkpoints = []
    for name in args.checkpoint:
        try:
            checkpoints.append(audit.read_checkpoint(Path(name).read_text("utf-8"), keys))
        except (OSError, audit.CheckpointError) as exc:
            return _fail(f"checkpoint {name}: {exc}", 2)
    report = audit.verify(db.read, checkpoints)
    _print(report.as_json())
    if not report.ok:
        reason = report.first_break.reason if report.first_break else "a checkpoint does not hold"
        print(f"freshid: audit chain broken: {reason}", file=sys.stderr)
        return 1
    return 0


def _admin_keys(args: argparse.Namespace, settings: Settings) -> int:
    db, now = _db(settings), _now()
    if args.action == "create":
        try:
            scopes = key_store.parse_scopes(args.scopes)
            with db.write() as conn:
                key, plaintext = key_store.create(conn, args.name, scopes, now)
        except ValueError as exc:
            return _fail(str(exc), 2)
        _print({**key.as_json(), "key": plaintext})
    elif args.action == "list":
        with db.read() as conn:
            for k in key_store.all_keys(conn):
                _print(k.as_json())
    else:
        with db.write() as conn:
            if not key_store.revoke(conn, args.key_id, now):
                return _fail(f"no live admin key {args.key_id}")
        _print({"id": args.key_id, "revoked": True})
    return 0


def _webhooks(args: argparse.Namespace, settings: Settings) -> int:
    db, now = _db(settings), _now()
    if args.action == "create":
        try:
            with db.write() as conn:
                endpoint, secret = hooks.create(
                    conn, args.url, args.event_types, args.description, now
                )
        except ValueError as exc:
            return _fail(str(exc), 2)
        _print({**endpoint.as_json(), "secret": secret})
        return 0
    if args.action == "list":
        with db.read() as conn:
            for e in hooks.all_endpoints(conn):
                _print(e.as_json())
        return 0
    eid = args.endpoint_id
    with db.write() as conn:
        if hooks.get(conn, eid) is None:
            return _fail(f"no webhook endpoint {eid}")
        if args.action == "delete":
            hooks.delete(conn, eid, now)
            _print({"id": eid, "deleted": True})
        elif args.action == "rotate-secret":
            _print({"id": eid, "secret": hooks.rotate_secret(conn, eid, now)})
        elif args.action in {"enable", "disable"}:
            hooks.set_enabled(conn, eid, args.action == "enable", now, "disabled by an operator")
        elif args.action == "deliveries":
            for d in delivery.deliveries_for(conn, eid, 0, 1000):
                _print(d)
        if args.action in {"show", "enable", "disable"}:
            found = hooks.get(conn, eid)
            assert found is not None
            _print(found.as_json())
    return 0


def _sessions(args: argparse.Namespace, settings: Settings) -> int:
    db, now = _db(settings), _now()
    if args.action == "list":
        with db.read() as conn:
            rows = conn.execute(
                sessions.select()
                .where(sessions.c.user_id == args.user_id)
                .order_by(sessions.c.created_at.desc())
            )
            for r in rows:
                m = r._mapping
                _print(
                    {
                        "id": m["id"],
                        "created_at": m["created_at"],
                        "auth_time": m["auth_time"],
                        "proof_age": now - m["auth_time"],
                        "last_seen_at": m["last_seen_at"],
                        "revoked_at": m["revoked_at"],
                    }
                )
        return 0
    with db.write() as conn:
        row = conn.execute(
            sa.select(sessions.c.user_id).where(sessions.c.id == args.session_id)
        ).first()
        if row is None:
            return _fail(f"no session {args.session_id}")
        changed = session_store.revoke(conn, args.session_id, "admin", now, user_id=row.user_id)
    _print({"id": args.session_id, "revoked": True, "changed": changed})
    return 0


def _admins(args: argparse.Namespace, settings: Settings) -> int:
    from freshid.admin import dashboard
    from freshid.storage import users as user_store
    from freshid.storage.tables import users
    from freshid.storage.tables_events import admin_users

    db, now = _db(settings), _now()
    if args.action == "list":
        with db.read() as conn:
            rows = conn.execute(
                sa.select(users.c.id, users.c.email, admin_users.c.granted_at)
                .join(admin_users, admin_users.c.user_id == users.c.id)
                .order_by(users.c.email)
            )
            for r in rows:
                _print({"id": r.id, "email": r.email, "granted_at": r.granted_at})
        return 0
    with db.write() as conn:
        user = user_store.by_email(conn, args.email)
        if user is None:
            return _fail(f"no user with email {args.email}")
        if args.action == "grant":
            changed = dashboard.grant(conn, user.id, now)
        else:
            changed = dashboard.revoke(conn, user.id)
    _print(
        {"id": user.id, "email": user.email, "admin": args.action == "grant", "changed": changed}
    )
    return 0


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    from freshid.events.worker import Worker

    try:
        schedule = tuple(int(s) for s in args.retry_schedule.split(",") if s.strip())
    except ValueError:
        return _fail("--retry-schedule takes comma-separated seconds", 2)
    if not schedule or args.concurrency < 1 or args.attempt_timeout <= 0:
        return _fail("--retry-schedule, --concurrency and --attempt-timeout must be positive", 2)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if args.log_format == "json":
        use_json_logs()
    db = _db(settings)
    policy = delivery.RetryPolicy(
        schedule=schedule, attempt_timeout=args.attempt_timeout, lease_slack=args.lease_slack
    )
    worker = Worker(
        db, _now, policy, concurrency=args.concurrency, poll_interval=args.poll_interval
    )
    with contextlib.suppress(KeyboardInterrupt):
        anyio.run(lambda: worker.run(max_seconds=args.max_seconds))
    return 0


__all__ = ["HANDLERS", "add_parsers", "use_json_logs"]

HANDLERS: dict[str, Callable[[argparse.Namespace, Settings], int]] = {
    "audit": _audit,
    "admin-keys": _admin_keys,
    "webhooks": _webhooks,
    "sessions": _sessions,
    "worker": _worker,
    "admins": _admins,
}
