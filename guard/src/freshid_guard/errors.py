"""The guard's refusals: one exception family, each member carrying its HTTP status and error code.

- :class:`TokenMissing` — no bearer token at all: RFC 6750 §3.1 says the challenge then carries no
  error code.
- :class:`InvalidRequest` — ``invalid_request`` (RFC 6750 §3.1), e.g. two ``Authorization`` headers.
- :class:`InvalidToken` — ``invalid_token`` (RFC 6750 §3.1): malformed, badly signed, expired, from
  another issuer or audience, or without ``auth_time``.
- :class:`InsufficientScope` — ``insufficient_scope`` (RFC 6750 §3.1).
- :class:`StepUpRequired` — ``insufficient_user_authentication`` (RFC 9470 §3): the token is valid
  but the proof behind it is too old, too weak, or not bound to this action.
- :class:`ProviderUnavailable` — the issuer's keys could not be fetched; answered with ``503``
  rather than blaming a token that may well be valid.

Configuration mistakes (a bad policy file, an unknown action name) are *not* refusals: they raise
:class:`PolicyError` or :class:`UnknownAction`, at start-up wherever possible.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from freshid_guard.decision import StepUp


class GuardRefusal(Exception):
    """A request the guard refuses. ``error`` is the RFC 6750 / RFC 9470 error code, if any."""

    error: ClassVar[str | None] = None
    status: ClassVar[int] = 401

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


class TokenMissing(GuardRefusal):
    """No bearer token was presented (RFC 6750 §3.1: answer without an error code)."""

    error = None
    status = 401


class InvalidRequest(GuardRefusal):
    error = "invalid_request"
    status = 400


class InvalidToken(GuardRefusal):
    error = "invalid_token"
    status = 401


class UnknownKey(InvalidToken):
    """The token names a ``kid`` that is not in the key set; the I/O layer may refetch once."""

    def __init__(self, kid: str) -> None:
        super().__init__("the token is signed with an unknown key")
        self.kid = kid


class InsufficientScope(GuardRefusal):
    error = "insufficient_scope"
    status = 403

    def __init__(self, description: str, scope: frozenset[str]) -> None:
        super().__init__(description)
        self.scope = scope


class StepUpRequired(GuardRefusal):
    """RFC 9470 §3: the user must authenticate again (more recently, more strongly, or for this
    very action)."""

    error = "insufficient_user_authentication"
    status = 401

    def __init__(self, step_up: StepUp) -> None:
        super().__init__(step_up.description)
        self.step_up = step_up


class ProviderUnavailable(GuardRefusal):
    """The issuer's metadata or keys could not be fetched; the token could not be judged."""

    error = None
    status = 503


class PolicyError(ValueError):
    """A policy catalog is malformed; the message names the action and the key."""


class UnknownAction(LookupError):
    """An action name that is not in the catalog (a programming error, not a refusal)."""
