"""The operator's dashboard at ``/admin/``: how fresh the trust behind sensitive actions is.

Sign-in is FreshID's own (the hosted pages, the session cookie); the user must hold the admin
role (``admin_users``, granted with ``freshid admins grant``). FreshID applies its freshness rules
to its own operators (OWASP ASVS 5.0 §7.5.1): looking needs a proof younger than
:data:`ADMIN_POLICIES` ``admin.view`` (12 hours), and every change — signing out a user's session,
re-enabling a webhook endpoint — needs one younger than ``admin.change`` (5 minutes), made
through "Confirm it's you" without losing the session. Changes are CSRF-protected POSTs whose
freshness is checked again; each writes its event (``session.revoked`` with reason ``admin``,
``webhook_endpoint.enabled``).

The page shows, for a selectable period (24 h, 7 d, 30 d): re-authentications by method and
outcome, the stale-trust picture per sensitive action (allowed on a fresh proof, needed a step-up,
step-up failed, abandoned) with the distribution of proof ages at the moment of the action, live
sessions and the age of their proof, and the webhook endpoints (:mod:`freshid.admin.stats`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape
from sqlalchemy.engine import Connection
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from freshid.admin import charts, stats
from freshid.events import webhooks as hooks
from freshid.freshness import Allow, AuthRequest, Deny, decide
from freshid.freshness.policy import ActionPolicy
from freshid.protocol.authorize import flow
from freshid.provider import Provider
from freshid.sessions import cookies
from freshid.storage import sessions as session_store
from freshid.storage.tables_events import admin_users
from freshid.ui import forms, interaction
from freshid.ui.pages import error_page
from freshid.ui.reasons import duration

log = logging.getLogger("freshid.admin")

ADMIN_POLICIES: dict[str, ActionPolicy] = {
    p.action: p
    for p in (
        ActionPolicy("admin.view", "open the admin dashboard", max_age=12 * 3600),
        ActionPolicy("admin.change", "change something as an administrator", max_age=300),
    )
}

_UI_TEMPLATES = Path(__file__).resolve().parent.parent / "ui" / "templates"
_env = Environment(
    loader=ChoiceLoader(
        [FileSystemLoader(Path(__file__).parent / "templates"), FileSystemLoader(_UI_TEMPLATES)]
    ),
    autoescape=select_autoescape(["html"]),
    auto_reload=False,
)


def render(template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    html = _env.get_template(template).render(
        static_url="/static", product_name="FreshID", **context
    )
    return HTMLResponse(html, status_code=status_code, headers={"Cache-Control": "no-store"})


@dataclass(frozen=True)
class Admin:
    provider: Provider
    signed_in: flow.SignedIn
    browser: str

    @property
    def csrf(self) -> str:
        return cookies.csrf_token(self.browser)


def is_admin(conn: Connection, user_id: str) -> bool:
    found = conn.execute(sa.select(admin_users.c.user_id).where(admin_users.c.user_id == user_id))
    return found.first() is not None


def grant(conn: Connection, user_id: str, now: int) -> bool:
    if is_admin(conn, user_id):
        return False
    conn.execute(admin_users.insert().values(user_id=user_id, granted_at=now))
    return True


def revoke(conn: Connection, user_id: str) -> bool:
    return bool(conn.execute(admin_users.delete().where(admin_users.c.user_id == user_id)).rowcount)


async def _admin(request: Request, action: str, return_to: str) -> Admin | Response:
    """The signed-in administrator, if their proof satisfies ``action``; else the way there."""
    provider: Provider = request.app.state.provider
    policy = provider.policies[action]
    session_cookie = cookies.read(request, cookies.SESSION, provider.settings)

    def load(conn: Connection) -> tuple[flow.SignedIn | None, bool]:
        signed_in = flow.current_session(conn, session_cookie, provider)
        return signed_in, signed_in is not None and is_admin(conn, signed_in.user.id)

    signed_in, admin = await provider.read(load)
    browser = cookies.read(request, cookies.BROWSER, provider.settings)
    if signed_in is None or browser is None:
        return await interaction.start_internal(provider, request, policy, return_to)
    if not admin:
        return error_page(
            "Administrators only",
            "Your account does not have the admin role. An operator can grant it with "
            "“freshid admins grant”.",
            None,
            403,
        )
    outcome = decide(
        signed_in.session.state(),
        AuthRequest(),
        provider.now(),
        policy=policy,
        offers=signed_in.offers,
    )
    if isinstance(outcome, Deny):
        return error_page("This action cannot be confirmed", outcome.description, None, 403)
    if not isinstance(outcome, Allow):
        return await interaction.start_internal(provider, request, policy, return_to)
    return Admin(provider, signed_in, browser)


def _period(request: Request) -> str:
    period = request.query_params.get("period", "7d")
    return period if period in stats.PERIODS else "7d"


async def show(request: Request) -> Response:
    period = _period(request)
    admin = await _admin(request, "admin.view", f"/admin/?period={period}")
    if isinstance(admin, Response):
        return admin
    provider = admin.provider
    now = provider.now()
    data = await provider.read(
        lambda conn: stats.overview(
            conn, now, stats.PERIODS[period], provider.settings.session_idle_ttl
        )
    )
    endpoints = await provider.read(hooks.all_endpoints)
    methods_chart = charts.stacked(
        "Re-authentications by method: succeeded and failed",
        [
            (m, [("succeeded", c["succeeded"]), ("failed", c["failed"])])
            for m, c in data.by_method.items()
        ],
    )
    actions = [
        {
            "action": a.action,
            "fresh": a.allowed_fresh,
            "step_ups": a.step_ups,
            "failed": a.failed,
            "abandoned": a.abandoned,
            "chart": charts.bars(f"Proof age when {a.action} was done", stats.histogram(a.ages)),
        }
        for a in data.actions
    ]
    trust_chart = charts.stacked(
        "Sensitive actions: allowed on a fresh proof, needed a step-up, abandoned",
        [
            (
                a.action,
                [
                    ("fresh", a.allowed_fresh),
                    ("step_up", a.step_ups),
                    ("failed", a.failed),
                    ("abandoned", a.abandoned),
                ],
            )
            for a in data.actions
        ],
    )
    return render(
        "admin_dashboard.html",
        csrf_token=admin.csrf,
        user_email=admin.signed_in.user.email,
        period=period,
        periods=list(stats.PERIODS),
        methods_chart=methods_chart if data.by_method else None,
        trust_chart=trust_chart if data.actions else None,
        actions=actions,
        recent=[
            {
                "when": f"{duration(now - r.at)} ago",
                "user": r.user,
                "method": r.method,
                "action": r.action or "—",
                "outcome": r.outcome,
                "detail": r.detail,
            }
            for r in data.recent
        ],
        sessions_chart=charts.bars("Live sessions by proof age", data.session_ages),
        sessions=[
            {
                "id": s.id,
                "short": s.id[:8],
                "user": s.user,
                "proof_age": duration(s.proof_age),
                "last_seen": f"{duration(s.last_seen_age)} ago",
                "user_agent": (s.user_agent or "")[:60],
                "revoke_url": f"/admin/sessions/{s.id}/revoke",
                "current": s.id == admin.signed_in.session.id,
            }
            for s in data.sessions[:50]
        ],
        session_count=len(data.sessions),
        endpoints=[
            {
                "id": e.id,
                "description": e.description or e.id,
                "types": ", ".join(e.event_types) or "every event",
                "enabled": e.enabled,
                "disabled_reason": e.disabled_reason,
                "failures": e.consecutive_failures,
                "enable_url": f"/admin/webhooks/{e.id}/enable",
            }
            for e in endpoints
        ],
        truncated=data.truncated,
        proof_age=duration(now - admin.signed_in.session.auth_time),
        notice=request.query_params.get("notice"),
    )


def _confirm(admin: Admin, title: str, message: str, url: str, button: str) -> Response:
    return render(
        "confirm.html",
        csrf_token=admin.csrf,
        title=title,
        message=message,
        action_url=url,
        button=button,
        cancel_url="/admin/",
    )


async def _change(request: Request, path: str) -> Admin | Response:
    admin = await _admin(request, "admin.change", path)
    if isinstance(admin, Response) or request.method == "GET":
        return admin
    form = await forms.read(request, admin.browser)
    if isinstance(form, Response):
        return form
    return admin


async def revoke_session(request: Request) -> Response:
    sid = str(request.path_params["sid"])[:64]
    path = f"/admin/sessions/{sid}/revoke"
    admin = await _change(request, path)
    if isinstance(admin, Response):
        return admin
    if request.method == "GET":
        return _confirm(
            admin,
            "Sign out this session?",
            f"Session {sid[:8]}… ends now; whoever uses it must sign in again.",
            path,
            "Sign it out",
        )
    now = admin.provider.now()

    def run(conn: Connection) -> bool:
        target = session_store.by_id(conn, sid)
        if target is None:
            return False
        return session_store.revoke(conn, sid, "admin", now, target.user_id)

    done = await admin.provider.write(run)
    notice = "session_revoked" if done else "nothing_changed"
    return RedirectResponse(f"/admin/?notice={notice}", status_code=303)


async def enable_endpoint(request: Request) -> Response:
    eid = str(request.path_params["eid"])[:32]
    path = f"/admin/webhooks/{eid}/enable"
    admin = await _change(request, path)
    if isinstance(admin, Response):
        return admin
    if request.method == "GET":
        return _confirm(
            admin,
            "Re-enable this webhook endpoint?",
            "Its pending deliveries are sent again, starting now.",
            path,
            "Re-enable",
        )
    now = admin.provider.now()
    done = await admin.provider.write(lambda conn: hooks.set_enabled(conn, eid, True, now))
    notice = "endpoint_enabled" if done else "nothing_changed"
    return RedirectResponse(f"/admin/?notice={notice}", status_code=303)


_CSS = (Path(__file__).parent / "static" / "admin.css").read_bytes()


async def stylesheet(request: Request) -> Response:
    return Response(_CSS, media_type="text/css", headers={"Cache-Control": "max-age=3600"})


async def _not_found(request: Request, exc: Exception) -> Response:
    return error_page("Page not found", "There is no such page.", None, 404)


async def _server_error(request: Request, exc: Exception) -> Response:
    # The type only: the text may echo request data.
    log.error("dashboard: unhandled %s on %s", type(exc).__name__, request.url.path)
    return error_page("Something went wrong", "Please try again in a moment.", "server_error", 500)


def create_dashboard(provider: Provider) -> Starlette:
    """The dashboard application; mount it at ``/admin``."""
    for policy in ADMIN_POLICIES.values():
        # An operator's policy file may set its own requirements for these actions.
        provider.policies.setdefault(policy.action, policy)
    app = Starlette(
        routes=[
            Route("/", show),
            Route("/admin.css", stylesheet),
            Route("/sessions/{sid}/revoke", revoke_session, methods=["GET", "POST"]),
            Route("/webhooks/{eid}/enable", enable_endpoint, methods=["GET", "POST"]),
        ],
        exception_handlers={HTTPException: _not_found, Exception: _server_error},
    )
    app.state.provider = provider
    return app
