"""freshid_guard: enforce fresh proof of identity where sensitive actions happen.

Relying apps and APIs verify FreshID's RFC 9068 access tokens, judge the proof's age
(``auth_time``), strength (``acr``/``amr``) and binding (RFC 9396) against a TOML action catalog,
and answer with an RFC 9470 step-up challenge or a re-authentication redirect. The core does no
I/O; keys are fetched through OIDC discovery with ``httpx``; framework adapters live in
:mod:`freshid_guard.adapters`.

This package never imports the FreshID server.
"""

from freshid_guard.challenge import (
    InMemoryPendingStore,
    PendingStepUp,
    PendingStore,
    StepUpRedirect,
    UnsafeReturnPath,
    bearer_challenge,
    refusal_challenge,
    safe_return_path,
    step_up_challenge,
    step_up_redirect,
)
from freshid_guard.decision import (
    Allowed,
    Evidence,
    EvidenceHook,
    Freshness,
    InMemoryReplayStore,
    ReplayStore,
    StepUp,
    StepUpReason,
    judge,
)
from freshid_guard.errors import (
    GuardRefusal,
    InsufficientScope,
    InvalidRequest,
    InvalidToken,
    PolicyError,
    ProviderUnavailable,
    StepUpRequired,
    TokenMissing,
    UnknownAction,
    UnknownKey,
)
from freshid_guard.guard import BrowserRequest, BrowserStepUp, Denial, Guard, bearer_token
from freshid_guard.jose import KeySet
from freshid_guard.jwks import JWKSCache, ProviderMetadata
from freshid_guard.policy import (
    ACTION_DETAIL_TYPE,
    PRESETS,
    ActionPolicy,
    load_policies,
    load_policies_file,
    parse_policies,
)
from freshid_guard.verify import TokenVerifier, VerifiedToken, VerifiedTokenCache

__all__ = [
    "ACTION_DETAIL_TYPE",
    "PRESETS",
    "ActionPolicy",
    "Allowed",
    "BrowserRequest",
    "BrowserStepUp",
    "Denial",
    "Evidence",
    "EvidenceHook",
    "Freshness",
    "Guard",
    "GuardRefusal",
    "InMemoryPendingStore",
    "InMemoryReplayStore",
    "InsufficientScope",
    "InvalidRequest",
    "InvalidToken",
    "JWKSCache",
    "KeySet",
    "PendingStepUp",
    "PendingStore",
    "PolicyError",
    "ProviderMetadata",
    "ProviderUnavailable",
    "ReplayStore",
    "StepUp",
    "StepUpReason",
    "StepUpRedirect",
    "StepUpRequired",
    "TokenMissing",
    "TokenVerifier",
    "UnknownAction",
    "UnknownKey",
    "UnsafeReturnPath",
    "VerifiedToken",
    "VerifiedTokenCache",
    "bearer_challenge",
    "bearer_token",
    "judge",
    "load_policies",
    "load_policies_file",
    "parse_policies",
    "refusal_challenge",
    "safe_return_path",
    "step_up_challenge",
    "step_up_redirect",
]
