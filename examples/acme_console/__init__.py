"""Acme Console: the demo relying party that ``freshid demo`` starts next to the provider.

A small Starlette app that signs users in with FreshID through a real OpenID Connect client
(Authlib), shows how old their proof is, and reveals its one secret only to a fresh proof.
"""

from .app import create_app
from .config import AcmeConfig

__all__ = ["AcmeConfig", "create_app"]
