"""Protocol errors, one class per error code.

Codes come from RFC 6749 §4.1.2.1 and §5.2 (authorization and token endpoints), RFC 6750 §3.1
(bearer tokens), RFC 7009 §2.2.1 (revocation), OpenID Connect Core 1.0 §3.1.2.6 (``login_required``
and friends) and OpenID Connect Unmet Authentication Requirements 1.0
(``unmet_authentication_requirements``). Raising the class is the only way to produce a code, so a
misspelt code cannot reach the wire.
"""

from __future__ import annotations

import re
from typing import ClassVar

# RFC 6749 §5.2: error_description is limited to printable ASCII without '"' and '\'.
_UNSAFE_DESCRIPTION = re.compile(r"[^\x20-\x21\x23-\x5b\x5d-\x7e]")


def safe_description(text: str) -> str:
    return _UNSAFE_DESCRIPTION.sub("?", text)[:300]


class OAuthError(Exception):
    """A protocol error with its wire code, HTTP status and a safe description."""

    error: ClassVar[str] = "server_error"
    status_code: ClassVar[int] = 400

    def __init__(self, description: str = "") -> None:
        super().__init__(description)
        self.description = safe_description(description)

    def to_dict(self) -> dict[str, str]:
        body = {"error": self.error}
        if self.description:
            body["error_description"] = self.description
        return body


class InvalidRequest(OAuthError):
    error = "invalid_request"


class InvalidClient(OAuthError):
    error = "invalid_client"
    status_code = 401


class InvalidGrant(OAuthError):
    error = "invalid_grant"


class UnauthorizedClient(OAuthError):
    error = "unauthorized_client"


class UnsupportedGrantType(OAuthError):
    error = "unsupported_grant_type"


class UnsupportedResponseType(OAuthError):
    error = "unsupported_response_type"


class InvalidScope(OAuthError):
    error = "invalid_scope"


class AccessDenied(OAuthError):
    error = "access_denied"
    status_code = 403


class UnsupportedTokenType(OAuthError):
    error = "unsupported_token_type"


class InvalidToken(OAuthError):
    """RFC 6750 §3.1: the bearer token is missing, expired, revoked or malformed."""

    error = "invalid_token"
    status_code = 401


class LoginRequired(OAuthError):
    error = "login_required"


class InteractionRequired(OAuthError):
    error = "interaction_required"


class ConsentRequired(OAuthError):
    error = "consent_required"


class RequestNotSupported(OAuthError):
    error = "request_not_supported"


class RequestUriNotSupported(OAuthError):
    error = "request_uri_not_supported"


class RegistrationNotSupported(OAuthError):
    error = "registration_not_supported"


class InvalidAuthorizationDetails(OAuthError):
    """RFC 9396 §5: ``authorization_details`` is malformed, of an unknown type, or names an
    action the provider does not know."""

    error = "invalid_authorization_details"


class UnmetAuthenticationRequirements(OAuthError):
    error = "unmet_authentication_requirements"


class TemporarilyUnavailable(OAuthError):
    error = "temporarily_unavailable"
    status_code = 503


class ServerError(OAuthError):
    error = "server_error"
    status_code = 500
