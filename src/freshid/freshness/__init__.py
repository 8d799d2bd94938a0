"""Freshness: the pure decision about whether a session's proof is young and strong enough."""

from freshid.freshness.decision import (
    Allow,
    Authenticate,
    AuthRequest,
    Deny,
    MethodOffer,
    Outcome,
    SessionState,
    decide,
)
from freshid.freshness.levels import ACR_1FA, ACR_MFA, ACR_PHR
from freshid.freshness.policy import ActionPolicy

__all__ = [
    "ACR_1FA",
    "ACR_MFA",
    "ACR_PHR",
    "ActionPolicy",
    "Allow",
    "AuthRequest",
    "Authenticate",
    "Deny",
    "MethodOffer",
    "Outcome",
    "SessionState",
    "decide",
]
