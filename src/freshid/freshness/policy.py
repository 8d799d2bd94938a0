"""Action policies: what proof a named sensitive action demands.

The policy file format, its parser and the NIST SP 800-63B presets live in
:mod:`freshid_guard.policy`, shared with every relying app: one TOML file means the same thing to
the provider and to the guard. The provider adds its own account actions (OWASP ASVS 5.0 §7.5.1:
changing how one signs in, or ending sessions, requires a fresh proof); an operator's
``policy_file`` may override them.
"""

from __future__ import annotations

from pathlib import Path

from freshid_guard.policy import PRESETS, ActionPolicy, load_policies, load_policies_file

__all__ = ["ACCOUNT_POLICIES", "PRESETS", "ActionPolicy", "catalog", "load_policies"]

ACCOUNT_POLICIES: dict[str, ActionPolicy] = {
    p.action: p
    for p in (
        # Seeing the account page needs a live session, not a recent proof.
        ActionPolicy("account.view", "see your account", max_age=14 * 24 * 3600),
        ActionPolicy("account.method.add", "add a sign-in method", max_age=300),
        ActionPolicy("account.method.remove", "remove a sign-in method", max_age=300),
        ActionPolicy("account.recovery_codes.create", "create new recovery codes", max_age=300),
        ActionPolicy("account.session.revoke", "sign out another session", max_age=600),
    )
}


def catalog(policy_file: str | None) -> dict[str, ActionPolicy]:
    """The provider's catalog: its account actions, then the operator's file on top."""
    policies = dict(ACCOUNT_POLICIES)
    if policy_file:
        policies.update(load_policies_file(Path(policy_file)))
    return policies
