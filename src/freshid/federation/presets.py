"""Presets for common upstream providers: issuer templates, scopes and assurance mappings.

A preset fills in what is the same for every customer of a provider; the admin still supplies the
client credentials (and the tenant or domain where the provider needs one). Values come from each
provider's published OpenID Connect metadata:

- Google: one issuer, ``https://accounts.google.com``; ``auth_time`` is returned when ``max_age``
  is sent.
- Microsoft Entra ID: ``https://login.microsoftonline.com/{tenant}/v2.0`` (a tenant id: the
  ``common`` endpoint has no single issuer, so it cannot pass the OIDC Discovery §4.3 check).
- Okta: ``https://{domain}`` (org authorization server) or ``https://{domain}/oauth2/default``;
  Okta reports multi-factor sign-ins with ``amr`` values such as ``mfa``, ``otp`` and ``hwk``.
- GitHub: plain OAuth 2.0 (no ID token); the subject is the numeric ``id`` and verified addresses
  come from ``/user/emails``. Sign-in only: it cannot prove a fresh authentication.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Preset:
    kind: str
    name: str
    config: dict[str, Any]
    parameters: tuple[str, ...] = ()
    """Names the admin must give (``--param tenant=...``), substituted into string values."""

    def apply(self, params: dict[str, str], **overrides: Any) -> dict[str, Any]:
        missing = [p for p in self.parameters if not params.get(p)]
        if missing:
            raise ValueError(f"preset {self.name}: missing parameter(s) {', '.join(missing)}")

        def fill(value: Any) -> Any:
            if isinstance(value, str):
                return value.format(**params)
            if isinstance(value, list):
                return [fill(v) for v in value]
            return value

        config = {k: fill(v) for k, v in self.config.items()}
        config.update({k: v for k, v in overrides.items() if v is not None})
        return config


PRESETS: dict[str, Preset] = {
    "google": Preset(
        "oidc",
        "Google",
        {"issuer": "https://accounts.google.com", "scopes": ["openid", "email", "profile"]},
    ),
    "microsoft": Preset(
        "oidc",
        "Microsoft",
        {
            "issuer": "https://login.microsoftonline.com/{tenant}/v2.0",
            "scopes": ["openid", "email", "profile"],
            "mfa_amr": ["mfa"],
        },
        ("tenant",),
    ),
    "okta": Preset(
        "oidc",
        "Okta",
        {
            "issuer": "https://{domain}",
            "scopes": ["openid", "email", "profile"],
            "mfa_amr": ["mfa"],
        },
        ("domain",),
    ),
    "github": Preset(
        "oauth2",
        "GitHub",
        {
            "authorization_endpoint": "https://github.com/login/oauth/authorize",
            "token_endpoint": "https://github.com/login/oauth/access_token",
            "userinfo_endpoint": "https://api.github.com/user",
            "emails_endpoint": "https://api.github.com/user/emails",
            "scopes": ["read:user", "user:email"],
            "subject_claim": "id",
        },
    ),
}
