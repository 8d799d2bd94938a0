"""Authentication context classes (OIDC Core §2 ``acr``) as an ordered ladder.

FreshID's documented ``acr`` values, weakest first:

- ``urn:freshid:acr:1fa`` — one factor (e.g. a password); NIST SP 800-63B AAL1.
- ``urn:freshid:acr:mfa`` — two or more factors; AAL2.
- ``urn:freshid:acr:phr`` — phishing-resistant (a passkey with user verification); AAL3-like.

A higher level satisfies a request for a lower one. Values outside the ladder are unknown: they
cannot be satisfied, which matters only when they are essential.
"""

from __future__ import annotations

ACR_1FA = "urn:freshid:acr:1fa"
ACR_MFA = "urn:freshid:acr:mfa"
ACR_PHR = "urn:freshid:acr:phr"

LADDER: tuple[str, ...] = (ACR_1FA, ACR_MFA, ACR_PHR)
_RANK = {value: rank for rank, value in enumerate(LADDER, start=1)}


def rank(acr: str | None) -> int:
    """0 for unknown or missing values."""
    return _RANK.get(acr or "", 0)


def satisfies(achieved: str, requested: str) -> bool:
    return rank(requested) > 0 and rank(achieved) >= rank(requested)


def event_acr(factors: frozenset[str], phishing_resistant: bool) -> str:
    """The level of one authentication event, from the methods completed in it.

    NIST SP 800-63B §4: multi-factor means more than one *kind* of factor (two possession factors
    are still one factor). A phishing-resistant method in a multi-factor event makes it ``phr``.
    """
    if len(factors) >= 2:
        return ACR_PHR if phishing_resistant else ACR_MFA
    return ACR_1FA
