"""FreshID's authentication context classes (OIDC Core §2 ``acr``) as an ordered ladder.

Weakest first:

- ``urn:freshid:acr:1fa`` — one factor (e.g. a password); NIST SP 800-63B AAL1.
- ``urn:freshid:acr:mfa`` — two or more factors; AAL2.
- ``urn:freshid:acr:phr`` — phishing-resistant (a passkey with user verification); AAL3-like.

A higher level satisfies a requirement for a lower one; a missing or unknown ``acr`` satisfies none.
"""

from __future__ import annotations

ACR_1FA = "urn:freshid:acr:1fa"
ACR_MFA = "urn:freshid:acr:mfa"
ACR_PHR = "urn:freshid:acr:phr"

LADDER: tuple[str, ...] = (ACR_1FA, ACR_MFA, ACR_PHR)
_RANK = {value: rank for rank, value in enumerate(LADDER, start=1)}


def rank(acr: str | None) -> int:
    """The value's place on the ladder, 1 for the weakest; 0 for missing or unknown values."""
    return _RANK.get(acr or "", 0)


def satisfies(achieved: str | None, required: str) -> bool:
    """Whether ``achieved`` is at least as strong as ``required`` (a known ladder value)."""
    return rank(required) > 0 and rank(achieved) >= rank(required)
