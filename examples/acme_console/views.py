"""The console's pages: sign in, show the age of the proof, reveal a secret only to fresh proof.

The one rule the demo exists to show: "Reveal API key" needs a sign-in younger than
``reveal_max_age``. When the proof is older, the console asks FreshID for a new one with
``max_age`` and then *checks the returned ``auth_time`` itself*: a relying party must never
assume the provider honoured ``max_age`` (OIDC Core §3.1.2.1 makes checking it the client's job).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from datetime import UTC, datetime

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from .config import AcmeConfig
from .errors import ConsoleError
from .freshness import format_duration, needs_step_up, proof_age_seconds, proof_age_text
from .oidc import FreshIDClient
from .pages import Pages
from .session import AcmeSession, SignedInUser

__all__ = ["Console"]

logger = logging.getLogger(__name__)

API_KEY_PATH = "/api-key"


def _see_other(url: str) -> RedirectResponse:
    """303: the next request is always a GET, whatever method led here."""
    return RedirectResponse(url, status_code=303)


def _utc(timestamp: int) -> datetime:
    return datetime.fromtimestamp(timestamp, tz=UTC)


class Console:
    """Request handlers sharing the configuration, the OIDC client, the renderer and a clock."""

    def __init__(
        self,
        config: AcmeConfig,
        client: FreshIDClient,
        pages: Pages,
        clock: Callable[[], float],
    ) -> None:
        self.config = config
        self.client = client
        self.pages = pages
        self.clock = clock

    async def home(self, request: Request) -> Response:
        """Signed out: the sign-in button. Signed in: who, which session, and how fresh."""
        session = AcmeSession(request.session)
        just_signed_out = session.take_logout_state(request.query_params.get("state"))
        user = session.user()
        if user is None:
            return self.pages.render(request, "home.html", {"just_signed_out": just_signed_out})
        now = self.clock()
        context: dict[str, object] = {
            "just_signed_out": False,
            "proof_age": None,
            "auth_time_iso": None,
            "auth_time_display": None,
            "stale": needs_step_up(user.auth_time, now, self.config.reveal_max_age),
            "reveal_window": format_duration(self.config.reveal_max_age),
        }
        if user.auth_time is not None:
            when = _utc(user.auth_time)
            # Made only of integers and fixed words, so there is nothing to escape; marking it
            # safe keeps the apostrophe literal in the HTML ("it's", not "it&#39;s").
            context["proof_age"] = Markup(proof_age_text(user.auth_time, now))  # noqa: S704
            context["auth_time_iso"] = when.isoformat()
            context["auth_time_display"] = when.strftime("%Y-%m-%d %H:%M:%S UTC")
        return self.pages.render(request, "home.html", context)

    async def login(self, request: Request) -> Response:
        """Start the authorization code flow (Authlib adds state, nonce and PKCE)."""
        session = AcmeSession(request.session)
        if session.user() is not None:
            return _see_other("/")
        return await self.client.authorize_redirect(request)

    async def callback(self, request: Request) -> Response:
        """Finish a sign-in or a step-up, then go back to what the user was doing."""
        session = AcmeSession(request.session)
        pending = session.take_pending()
        result = await self.client.complete_sign_in(request)
        try:
            user = SignedInUser.from_claims(result.claims)
        except ValueError as exc:
            raise ConsoleError("invalid_id_token", "The ID token has no subject.") from exc

        if pending is not None and pending.max_age is not None:
            previous = session.user()
            if previous is not None and previous.sub != user.sub:
                logger.warning("step-up completed for a different subject; signing out")
                session.clear()
                raise ConsoleError("step_up_other_account")
            session.sign_in(user, result.id_token)
            if needs_step_up(user.auth_time, self.clock(), pending.max_age):
                # The token is valid, so the session keeps it, but it is no proof of freshness.
                logger.warning("step-up returned an auth_time older than max_age")
                raise ConsoleError("step_up_not_fresh")
            logger.info("step-up completed for %s", pending.path)
            return _see_other(pending.path)

        session.sign_in(user, result.id_token)
        logger.info("sign-in completed")
        return _see_other(pending.path if pending is not None else "/")

    async def api_key(self, request: Request) -> Response:
        """The sensitive action: shown only to a proof younger than ``reveal_max_age``."""
        session = AcmeSession(request.session)
        user = session.user()
        if user is None:
            session.set_pending(API_KEY_PATH, max_age=None)
            return _see_other("/login")
        now = self.clock()
        max_age = self.config.reveal_max_age
        if user.auth_time is None or needs_step_up(user.auth_time, now, max_age):
            session.set_pending(API_KEY_PATH, max_age=max_age)
            return await self.client.authorize_redirect(
                request, max_age=max_age, login_hint=user.email
            )
        age = format_duration(proof_age_seconds(user.auth_time, now))
        return self.pages.render(
            request,
            "api_key.html",
            {"api_key": session.api_key(self.config.session_secret), "proof_age": age},
        )

    async def logout(self, request: Request) -> Response:
        """RP-initiated logout: forget the local session, then end the provider's session too."""
        session = AcmeSession(request.session)
        async with request.form() as form:
            submitted = form.get("csrf_token")
        if not session.csrf_ok(submitted):
            raise ConsoleError("csrf")
        id_token = session.id_token()
        session.clear()
        if id_token is None:
            return _see_other("/")
        state = secrets.token_urlsafe(16)
        try:
            url = await self.client.end_session_url(id_token_hint=id_token, state=state)
        except ConsoleError as exc:
            raise ConsoleError("logout_incomplete") from exc
        if url is None:
            return _see_other("/")
        session.remember_logout_state(state)
        return _see_other(url)
