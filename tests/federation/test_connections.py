"""Managing connections: the CLI as operators use it, and the settings it refuses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from freshid.cli import main
from freshid.federation import connections as store
from freshid.storage.database import Database


def cli(capsys: pytest.CaptureFixture[str], database_url: str, *args: str) -> tuple[int, str]:
    code = main(["connections", *args])
    out, err = capsys.readouterr()
    return code, out if code == 0 else err


def _env(monkeypatch: pytest.MonkeyPatch, database_url: str) -> str:
    monkeypatch.setenv("FRESHID_DATABASE_URL", database_url)
    monkeypatch.setenv("FRESHID_ISSUER", "https://id.example.com")
    monkeypatch.setenv("OKTA_SECRET", "s3cret-from-env")
    return database_url


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, database_url: str) -> str:
    """Both backends: the connection is stored and read back."""
    return _env(monkeypatch, database_url)


@pytest.fixture
def sqlite_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """Refusals happen before anything is stored: SQLite is enough."""
    return _env(monkeypatch, f"sqlite:///{tmp_path}/freshid.sqlite3")


def test_create_from_a_preset_list_and_disable(
    env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = cli(
        capsys,
        env,
        "create",
        "--id",
        "okta",
        "--preset",
        "okta",
        "--param",
        "domain=corp.okta.com",
        "--client-id",
        "0oa123",
        "--client-secret-env",
        "OKTA_SECRET",
        "--domain",
        "Corp.Example",
        "--jit",
        "--mfa-amr",
        "mfa",
    )
    assert code == 0, out
    created = json.loads(out)
    assert created["issuer"] == "https://corp.okta.com"
    assert created["redirect_uri"] == "https://id.example.com/federation/okta/callback"
    assert created["domains"] == ["corp.example"]
    assert "s3cret" not in out  # the secret is stored, never printed
    db = Database(env)
    with db.read() as conn:
        saved = store.get(conn, "okta")
    db.dispose()
    assert saved is not None and saved.client_secret == "s3cret-from-env"
    assert saved.scopes == ("openid", "email", "profile")

    code, out = cli(capsys, env, "list")
    assert [json.loads(line)["id"] for line in out.splitlines()] == ["okta"]
    assert cli(capsys, env, "disable", "--id", "okta")[0] == 0
    assert json.loads(cli(capsys, env, "list")[1])["enabled"] is False
    assert cli(capsys, env, "disable", "--id", "nope")[0] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--id", "Bad Id", "--preset", "google", "--client-id", "x", "--client-secret", "y"],
            "id",
        ),
        (
            ["--id", "ms", "--preset", "microsoft", "--client-id", "x", "--client-secret", "y"],
            "tenant",
        ),
        (["--id", "g", "--preset", "google", "--client-id", "x"], "client_secret"),
        (
            [
                "--id",
                "o",
                "--kind",
                "oidc",
                "--name",
                "O",
                "--issuer",
                "http://idp.example",
                "--client-id",
                "x",
                "--client-secret",
                "y",
            ],
            "plain http",
        ),
        (
            [
                "--id",
                "o",
                "--kind",
                "oidc",
                "--name",
                "O",
                "--issuer",
                "https://idp.example",
                "--client-id",
                "x",
                "--client-secret",
                "y",
                "--algorithm",
                "HS256",
            ],
            "algorithms",
        ),
    ],
)
def test_invalid_connections_are_refused_with_the_setting_named(
    sqlite_env: str, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, err = cli(capsys, sqlite_env, "create", *args)
    assert code == 2 and message in err


def test_the_same_id_twice_is_refused(env: str, capsys: pytest.CaptureFixture[str]) -> None:
    args: list[Any] = [
        "--id",
        "g",
        "--preset",
        "google",
        "--client-id",
        "x",
        "--client-secret",
        "y",
    ]
    assert cli(capsys, env, "create", *args)[0] == 0
    code, err = cli(capsys, env, "create", *args)
    assert code == 2 and "exists" in err
