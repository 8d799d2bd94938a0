"""Action policies: what proof a named sensitive action demands.

A policy names a maximum proof age, the ``amr`` values (RFC 8176) any one of which the proof must
carry, a minimum ``acr``, and whether the proof is bound to a single use of that action (RFC 9396
``authorization_details``). Presets follow NIST SP 800-63B §4 reauthentication guidance.
"""

from __future__ import annotations

from dataclasses import dataclass

from freshid.freshness.levels import ACR_1FA, ACR_MFA, ACR_PHR


@dataclass(frozen=True)
class ActionPolicy:
    action: str
    max_age: int | None = None
    amr: frozenset[str] = frozenset()
    min_acr: str | None = None
    bind: bool = False
    label: str | None = None


# NIST SP 800-63B: AAL1 reauthentication at least every 30 days, AAL2 every 12 hours (and after
# 30 minutes of inactivity), AAL3 every 12 hours (15 minutes of inactivity). The inactivity bound
# is what an action's freshness threshold expresses, so presets use it.
AAL1 = ActionPolicy(action="preset:aal1", max_age=30 * 24 * 3600, min_acr=ACR_1FA)
AAL2 = ActionPolicy(action="preset:aal2", max_age=30 * 60, min_acr=ACR_MFA)
AAL3 = ActionPolicy(action="preset:aal3", max_age=15 * 60, min_acr=ACR_PHR)
