"""The events feature's commands: audit verify/checkpoint, admin-keys, webhooks, sessions."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from freshid import cli
from freshid.events import outbox
from freshid.events.catalog import EventType
from freshid.storage.database import Database
from freshid.storage.tables import events

FRESHID = [sys.executable, "-m", "freshid.cli"]


def run(args: list[str], database_url: str) -> subprocess.CompletedProcess[str]:
    """``freshid ARGS`` in this process (a subprocess costs seconds of imports per call)."""
    out, err = io.StringIO(), io.StringIO()
    with (
        pytest.MonkeyPatch.context() as mp,
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        mp.setenv("FRESHID_DATABASE_URL", database_url)
        try:
            status = cli.main(args)
        except SystemExit as exc:  # argparse
            status = int(exc.code or 0)
    return subprocess.CompletedProcess(args, status, out.getvalue(), err.getvalue())


def test_the_entry_point_runs(database_url: str) -> None:
    out = subprocess.run(
        [*FRESHID, "admin-keys", "list"],
        capture_output=True,
        text=True,
        env={"FRESHID_DATABASE_URL": database_url, "PATH": "/usr/bin:/bin"},
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr


def test_audit_verify_and_checkpoints(db: Database, database_url: str, tmp_path: Path) -> None:
    for i in range(5):
        with db.write() as conn:
            outbox.record(conn, EventType.USER_CREATED, 1000 + i, user_id=f"u{i}")
    out = run(["audit", "checkpoint"], database_url)
    assert out.returncode == 0, out.stderr
    checkpoint = json.loads(out.stdout)
    assert checkpoint["event_id"] >= 5 and checkpoint["jws"].count(".") == 2
    cp_file = tmp_path / "cp.json"
    cp_file.write_text(out.stdout)

    ok = run(["audit", "verify", "--checkpoint", str(cp_file)], database_url)
    assert ok.returncode == 0, ok.stderr
    report = json.loads(ok.stdout)
    assert report["ok"] and report["checkpoints"][0]["ok"]

    with db.write() as conn:
        conn.execute(events.update().where(events.c.id == 3).values(occurred_at=1))
    broken = run(["audit", "verify"], database_url)
    assert broken.returncode == 1
    assert json.loads(broken.stdout)["first_break"]["event_id"] == 3
    assert "event 3" in broken.stderr

    with db.write() as conn:
        conn.execute(events.update().where(events.c.id == 3).values(occurred_at=1002))
        conn.execute(events.delete().where(events.c.id >= checkpoint["event_id"]))
    rolled_back = run(["audit", "verify", "--checkpoint", str(cp_file)], database_url)
    assert rolled_back.returncode == 1
    assert not json.loads(rolled_back.stdout)["checkpoints"][0]["ok"]

    cp_file.write_text(json.dumps({**checkpoint, "jws": checkpoint["jws"][:-4] + "AAAA"}))
    assert run(["audit", "verify", "--checkpoint", str(cp_file)], database_url).returncode == 2


def test_admin_keys_webhooks_and_sessions(db: Database, database_url: str) -> None:
    out = run(
        [
            "admin-keys",
            "create",
            "--name",
            "siem",
            "--scope",
            "events:read",
            "--scope",
            "users:read",
        ],
        database_url,
    )
    assert out.returncode == 0, out.stderr
    created = json.loads(out.stdout)
    assert created["key"].startswith("fid_") and created["scopes"] == ["events:read", "users:read"]
    listed = run(["admin-keys", "list"], database_url)
    assert created["key"] not in listed.stdout and created["id"] in listed.stdout
    assert (
        run(["admin-keys", "create", "--name", "x", "--scope", "root"], database_url).returncode
        == 2
    )
    assert run(["admin-keys", "revoke", created["id"]], database_url).returncode == 0
    assert run(["admin-keys", "revoke", created["id"]], database_url).returncode == 1

    out = run(
        [
            "webhooks",
            "create",
            "--url",
            "https://hooks.example/in",
            "--event-type",
            "session.revoked",
        ],
        database_url,
    )
    assert out.returncode == 0, out.stderr
    endpoint = json.loads(out.stdout)
    assert endpoint["secret"].startswith("whsec_")
    eid = endpoint["id"]
    assert endpoint["secret"] not in run(["webhooks", "list"], database_url).stdout
    assert json.loads(run(["webhooks", "disable", eid], database_url).stdout)["enabled"] is False
    assert json.loads(run(["webhooks", "enable", eid], database_url).stdout)["enabled"] is True
    assert json.loads(run(["webhooks", "rotate-secret", eid], database_url).stdout)["secret"]
    assert run(["webhooks", "deliveries", eid], database_url).returncode == 0
    assert run(["webhooks", "show", "nope"], database_url).returncode == 1
    assert run(["webhooks", "create", "--url", "http://x.example/"], database_url).returncode == 2
    assert run(["webhooks", "delete", eid], database_url).returncode == 0

    assert run(["sessions", "revoke", "nope"], database_url).returncode == 1
    assert run(["sessions", "list", "--user-id", "nobody"], database_url).returncode == 0
    with db.read() as conn:
        types = set(conn.execute(sa.select(events.c.type)).scalars())
    assert {"admin_key.created", "admin_key.revoked", "webhook_endpoint.created"} <= types
    assert run(["audit", "verify"], database_url).returncode == 0
