"""Hosted pages: the interaction (sign in or confirm it's you), "Not you?", and logout.

Every POST carries the per-browser CSRF token and answers with 303 (RFC 9110 §15.4.4) or a page.
Failures show one generic message per form, whatever went wrong, so the pages never reveal whether
an account exists (OWASP ASVS 5.0 V6.3).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from sqlalchemy.engine import Connection
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from freshid.errors import OAuthError
from freshid.events import outbox
from freshid.events.catalog import EventType
from freshid.freshness import Allow, Authenticate, Deny
from freshid.methods.base import CompletedMethod, MethodFailed
from freshid.protocol import params as request_params
from freshid.protocol.authorize import flow
from freshid.protocol.authorize.request import AuthorizationRequest
from freshid.provider import Provider
from freshid.sessions import cookies
from freshid.sessions.model import Continuation, continuation
from freshid.storage import interactions as interaction_store
from freshid.storage import sessions as session_store
from freshid.storage import throttle
from freshid.storage import users as user_store
from freshid.storage.clients import Client
from freshid.storage.interactions import Interaction
from freshid.storage.sessions import RequestContext
from freshid.ui import reasons
from freshid.ui.pages import error_page, render

EXPIRED_TITLE = "This sign-in request has expired"
EXPIRED_TEXT = (
    "It may have been completed already, opened in another browser, or left too long. "
    "Go back to the app and start again."
)


@dataclass(frozen=True)
class Loaded:
    interaction: Interaction
    areq: AuthorizationRequest
    client: Client
    signed_in: flow.SignedIn | None
    browser: str

    @property
    def switching(self) -> bool:
        return bool(self.interaction.params.get("switch_user"))

    @property
    def proved_events(self) -> frozenset[str]:
        """Authentication events completed during this interaction."""
        return frozenset(self.interaction.params.get("events", ()))


def request_context(request: Request, provider: Provider, client_id: str | None) -> RequestContext:
    peer = request.client.host if request.client else None
    ip = peer
    forwarded = request.headers.get("x-forwarded-for")
    if forwarded and peer in provider.settings.trusted_proxies:
        ip = forwarded.split(",")[-1].strip()[:64]
    agent = request.headers.get("user-agent")
    return RequestContext(ip=ip, user_agent=agent[:256] if agent else None, client_id=client_id)


async def _load(provider: Provider, request: Request, iid: str) -> Loaded | Response:
    browser = cookies.read(request, cookies.BROWSER, provider.settings)
    if browser is None or len(iid) > 64:
        return error_page(EXPIRED_TITLE, EXPIRED_TEXT)
    session_cookie = cookies.read(request, cookies.SESSION, provider.settings)
    now = provider.now()

    def load(conn: Connection) -> Loaded | None:
        interaction = interaction_store.load(conn, iid, browser, now)
        if interaction is None:
            return None
        client = flow.find_client(conn, interaction.client_id)
        if client is None:
            return None
        areq = AuthorizationRequest.from_json(interaction.params["request"])
        return Loaded(
            interaction, areq, client, flow.current_session(conn, session_cookie, provider), browser
        )

    loaded = await provider.read(load)
    return loaded if loaded is not None else error_page(EXPIRED_TITLE, EXPIRED_TEXT)


def _page(
    provider: Provider,
    loaded: Loaded,
    outcome: Authenticate,
    error: str | None = None,
    email: str | None = None,
    status_code: int = 200,
) -> Response:
    iid = loaded.interaction.id
    csrf = cookies.csrf_token(loaded.browser)
    if _wants_login(loaded, outcome):
        return render(
            "login.html",
            status_code,
            csrf_token=csrf,
            action_url=f"/interaction/{iid}/password",
            email=email if email is not None else (loaded.areq.login_hint or ""),
            error=error,
            client_name=loaded.client.name,
        )
    assert loaded.signed_in is not None
    age = provider.now() - loaded.signed_in.session.auth_time
    return render(
        "reauth.html",
        status_code,
        csrf_token=csrf,
        action_url=f"/interaction/{iid}/password",
        user_email=loaded.signed_in.user.email,
        client_name=loaded.client.name,
        reason=reasons.explain(outcome, age),
        action_label=None,
        error=error,
        not_you_url=f"/interaction/{iid}/switch",
    )


def _wants_login(loaded: Loaded, outcome: Authenticate) -> bool:
    return loaded.signed_in is None or outcome.new_session or loaded.switching


async def interaction_page(request: Request) -> Response:
    provider: Provider = request.app.state.provider
    loaded = await _load(provider, request, request.path_params["iid"])
    if isinstance(loaded, Response):
        return loaded
    outcome = flow.decide_for(
        provider, loaded.areq, loaded.client, loaded.signed_in, loaded.proved_events
    )
    if isinstance(outcome, Allow | Deny) and not loaded.switching:
        # Signed in elsewhere meanwhile (another tab): finish without asking again.
        return await flow.advance(
            provider,
            request,
            loaded.areq,
            loaded.client,
            loaded.signed_in,
            interaction_id=loaded.interaction.id,
            proved_events=loaded.proved_events,
        )
    if not isinstance(outcome, Authenticate):
        outcome = Authenticate("switch_user", new_session=True)
    return _page(provider, loaded, outcome)


async def _form(request: Request, browser: str) -> request_params.Params | Response:
    try:
        form = await request_params.form(request)
    except OAuthError as exc:
        return error_page("The form could not be read", exc.description, exc.error)
    token = form.get("csrf_token", "")
    if not hmac.compare_digest(token.encode(), cookies.csrf_token(browser).encode()):
        return error_page(
            "This form has expired",
            "Reload the page and try again.",
            "invalid_request",
            status_code=403,
        )
    return form


async def password_submit(request: Request) -> Response:
    provider: Provider = request.app.state.provider
    loaded = await _load(provider, request, request.path_params["iid"])
    if isinstance(loaded, Response):
        return loaded
    form = await _form(request, loaded.browser)
    if isinstance(form, Response):
        return form
    outcome = flow.decide_for(
        provider, loaded.areq, loaded.client, loaded.signed_in, loaded.proved_events
    )
    if not isinstance(outcome, Authenticate):
        outcome = Authenticate("switch_user", new_session=True)
    login = _wants_login(loaded, outcome)
    if login:
        email = user_store.normalise_email(form.get("email", ""))[:320]
    else:
        assert loaded.signed_in is not None
        email = loaded.signed_in.user.email
    secret = form.get("password", "")
    ctx = request_context(request, provider, loaded.client.client_id)
    now = provider.now()
    limits = throttle.Limits(
        provider.settings.throttle_window,
        provider.settings.throttle_per_account_ip,
        provider.settings.throttle_per_ip,
        provider.settings.throttle_per_account,
    )

    def reserve(conn: Connection) -> tuple[user_store.User | None, bool]:
        user = user_store.by_email(conn, email) if email else None
        allowed = throttle.reserve_attempt(
            conn, email, ctx.ip or "", user.id if user else None, now, limits
        )
        return user, allowed

    user, allowed = await provider.write(reserve)
    usable = user if user is not None and not user.disabled else None
    failure: str | None = None
    completed: CompletedMethod | None = None
    if not allowed:
        failure = "throttled"
    else:
        try:
            completed = await provider.password.verify(
                usable.password_hash if usable else None, secret, provider.now()
            )
        except MethodFailed as exc:
            failure = "user_disabled" if user is not None and user.disabled else exc.reason

    if completed is None or usable is None:
        await provider.write(
            lambda conn: outbox.record(
                conn,
                EventType.AUTHENTICATION_FAILED,
                provider.now(),
                user_id=user.id if user else None,
                session_id=loaded.signed_in.session.id if loaded.signed_in and not login else None,
                client_id=ctx.client_id,
                method="password",
                reason=failure or "invalid_password",
                ip=ctx.ip,
                user_agent=ctx.user_agent,
                reauthentication=not login,
            )
        )
        if failure == "throttled":
            message, status = "Too many attempts. Wait a few minutes, then try again.", 429
        elif login:
            message, status = "The email address or password is incorrect.", 401
        else:
            message, status = "That password is incorrect.", 401
        return _page(provider, loaded, outcome, error=message, email=email, status_code=status)

    signed_in = await _record_success(provider, loaded, usable, completed, ctx)
    event_id = signed_in[0].session.event_id
    response = await flow.advance(
        provider,
        request,
        loaded.areq,
        loaded.client,
        signed_in[0],
        interaction_id=loaded.interaction.id,
        proved_events=loaded.proved_events | ({event_id} if event_id else set()),
    )
    cookies.write(
        response,
        cookies.SESSION,
        signed_in[1],
        provider.settings,
        max_age=signed_in[0].session.expires_at - provider.now(),
    )
    return response


async def _record_success(
    provider: Provider,
    loaded: Loaded,
    user: user_store.User,
    completed: CompletedMethod,
    ctx: RequestContext,
) -> tuple[flow.SignedIn, str]:
    now = provider.now()
    current = loaded.signed_in.session if loaded.signed_in else None

    def store(conn: Connection) -> tuple[flow.SignedIn, str]:
        throttle.succeeded(conn, user.email, ctx.ip or "", user.id, now)
        kind = continuation(current, user.id)
        if kind is Continuation.EXTEND:
            assert current is not None
            session, secret = session_store.reauthenticate(conn, current, completed, now, ctx)
        else:
            if kind is Continuation.REPLACE:
                assert current is not None
                session_store.revoke(
                    conn, current.id, "replaced_by_other_user", now, current.user_id
                )
            session, secret = session_store.start(
                conn, user.id, completed, now, provider.settings.session_ttl, ctx
            )
        params = dict(loaded.interaction.params)
        params.pop("switch_user", None)
        params["events"] = [*params.get("events", ()), session.event_id]
        interaction_store.update_params(conn, loaded.interaction.id, params)
        return flow.SignedIn(session, user), secret

    return await provider.write(store)


async def switch_user(request: Request) -> Response:
    """ "Not you?": the next sign-in on this interaction starts a new session for whoever signs in.
    The current session is not touched until that sign-in succeeds."""
    provider: Provider = request.app.state.provider
    loaded = await _load(provider, request, request.path_params["iid"])
    if isinstance(loaded, Response):
        return loaded
    form = await _form(request, loaded.browser)
    if isinstance(form, Response):
        return form
    params = {**loaded.interaction.params, "switch_user": True}
    await provider.write(
        lambda conn: interaction_store.update_params(conn, loaded.interaction.id, params)
    )
    return RedirectResponse(f"/interaction/{loaded.interaction.id}", status_code=303)
