"""Acme Console: the demo relying party that ``freshid demo`` starts next to the provider.

A small Starlette app — projects, API keys, billing, account deletion — that signs users in with
FreshID through a real OpenID Connect client (Authlib) and lets ``freshid_guard`` decide every
sensitive action against the catalog in ``actions.toml``, which the provider loads too.
"""

from .app import create_app
from .config import DEFAULT_POLICY_FILE, AcmeConfig

__all__ = ["DEFAULT_POLICY_FILE", "AcmeConfig", "create_app"]
