"""Configuration of the Acme Console demo relying party.

One frozen value, built by whoever starts the app (``freshid demo`` or a test), so that every
URL the app sends to the provider is derived in one place instead of being concatenated in views.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin, urlsplit

__all__ = ["DEFAULT_POLICY_FILE", "AcmeConfig"]

DEFAULT_POLICY_FILE = Path(__file__).resolve().parent / "actions.toml"
"""The catalog shipped with the console; ``freshid demo`` gives the provider the same file."""

_MIN_SESSION_SECRET_CHARS = 32


def _check_base(name: str, value: str) -> None:
    """Refuse URLs the provider would refuse later, with a message that names the field."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{name} must be an absolute http(s) URL, got {value!r}")
    if parts.query or parts.fragment:
        raise ValueError(f"{name} must not have a query or a fragment, got {value!r}")


@dataclass(frozen=True)
class AcmeConfig:
    """Everything Acme Console needs to act as an OpenID Connect client of FreshID."""

    issuer: str
    """The provider's issuer identifier; discovery is read from
    ``{issuer}/.well-known/openid-configuration`` and its ``issuer`` must equal this exactly."""

    client_id: str
    """The client id registered at the provider for this app."""

    client_secret: str = field(repr=False)
    """The client secret, sent with HTTP Basic to the token endpoint; never logged or rendered."""

    base_url: str
    """Where this app is reachable from the browser, e.g. ``http://127.0.0.1:8001``. The redirect
    URI (``/callback``) and post-logout redirect URI (``/``) are derived from it."""

    session_secret: str = field(repr=False)
    """Key that signs the ``acme_session`` cookie (at least 32 characters)."""

    policy_file: Path = DEFAULT_POLICY_FILE
    """The TOML action catalog (``freshid_guard.policy`` format) the guard enforces. The provider
    should load the same file as its ``policy_file`` so that both name the same actions."""

    scope: str = "openid email"
    """Scopes requested at sign-in; must contain ``openid``."""

    def __post_init__(self) -> None:
        _check_base("issuer", self.issuer)
        _check_base("base_url", self.base_url)
        if not self.client_id:
            raise ValueError("client_id must not be empty")
        if len(self.session_secret) < _MIN_SESSION_SECRET_CHARS:
            raise ValueError(
                f"session_secret must have at least {_MIN_SESSION_SECRET_CHARS} characters"
            )
        if not Path(self.policy_file).is_file():
            raise ValueError(f"policy_file must be an existing file, got {str(self.policy_file)!r}")
        if "openid" not in self.scope.split():
            raise ValueError("scope must contain 'openid'")

    def _under_base(self, relative: str) -> str:
        """Resolve ``relative`` under base_url, keeping any path prefix base_url has."""
        base = self.base_url if self.base_url.endswith("/") else self.base_url + "/"
        return urljoin(base, relative)

    @property
    def redirect_uri(self) -> str:
        """The one redirect URI this client registers: ``{base_url}/callback``."""
        return self._under_base("callback")

    @property
    def post_logout_redirect_uri(self) -> str:
        """Where the provider sends the browser after RP-initiated logout: ``{base_url}/``."""
        return self._under_base("")

    @property
    def server_metadata_url(self) -> str:
        """OIDC Discovery 1.0 §4: the issuer (without trailing slash) + the well-known path."""
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"

    @property
    def https_only(self) -> bool:
        """Mark the session cookie ``Secure`` only when the app is really served over https."""
        return urlsplit(self.base_url).scheme == "https"

    @property
    def issuer_origin(self) -> str:
        """The provider's origin, which the CSP must allow as a form target (logout redirects)."""
        parts = urlsplit(self.issuer)
        return f"{parts.scheme}://{parts.netloc}"
