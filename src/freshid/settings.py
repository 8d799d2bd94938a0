"""Configuration: one frozen :class:`Settings`, read from a TOML file and ``FRESHID_*`` variables.

Precedence, lowest first: defaults, the TOML file given with ``--config``, environment variables.
An unknown key or a value of the wrong shape stops start-up with a message that names the setting,
because a typo in an identity provider's configuration must never silently fall back to a default.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


class SettingsError(ValueError):
    """A setting is unknown or invalid; the message names it."""


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///var/freshid.sqlite3"
    """SQLAlchemy-style URL. ``sqlite:///PATH`` (embedded, the default) or
    ``postgresql://USER@HOST:PORT/DB`` (production); FreshID picks the driver."""

    issuer: str = ""
    """The issuer identifier (OIDC Discovery §3). Empty means ``http://<host>:<port>``."""

    host: str = "127.0.0.1"
    """Interface ``freshid serve`` listens on."""

    port: int = 8000
    """Port ``freshid serve`` listens on."""

    access_token_ttl: int = 600
    """Lifetime of RFC 9068 access tokens, in seconds."""

    id_token_ttl: int = 600
    """Lifetime of ID tokens, in seconds."""

    refresh_token_ttl: int = 30 * 24 * 3600
    """Absolute lifetime of a refresh-token family, in seconds, counted from the sign-in that
    started it; rotation does not extend it."""

    code_ttl: int = 60
    """Lifetime of an authorization code, in seconds (RFC 6749 §4.1.2 recommends at most 10 min)."""

    interaction_ttl: int = 900
    """How long an authorization request may wait for the user to sign in, in seconds."""

    session_ttl: int = 14 * 24 * 3600
    """Absolute lifetime of a browser session, in seconds."""

    session_idle_ttl: int = 3 * 24 * 3600
    """A session unused for this long, in seconds, ends."""

    signing_alg: str = "ES256"
    """JWS algorithm for ID and access tokens. Allowed: ES256."""

    key_rotation_grace: int = 24 * 3600
    """Extra seconds a retired public key stays in the JWKS after the longest token lifetime."""

    argon2_memory_kib: int = 19_456
    """argon2id memory cost in KiB (OWASP Password Storage Cheat Sheet: 19 MiB, t=2, p=1)."""

    argon2_time_cost: int = 2
    """argon2id iterations."""

    argon2_parallelism: int = 1
    """argon2id lanes."""

    password_hash_concurrency: int = 2
    """How many password hashes may run at once; more wait, so a flood of sign-ins cannot exhaust
    memory (each hash takes ``argon2_memory_kib``)."""

    throttle_window: int = 900
    """Window, in seconds, over which failed sign-ins are counted."""

    throttle_per_account_ip: int = 5
    """Failures allowed for one account from one IP address per window."""

    throttle_per_ip: int = 50
    """Failures allowed from one IP address, across accounts, per window."""

    throttle_per_account: int = 100
    """Failures allowed for one account from IP addresses it has never signed in from, per
    window. Addresses that have signed in to the account before are not subject to it, so an
    attacker cannot lock the owner out."""

    dev_mode: bool = False
    """Development conveniences (the demo). Never enable in production."""

    secure_cookies: bool | None = None
    """Force ``Secure``/``__Host-`` cookies on or off. Unset: on unless the issuer is plain-http
    loopback."""

    trusted_proxies: tuple[str, ...] = field(default_factory=tuple)
    """Peer addresses whose ``X-Forwarded-For`` is believed for the client IP."""

    policy_file: str = ""
    """A TOML action-policy catalog (the format of ``freshid_guard.policy``); its actions add to,
    or override, FreshID's own account actions."""

    mail_backend: str = "smtp"
    """``smtp`` sends mail; ``outbox`` keeps it in memory and shows it at ``/dev/mail``
    (development only; ``freshid demo`` uses it)."""

    smtp_host: str = "127.0.0.1"
    """SMTP server for emailed sign-in codes."""

    smtp_port: int = 25
    """SMTP server port."""

    smtp_security: str = "starttls"
    """``starttls`` (refuses servers without it), ``tls`` (implicit TLS) or ``none``."""

    smtp_username: str = ""
    """SMTP login; empty for none."""

    smtp_password: str = field(default="", repr=False)
    """SMTP password."""

    smtp_timeout: int = 10
    """Seconds to wait for the SMTP server."""

    mail_from: str = "FreshID <no-reply@localhost>"
    """The From address of emailed codes."""

    webauthn_rp_id: str = ""
    """The WebAuthn relying party id for passkeys. Empty means the issuer's host name (which must
    then be a domain name such as ``localhost``: browsers refuse IP addresses)."""

    webauthn_rp_name: str = "FreshID"
    """The name authenticators show for passkeys."""

    retention_interval: int = 3600
    """Seconds between a server's deletions of rows no request can use again (spent and expired
    tokens, ended sessions, expired sign-in pages...: :mod:`freshid.storage.retention`); ``0``
    turns it off (``freshid prune`` from cron instead). Events are never deleted."""

    @property
    def effective_issuer(self) -> str:
        return self.issuer or f"http://{self.host}:{self.port}"

    @property
    def cookies_secure(self) -> bool:
        if self.secure_cookies is not None:
            return self.secure_cookies
        parts = urlsplit(self.effective_issuer)
        return not (parts.scheme == "http" and parts.hostname in {"127.0.0.1", "localhost", "::1"})

    @property
    def rp_id(self) -> str:
        return self.webauthn_rp_id or (urlsplit(self.effective_issuer).hostname or "")

    @property
    def origin(self) -> str:
        parts = urlsplit(self.effective_issuer)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def longest_token_ttl(self) -> int:
        return max(self.access_token_ttl, self.id_token_ttl)


_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}
_ENV_PREFIX = "FRESHID_"
# Variables under the prefix that are not settings (read by the test suite or the CLI).
_ENV_IGNORED = {"FRESHID_TEST_POSTGRES_URL", "FRESHID_CONFIG"}


def _coerce(name: str, raw: Any) -> Any:
    f = _FIELDS[name]
    target = f.type if isinstance(f.type, str) else str(f.type)
    try:
        if target == "bool":
            return _to_bool(raw)
        if target == "bool | None":
            return None if raw in ("", None) else _to_bool(raw)
        if target == "int":
            if isinstance(raw, bool):
                raise ValueError
            return int(raw)
        if target == "tuple[str, ...]":
            if isinstance(raw, str):
                return tuple(p.strip() for p in raw.split(",") if p.strip())
            if isinstance(raw, list) and all(isinstance(p, str) for p in raw):
                return tuple(raw)
            raise ValueError
        if not isinstance(raw, str):
            raise ValueError
        return raw
    except ValueError:
        raise SettingsError(
            f"setting {name!r}: invalid value {raw!r} (expected {target})"
        ) from None


def _to_bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if isinstance(raw, str) and raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise ValueError


def _validate(s: Settings) -> None:
    positive = [
        "access_token_ttl",
        "id_token_ttl",
        "refresh_token_ttl",
        "code_ttl",
        "interaction_ttl",
        "session_ttl",
        "session_idle_ttl",
        "argon2_memory_kib",
        "argon2_time_cost",
        "argon2_parallelism",
        "password_hash_concurrency",
        "throttle_window",
        "throttle_per_account_ip",
        "throttle_per_ip",
        "throttle_per_account",
    ]
    for name in positive:
        if getattr(s, name) <= 0:
            raise SettingsError(f"setting {name!r}: must be a positive integer")
    if s.code_ttl > 600:
        raise SettingsError("setting 'code_ttl': at most 600 seconds (RFC 6749 §4.1.2)")
    if s.argon2_memory_kib < 7168:
        raise SettingsError("setting 'argon2_memory_kib': at least 7168 KiB (OWASP minimum)")
    if s.signing_alg != "ES256":
        raise SettingsError(f"setting 'signing_alg': unsupported algorithm {s.signing_alg!r}")
    if not 0 < s.port < 65536:
        raise SettingsError("setting 'port': must be between 1 and 65535")
    if s.issuer:
        parts = urlsplit(s.issuer)
        if (
            parts.scheme not in {"https", "http"}
            or not parts.hostname
            or parts.query
            or parts.fragment
        ):
            raise SettingsError(
                "setting 'issuer': must be an http(s) URL without query or fragment"
            )
        if parts.scheme == "http" and parts.hostname not in {"127.0.0.1", "localhost", "::1"}:
            raise SettingsError("setting 'issuer': plain http is only allowed on loopback")
    if s.mail_backend not in {"smtp", "outbox"}:
        raise SettingsError("setting 'mail_backend': must be smtp or outbox")
    if s.smtp_security not in {"none", "starttls", "tls"}:
        raise SettingsError("setting 'smtp_security': must be none, starttls or tls")
    if s.retention_interval < 0:
        raise SettingsError("setting 'retention_interval': must be 0 (off) or a positive integer")
    if not 0 < s.smtp_port < 65536 or s.smtp_timeout <= 0:
        raise SettingsError("setting 'smtp_port'/'smtp_timeout': out of range")
    if s.policy_file and not Path(s.policy_file).is_file():
        raise SettingsError(f"setting 'policy_file': no such file {s.policy_file!r}")
    scheme = s.database_url.split(":", 1)[0]
    if scheme not in {"sqlite", "postgresql", "postgres", "postgresql+psycopg"}:
        raise SettingsError(f"setting 'database_url': unsupported scheme {scheme!r}")


def load_settings(
    config_file: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Build the settings; raises :class:`SettingsError` naming the offending setting."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    if config_file is not None:
        try:
            data = tomllib.loads(Path(config_file).read_text(encoding="utf-8"))
        except OSError as exc:
            raise SettingsError(f"config file {str(config_file)!r}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"config file {str(config_file)!r}: {exc}") from None
        for key, raw in data.items():
            if key not in _FIELDS:
                raise SettingsError(f"unknown setting {key!r} in {config_file}")
            values[key] = _coerce(key, raw)
    for var, raw in env.items():
        if not var.startswith(_ENV_PREFIX) or var in _ENV_IGNORED:
            continue
        key = var[len(_ENV_PREFIX) :].lower()
        if key not in _FIELDS:
            raise SettingsError(f"unknown setting {key!r} (from environment variable {var})")
        values[key] = _coerce(key, raw)
    for key, raw in overrides.items():
        if raw is None:
            continue
        if key not in _FIELDS:
            raise SettingsError(f"unknown setting {key!r}")
        values[key] = raw
    settings = Settings(**values)
    _validate(settings)
    return settings
