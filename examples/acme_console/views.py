"""The console's pages: sign in, browse projects, and three sensitive actions behind the guard.

Browsing needs only a signed-in session. The three actions of ``actions.toml`` go through
:class:`~acme_console.gate.Gate`, which asks ``freshid_guard`` and, when the proof is not good
enough, sends the user to FreshID and back:

* **reveal an API key** (GET): back to the same page, which then shows the key;
* **change billing details** (POST): the submitted form is kept server-side and the user comes
  back to a confirm page that posts it again, with a CSRF token; nothing changes on a GET;
* **delete the account** (POST, action-bound): back to a confirm page; the proof, made for this
  deletion alone, is used up by it.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from freshid_guard import Allowed
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from .errors import ConsoleError
from .gate import Gate
from .oidc import FreshIDClient
from .pages import Pages
from .session import AcmeSession, SignedInUser
from .store import (
    PLANS,
    Account,
    ActivityLog,
    Billing,
    Project,
    ServerSession,
    SessionStore,
    Workspaces,
)
from .wording import age, ago, duration, methods_text, proof_method, requirement, utc_text

__all__ = ["Console"]

logger = logging.getLogger(__name__)

REVEAL = "api_key.reveal"
BILLING = "billing.update"
DELETE = "account.delete"

NOTICES = {
    "billing_updated": "Your billing details were saved.",
    "account_deleted": "Your Acme account was deleted.",
    "account_created": "Your new Acme account is ready.",
}
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s]+")


def _see_other(url: str) -> RedirectResponse:
    """303: the next request is always a GET, whatever method led here."""
    return RedirectResponse(url, status_code=303)


@dataclass(frozen=True)
class Current:
    """The signed-in user, both halves of their session, and their Acme account."""

    session: AcmeSession
    user: SignedInUser
    server: ServerSession
    account: Account


class Console:
    """Request handlers sharing the stores, the gate, the renderer and a clock."""

    def __init__(
        self,
        *,
        client: FreshIDClient,
        gate: Gate,
        pages: Pages,
        sessions: SessionStore,
        workspaces: Workspaces,
        activity: ActivityLog,
        clock: Callable[[], float],
    ) -> None:
        self.client = client
        self.gate = gate
        self.pages = pages
        self.sessions = sessions
        self.workspaces = workspaces
        self.activity = activity
        self.clock = clock

    def _now(self) -> int:
        return int(self.clock())

    # --- who is asking ----------------------------------------------------------------------

    def _current(self, request: Request) -> Current | None:
        session = AcmeSession(request.session)
        user = session.user()
        if user is None:
            return None
        server = self.sessions.get(session.server_key(), user.sub, self.clock())
        if server is None:  # the server half expired or the console restarted: signed out
            session.clear()
            return None
        account = self.workspaces.open(user.sub, user.email, self._now())
        return Current(session, user, server, account)

    def _signed_in(self, request: Request, come_back: str) -> Current | Response:
        """The current user, or a redirect to sign in that comes back to ``come_back``."""
        current = self._current(request)
        if current is None:
            AcmeSession(request.session).set_return_to(come_back)
            return _see_other("/login")
        return current

    async def _form(self, request: Request, current: Current) -> FormData:
        """The posted form, after the CSRF check (OWASP ASVS 5.0 §3.5.1)."""
        form = await request.form()
        if not current.session.csrf_ok(form.get("csrf_token")):
            raise ConsoleError("csrf")
        return form

    def _render(
        self, request: Request, current: Current, name: str, context: dict[str, object]
    ) -> Response:
        notice = current.session.take_notice()
        return self.pages.render(request, name, {"notice": NOTICES.get(notice or ""), **context})

    # --- home: welcome or dashboard ---------------------------------------------------------

    async def home(self, request: Request) -> Response:
        session = AcmeSession(request.session)
        just_signed_out = session.take_logout_state(request.query_params.get("state"))
        current = self._current(request)
        if current is None:
            levels = [self.gate.policy(a) for a in (REVEAL, BILLING, DELETE)]
            return self.pages.render(
                request,
                "welcome.html",
                {
                    "just_signed_out": just_signed_out,
                    "levels": [(p.label, requirement(p)) for p in levels],
                },
                signed_in=False,
            )
        statuses = [await self.gate.status(current.server, a) for a in (REVEAL, BILLING, DELETE)]
        context: dict[str, object] = {
            "account": current.account,
            "statuses": statuses,
            "deletion": None,
        }
        deletion = next(
            (e for e in self.activity.for_user(current.user.sub) if e.action == DELETE), None
        )
        if current.account.deleted_at is not None and deletion is not None:
            context.update(
                deletion=deletion,
                deletion_method=proof_method(deletion.amr),
                deletion_when=utc_text(deletion.decided_at),
                deletion_proof=utc_text(deletion.auth_time),
            )
        return self._render(request, current, "dashboard.html", context)

    # --- projects and API keys --------------------------------------------------------------

    def _project(self, request: Request, current: Current) -> Project:
        project = current.account.project(str(request.path_params["project_id"]))
        if project is None:
            raise ConsoleError("not_found")
        return project

    async def project(self, request: Request) -> Response:
        current = self._signed_in(request, request.url.path)
        if isinstance(current, Response):
            return current
        project = self._project(request, current)
        status = await self.gate.status(current.server, REVEAL)
        return self._render(
            request, current, "project.html", {"project": project, "status": status}
        )

    async def reveal_key(self, request: Request) -> Response:
        """The first sensitive action: an API key, shown only to a fresh enough proof."""
        path = request.url.path
        current = self._signed_in(request, path)
        if isinstance(current, Response):
            return current
        project = self._project(request, current)
        key = project.key(str(request.path_params["key_id"]))
        if key is None:
            raise ConsoleError("not_found")
        allowed = await self.gate.require(current.user, current.server, REVEAL, return_to=path)
        if not isinstance(allowed, Allowed):
            return allowed
        return self._render(
            request,
            current,
            "api_key.html",
            {"project": project, "key": key, "proof_age": ago(allowed.proof_age)},
        )

    # --- billing ----------------------------------------------------------------------------

    def _billing_page(
        self,
        request: Request,
        current: Current,
        name: str,
        context: dict[str, object],
        status_code: int = 200,
    ) -> Response:
        response = self._render(request, current, name, {"plans": PLANS, **context})
        response.status_code = status_code
        return response

    async def billing(self, request: Request) -> Response:
        current = self._signed_in(request, "/billing")
        if isinstance(current, Response):
            return current
        if current.account.billing is None:
            return _see_other("/")
        billing = current.account.billing
        return self._billing_page(
            request,
            current,
            "billing.html",
            {
                "billing": billing,
                "form": {"email": billing.email, "plan": billing.plan},
                "errors": {},
                "status": await self.gate.status(current.server, BILLING),
            },
        )

    async def update_billing(self, request: Request) -> Response:
        """The second sensitive action, a POST: validated first (a typo costs no proof), then
        decided by the guard; a step-up comes back to ``/billing/confirm``."""
        current = self._signed_in(request, "/billing")
        if isinstance(current, Response):
            return current
        form = await self._form(request, current)
        if current.account.billing is None:
            return _see_other("/")
        fields = {"email": str(form.get("email", "")).strip(), "plan": str(form.get("plan", ""))}
        errors: dict[str, str] = {}
        if len(fields["email"]) > 254 or not _EMAIL.fullmatch(fields["email"]):
            errors["email"] = "Enter an email address like name@example.com."
        if fields["plan"] not in {p.id for p in PLANS}:
            errors["plan"] = "Choose one of the plans."
        if errors:
            return self._billing_page(
                request,
                current,
                "billing.html",
                {
                    "billing": current.account.billing,
                    "form": fields,
                    "errors": errors,
                    "status": await self.gate.status(current.server, BILLING),
                },
                status_code=400,
            )
        current.server.drafts[BILLING] = fields
        allowed = await self.gate.require(
            current.user, current.server, BILLING, return_to="/billing/confirm"
        )
        if not isinstance(allowed, Allowed):
            return allowed
        self.workspaces.update_billing(current.user.sub, Billing(fields["email"], fields["plan"]))
        current.server.drafts.pop(BILLING, None)
        current.session.set_notice("billing_updated")
        return _see_other("/billing")

    async def confirm_billing(self, request: Request) -> Response:
        """Back from FreshID: show what will be saved and post it again (never save on a GET)."""
        current = self._signed_in(request, "/billing")
        if isinstance(current, Response):
            return current
        draft = current.server.drafts.get(BILLING)
        if draft is None or current.account.billing is None:
            return _see_other("/billing")
        plan = next(p for p in PLANS if p.id == draft["plan"])
        return self._render(
            request,
            current,
            "billing_confirm.html",
            {
                "draft": draft,
                "plan": plan,
                "status": await self.gate.status(current.server, BILLING),
            },
        )

    # --- the danger zone --------------------------------------------------------------------

    async def danger_zone(self, request: Request) -> Response:
        current = self._signed_in(request, "/account/delete")
        if isinstance(current, Response):
            return current
        if current.account.deleted_at is not None:
            return _see_other("/")
        return await self._danger_page(request, current, error=None)

    async def _danger_page(
        self, request: Request, current: Current, error: str | None, status_code: int = 200
    ) -> Response:
        response = self._render(
            request,
            current,
            "danger.html",
            {
                "account": current.account,
                "key_count": sum(len(p.keys) for p in current.account.projects),
                "status": await self.gate.status(current.server, DELETE),
                "error": error,
            },
        )
        response.status_code = status_code
        return response

    async def delete_account(self, request: Request) -> Response:
        """The third sensitive action, action-bound: only a proof made for this deletion, used
        once, allows it; a step-up comes back to ``/account/delete/confirm``."""
        current = self._signed_in(request, "/account/delete")
        if isinstance(current, Response):
            return current
        form = await self._form(request, current)
        if current.account.deleted_at is not None:
            return _see_other("/")
        if form.get("understood") != "yes":
            error = "Tick the box to confirm you understand what is deleted."
            return await self._danger_page(request, current, error, status_code=400)
        allowed = await self.gate.require(
            current.user, current.server, DELETE, return_to="/account/delete/confirm"
        )
        if not isinstance(allowed, Allowed):
            return allowed
        self.workspaces.delete(current.user.sub, self._now())
        current.server.drafts.clear()
        current.session.set_notice("account_deleted")
        logger.info("account deleted under proof %s", allowed.token.jti)
        return _see_other("/")

    async def confirm_delete(self, request: Request) -> Response:
        current = self._signed_in(request, "/account/delete")
        if isinstance(current, Response):
            return current
        if current.account.deleted_at is not None:
            return _see_other("/")
        return self._render(
            request,
            current,
            "delete_confirm.html",
            {
                "account": current.account,
                "key_count": sum(len(p.keys) for p in current.account.projects),
                "method": methods_text(current.user.amr),
                "window": duration(self.gate.policy(DELETE).max_age),
            },
        )

    async def new_account(self, request: Request) -> Response:
        """After a deletion: start again with a fresh, seeded account (no proof needed)."""
        current = self._signed_in(request, "/")
        if isinstance(current, Response):
            return current
        await self._form(request, current)
        if current.account.deleted_at is not None:
            self.workspaces.recreate(current.user.sub, current.user.email, self._now())
            current.session.set_notice("account_created")
        return _see_other("/")

    # --- activity ---------------------------------------------------------------------------

    async def activity_page(self, request: Request) -> Response:
        """Which re-verification covered which operation: the guard's evidence, newest first."""
        current = self._signed_in(request, "/activity")
        if isinstance(current, Response):
            return current
        rows = [
            {
                "evidence": e,
                "label": self.gate.policy(e.action).label,
                "when": utc_text(e.decided_at),
                "auth_time": utc_text(e.auth_time),
                "proof_age": age(e.proof_age),
                "method": methods_text(e.amr),
            }
            for e in self.activity.for_user(current.user.sub)
        ]
        return self._render(request, current, "activity.html", {"rows": rows})

    # --- sign-in, step-up callback, sign-out ------------------------------------------------

    async def login(self, request: Request) -> Response:
        """Start the authorization code flow (Authlib adds state, nonce and PKCE)."""
        if self._current(request) is not None:
            return _see_other("/")
        return await self.client.authorize_redirect(request)

    async def callback(self, request: Request) -> Response:
        """Finish a step-up the guard started, or a sign-in; then go back to where the user was."""
        session = AcmeSession(request.session)
        current = self._current(request)
        if current is not None and self.gate.is_step_up(request, current.server):
            try:
                back_to = await self.gate.complete(request, session, current.user, current.server)
            except ConsoleError as exc:
                if exc.code == "step_up_other_account":  # the cookie was cleared: drop the rest
                    self.sessions.drop(current.server.key)
                raise
            return _see_other(back_to)
        result = await self.client.complete_sign_in(request)
        try:
            user = SignedInUser.from_claims(result.claims)
        except ValueError as exc:
            raise ConsoleError("invalid_id_token", "The ID token has no subject.") from exc
        if current is not None:
            self.sessions.drop(current.server.key)
        server = self.sessions.create(user.sub, self.clock())
        server.access_token = result.access_token
        session.sign_in(user, result.id_token, server.key)
        self.workspaces.open(user.sub, user.email, self._now())
        logger.info("sign-in completed")
        return _see_other(session.take_return_to())

    async def logout(self, request: Request) -> Response:
        """RP-initiated logout: forget the local session, then end the provider's session too."""
        session = AcmeSession(request.session)
        async with request.form() as form:
            submitted = form.get("csrf_token")
        if not session.csrf_ok(submitted):
            raise ConsoleError("csrf")
        id_token = session.id_token()
        self.sessions.drop(session.server_key())
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
