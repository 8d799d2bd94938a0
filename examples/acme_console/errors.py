"""Every way a request can fail in front of the user, and what the error page says for each.

Views raise :class:`ConsoleError` with a short code; one table turns the code into a title, a
sentence and an HTTP status, so that no failure (a cancelled sign-in, an unreachable provider, a
token that does not verify) ever turns into a bare 500.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ConsoleError", "Problem", "problem_for"]

_MAX_SHOWN_CHARS = 300


@dataclass(frozen=True)
class Problem:
    """What the error page shows for one error code."""

    title: str
    message: str
    status_code: int
    account_link: bool = False
    """Offer a link to the user's FreshID account page (to add a sign-in method)."""


_SIGN_IN_REFUSED = Problem(
    "Sign-in did not complete",
    "FreshID could not complete the sign-in. You can go back and try again.",
    400,
)
_BAD_REQUEST = Problem(
    "Sign-in request rejected",
    "FreshID rejected the sign-in request Acme Console sent. Please tell the Acme Console team.",
    400,
)
_PROVIDER_DOWN = Problem(
    "FreshID is unavailable",
    "Acme Console could not reach FreshID. Please try again in a moment.",
    502,
)

_PROBLEMS: dict[str, Problem] = {
    # Errors the provider returns to the redirect URI (OIDC Core §3.1.2.6, RFC 6749 §4.1.2.1).
    "access_denied": Problem(
        "Sign-in cancelled",
        "You cancelled the sign-in, or FreshID declined it. Nothing was changed.",
        400,
    ),
    "login_required": _SIGN_IN_REFUSED,
    "interaction_required": _SIGN_IN_REFUSED,
    "consent_required": _SIGN_IN_REFUSED,
    "account_selection_required": _SIGN_IN_REFUSED,
    "invalid_request": _BAD_REQUEST,
    "unauthorized_client": _BAD_REQUEST,
    "unsupported_response_type": _BAD_REQUEST,
    "invalid_scope": _BAD_REQUEST,
    "invalid_client": _BAD_REQUEST,
    "invalid_authorization_details": _BAD_REQUEST,
    "unmet_authentication_requirements": Problem(
        "A passkey or authenticator app is needed",
        "This action needs a sign-in method your FreshID account does not have yet. Add a "
        "passkey or an authenticator app on your FreshID account page, then try again. "
        "Nothing was changed.",
        403,
        account_link=True,
    ),
    "invalid_grant": Problem(
        "Sign-in link already used",
        "This sign-in response was already used or has expired. Please sign in again.",
        400,
    ),
    "server_error": _PROVIDER_DOWN,
    "temporarily_unavailable": _PROVIDER_DOWN,
    # Errors Acme Console detects itself.
    "provider_unavailable": _PROVIDER_DOWN,
    "mismatching_state": Problem(
        "Sign-in could not be matched",
        "This sign-in response does not belong to a sign-in started in this browser, or it "
        "has expired. Please start again.",
        400,
    ),
    "issuer_mismatch": Problem(
        "Sign-in came from the wrong provider",
        "The sign-in response does not come from the FreshID this console trusts, so it was "
        "ignored.",
        400,
    ),
    "invalid_id_token": Problem(
        "Sign-in could not be verified",
        "FreshID's answer could not be verified, so Acme Console did not sign you in.",
        502,
    ),
    "invalid_access_token": Problem(
        "Sign-in could not be verified",
        "FreshID's access token could not be verified, so Acme Console did not go ahead.",
        502,
    ),
    "step_up_not_fresh": Problem(
        "Fresh proof missing",
        "FreshID did not ask you to prove it's you in the way this action needs, so Acme "
        "Console did not go ahead. Nothing was changed.",
        403,
    ),
    "step_up_other_account": Problem(
        "Different account",
        "You proved it's you as a different account than the one signed in to Acme Console. "
        "For safety you have been signed out of Acme Console; nothing was changed.",
        403,
    ),
    "not_found": Problem("Page not found", "There is no such page in Acme Console.", 404),
    "csrf": Problem(
        "Request expired",
        "This form has expired or did not come from Acme Console. Please go back, reload the "
        "page and try again.",
        403,
    ),
    "logout_incomplete": Problem(
        "Signed out of Acme Console only",
        "You are signed out of Acme Console, but FreshID could not be reached to end your "
        "session there.",
        502,
    ),
}


def problem_for(code: str) -> Problem:
    """The page for ``code``; unknown codes (providers may send their own) get a generic one."""
    return _PROBLEMS.get(code, _SIGN_IN_REFUSED)


def _shown(value: str | None) -> str | None:
    """Bound what a remote party can make us display; templates escape it, this caps its size."""
    if not value:
        return None
    return value if len(value) <= _MAX_SHOWN_CHARS else value[:_MAX_SHOWN_CHARS] + "…"


class ConsoleError(Exception):
    """A failure the user must see explained; ``description`` adds detail (often the provider's)."""

    def __init__(self, code: str, description: str | None = None) -> None:
        super().__init__(code)
        self.code = _shown(code) or "unknown_error"
        self.description = _shown(description)

    @property
    def problem(self) -> Problem:
        """The title, message and status for this error's code."""
        return problem_for(self.code)
