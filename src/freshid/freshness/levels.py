"""Authentication context classes (OIDC Core §2 ``acr``) as an ordered ladder.

The ladder itself is shared with relying apps through :mod:`freshid_guard.acr`, so the provider
and the guard can never disagree on what a value means:

- ``urn:freshid:acr:1fa`` — one factor (e.g. a password); NIST SP 800-63B AAL1.
- ``urn:freshid:acr:mfa`` — two or more kinds of factor; AAL2.
- ``urn:freshid:acr:phr`` — multi-factor and phishing-resistant (a passkey with user
  verification); AAL3-like.
"""

from __future__ import annotations

from freshid_guard.acr import ACR_1FA, ACR_MFA, ACR_PHR, LADDER, rank, satisfies

__all__ = ["ACR_1FA", "ACR_MFA", "ACR_PHR", "LADDER", "event_acr", "rank", "satisfies"]


def event_acr(factors: frozenset[str], phishing_resistant: bool) -> str:
    """The level of one authentication event, from the methods completed in it.

    NIST SP 800-63B §4: multi-factor means more than one *kind* of factor (two possession factors
    are still one factor). A phishing-resistant method in a multi-factor event makes it ``phr``.
    """
    if len(factors) >= 2:
        return ACR_PHR if phishing_resistant else ACR_MFA
    return ACR_1FA
