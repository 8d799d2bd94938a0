"""Settings: precedence, and a stop with the setting's name on anything unknown or invalid."""

from __future__ import annotations

from pathlib import Path

import pytest

from freshid.settings import SettingsError, load_settings


def test_defaults() -> None:
    s = load_settings(environ={})
    assert s.database_url.startswith("sqlite:///var/")
    assert s.effective_issuer == "http://127.0.0.1:8000"
    assert s.cookies_secure is False  # plain-http loopback
    assert s.argon2_memory_kib == 19_456 and s.argon2_time_cost == 2
    assert s.retention_interval == 3600
    assert load_settings(environ={"FRESHID_RETENTION_INTERVAL": "0"}).retention_interval == 0


def test_env_overrides_file(tmp_path: Path) -> None:
    cfg = tmp_path / "freshid.toml"
    cfg.write_text('issuer = "https://id.example.com"\naccess_token_ttl = 300\n')
    s = load_settings(cfg, environ={"FRESHID_ACCESS_TOKEN_TTL": "120"})
    assert s.issuer == "https://id.example.com" and s.access_token_ttl == 120
    assert s.cookies_secure is True


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"FRESHID_ACESS_TOKEN_TTL": "5"}, "acess_token_ttl"),
        ({"FRESHID_ACCESS_TOKEN_TTL": "soon"}, "access_token_ttl"),
        ({"FRESHID_ACCESS_TOKEN_TTL": "0"}, "access_token_ttl"),
        ({"FRESHID_CODE_TTL": "3600"}, "code_ttl"),
        ({"FRESHID_ISSUER": "http://id.example.com"}, "issuer"),
        ({"FRESHID_ISSUER": "https://id.example.com/?x=1"}, "issuer"),
        ({"FRESHID_DATABASE_URL": "mysql://x"}, "database_url"),
        ({"FRESHID_SIGNING_ALG": "HS256"}, "signing_alg"),
        ({"FRESHID_ARGON2_MEMORY_KIB": "1024"}, "argon2_memory_kib"),
        ({"FRESHID_DEV_MODE": "maybe"}, "dev_mode"),
        ({"FRESHID_RETENTION_INTERVAL": "-1"}, "retention_interval"),
        ({"FRESHID_RETENTION_INTERVAL": "hourly"}, "retention_interval"),
    ],
)
def test_invalid_settings_name_the_setting(environ: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        load_settings(environ=environ)


def test_unknown_key_in_file(tmp_path: Path) -> None:
    cfg = tmp_path / "freshid.toml"
    cfg.write_text("isuer = 'x'\n")
    with pytest.raises(SettingsError, match="isuer"):
        load_settings(cfg, environ={})


def test_test_variables_are_not_settings() -> None:
    load_settings(environ={"FRESHID_TEST_POSTGRES_URL": "postgresql://x/y"})
