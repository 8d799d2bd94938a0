"""The ``freshid`` command as operators use it: JSON out, digests stored, settings named."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from freshid.storage import challenges as challenge_store
from freshid.storage import users as user_store
from freshid.storage.database import Database
from freshid.storage.tables import challenges, clients, events

FRESHID = [sys.executable, "-m", "freshid.cli"]


def run(args: list[str], database_url: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*FRESHID, *args],
        capture_output=True,
        text=True,
        env={"FRESHID_DATABASE_URL": database_url, "PATH": "/usr/bin:/bin", **env},
        timeout=60,
        check=False,
    )


def test_users_clients_keys_events(database_url: str) -> None:
    out = run(
        ["users", "create", "--email", "Ada@Example.com", "--password", "long enough pw"],
        database_url,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["email"] == "ada@example.com"
    again = run(
        ["users", "create", "--email", "ada@example.com", "--password", "long enough pw"],
        database_url,
    )
    assert again.returncode == 1

    out = run(
        [
            "clients",
            "create",
            "--name",
            "RP",
            "--redirect-uri",
            "https://rp.example/cb",
            "--redirect-uri",
            "https://rp.example/cb2",
            "--post-logout-redirect-uri",
            "https://rp.example/",
        ],
        database_url,
    )
    assert out.returncode == 0, out.stderr
    created = json.loads(out.stdout)
    assert len(created["client_secret"]) >= 43
    db = Database(database_url)
    with db.read() as conn:
        stored = conn.execute(sa.select(clients.c.secret_digest)).scalar_one()
    db.dispose()
    assert stored != created["client_secret"] and created["client_secret"] not in stored

    public = json.loads(
        run(
            [
                "clients",
                "create",
                "--name",
                "SPA",
                "--redirect-uri",
                "http://127.0.0.1:5173/cb",
                "--public",
            ],
            database_url,
        ).stdout
    )
    assert "client_secret" not in public

    bad = run(
        ["clients", "create", "--name", "X", "--redirect-uri", "http://evil.example/cb"],
        database_url,
    )
    assert bad.returncode == 2 and "https" in bad.stderr

    first = json.loads(run(["keys", "rotate"], database_url).stdout)
    second = json.loads(run(["keys", "rotate"], database_url).stdout)
    listed = [json.loads(line) for line in run(["keys", "list"], database_url).stdout.splitlines()]
    assert {k["kid"] for k in listed} >= {first["kid"], second["kid"]}
    assert next(k for k in listed if k["kid"] == first["kid"])["retired_at"] is not None

    lines = run(["events", "list"], database_url).stdout.splitlines()
    evs = [json.loads(line) for line in lines]
    assert [e["type"] for e in evs][:1] == ["user.created"]
    assert all(evs[i]["id"] < evs[i + 1]["id"] for i in range(len(evs) - 1))
    after = run(
        ["events", "list", "--after", str(evs[0]["id"]), "--type", "client.created"], database_url
    ).stdout.splitlines()
    assert len(after) == 2

    disabled = run(["users", "disable", "--email", "ada@example.com"], database_url)
    assert json.loads(disabled.stdout)["disabled"] is True


def test_prune_counts_on_a_dry_run_then_deletes_and_leaves_events(database_url: str) -> None:
    assert run(["migrate"], database_url).returncode == 0
    db = Database(database_url)
    now = int(time.time())
    with db.write() as conn:
        challenge_store.issue(conn, "passkey", "old", b"c" * 32, now - 3 * 24 * 3600, 300)
        challenge_store.issue(conn, "passkey", "new", b"c" * 32, now, 300)
        user_store.create(conn, "ada@example.com", None, now)

    def count(table: sa.Table) -> int:
        with db.read() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())

    recorded = count(events)
    try:
        dry = run(["prune", "--dry-run"], database_url)
        assert dry.returncode == 0, dry.stderr
        counted = json.loads(dry.stdout)
        assert counted["dry_run"] is True and counted["total"] == 1
        assert counted["rows"]["challenges"] == 1 and "events" not in counted["rows"]
        assert count(challenges) == 2

        done = json.loads(run(["prune"], database_url).stdout)
        assert (done["dry_run"], done["rows"], done["total"]) == (False, counted["rows"], 1)
        assert count(challenges) == 1

        assert json.loads(run(["prune"], database_url).stdout)["total"] == 0
        assert count(events) == recorded
    finally:
        db.dispose()


@pytest.mark.parametrize(
    ("env", "named"),
    [({"FRESHID_PORTT": "1"}, "portt"), ({"FRESHID_ACCESS_TOKEN_TTL": "x"}, "access_token_ttl")],
)
def test_bad_setting_stops_with_its_name(tmp_path: Path, env: dict[str, str], named: str) -> None:
    out = run(["migrate"], f"sqlite:///{tmp_path}/x.sqlite3", **env)
    assert out.returncode == 2 and named in out.stderr


def test_weak_password_refused(tmp_path: Path) -> None:
    out = run(
        ["users", "create", "--email", "a@b.c", "--password", "short"],
        f"sqlite:///{tmp_path}/x.sqlite3",
    )
    assert out.returncode == 2 and "at least 8" in out.stderr
