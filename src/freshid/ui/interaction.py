"""The interaction: the hosted pages between "you must prove it" and the answer.

An interaction either finishes an authorization request (the answer is a code at the client's
redirect URI) or guards one of FreshID's own account actions (the answer is a return to that page).
Either way the same pure decision (:func:`freshid.freshness.decide`) says what is still missing,
and the page offers only the methods that can supply it, best first, with the others one click
away. Each method's form posts to its own module in :mod:`freshid.ui.methods`; they all end in
:func:`succeed` or :func:`fail` here.

Authentication events: the methods completed in one interaction form one event (a password then
a TOTP code is one multi-factor event). The interaction remembers its events, which is how the
decision knows a proof was made for this very request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from freshid.events import outbox
from freshid.events.catalog import EventType
from freshid.federation import choices as federation
from freshid.freshness import Allow, Authenticate, AuthRequest, Deny, decide
from freshid.freshness.decision import Outcome
from freshid.freshness.policy import ActionPolicy
from freshid.methods import passkey
from freshid.methods.base import CompletedMethod
from freshid.protocol.authorize import flow
from freshid.protocol.authorize.request import AuthorizationRequest
from freshid.protocol.params import Params
from freshid.provider import Provider
from freshid.sessions import cookies
from freshid.sessions.model import Continuation, continuation
from freshid.storage import challenges as challenge_store
from freshid.storage import credentials as credential_store
from freshid.storage import interactions as interaction_store
from freshid.storage import sessions as session_store
from freshid.storage.clients import Client
from freshid.storage.interactions import Interaction
from freshid.storage.sessions import RequestContext
from freshid.storage.users import User
from freshid.ui import reasons
from freshid.ui.pages import error_page, render

EXPIRED_TITLE = "This sign-in request has expired"
EXPIRED_TEXT = (
    "It may have been completed already, opened in another browser, or left too long. "
    "Go back to the app and start again."
)
PASSKEY_CHALLENGE = "passkey-auth"
LABELS = {
    "passkey": "Use a passkey",
    "totp": "Use your authenticator app",
    "email_code": "Email me a code",
    "password": "Use your password",
    "recovery_code": "Use a recovery code",
}


@dataclass(frozen=True)
class Loaded:
    interaction: Interaction
    browser: str
    signed_in: flow.SignedIn | None
    areq: AuthorizationRequest | None
    client: Client | None
    policy: ActionPolicy | None
    return_to: str | None

    @property
    def id(self) -> str:
        return self.interaction.id

    @property
    def params(self) -> dict[str, Any]:
        return self.interaction.params

    @property
    def switching(self) -> bool:
        return bool(self.params.get("switch_user"))

    @property
    def proved_events(self) -> frozenset[str]:
        return frozenset(self.params.get("events", ()))

    @property
    def client_name(self) -> str | None:
        return self.client.name if self.client else None

    @property
    def action(self) -> str | None:
        return self.policy.action if self.policy else None


def _loaded(
    provider: Provider,
    conn: Connection,
    interaction: Interaction,
    browser: str,
    session_cookie: str | None,
) -> Loaded | None:
    signed_in = flow.current_session(conn, session_cookie, provider)
    params = interaction.params
    if interaction.client_id is None:
        policy = provider.policies.get(str(params.get("action", "")))
        return_to = params.get("return_to")
        if policy is None or not isinstance(return_to, str):
            return None
        return Loaded(interaction, browser, signed_in, None, None, policy, return_to)
    client = flow.find_client(conn, interaction.client_id)
    if client is None:
        return None
    areq = AuthorizationRequest.from_json(params["request"])
    # A bound action's policy names what the user is confirming ("... to delete your account").
    policy = provider.policies.get(areq.action) if areq.action else None
    return Loaded(interaction, browser, signed_in, areq, client, policy, None)


@dataclass(frozen=True)
class Posted:
    """A method form posted to an interaction: the interaction and the checked form."""

    provider: Provider
    loaded: Loaded
    form: Params


async def posted(request: Request) -> Posted | Response:
    """The interaction named in the path and its form, CSRF-checked; or the page to answer."""
    from freshid.ui import forms

    provider: Provider = request.app.state.provider
    loaded = await load(provider, request, request.path_params["iid"])
    if isinstance(loaded, Response):
        return loaded
    form = await forms.read(request, loaded.browser)
    if isinstance(form, Response):
        return form
    return Posted(provider, loaded, form)


async def load(provider: Provider, request: Request, iid: str) -> Loaded | Response:
    """The interaction of this browser, or the page saying it is gone."""
    browser = cookies.read(request, cookies.BROWSER, provider.settings)
    if browser is None or len(iid) > 64:
        return error_page(EXPIRED_TITLE, EXPIRED_TEXT)
    session_cookie = cookies.read(request, cookies.SESSION, provider.settings)
    now = provider.now()

    def run(conn: Connection) -> Loaded | None:
        interaction = interaction_store.load(conn, iid, browser, now)
        if interaction is None:
            return None
        return _loaded(provider, conn, interaction, browser, session_cookie)

    loaded = await provider.read(run)
    return loaded if loaded is not None else error_page(EXPIRED_TITLE, EXPIRED_TEXT)


def decide_for(
    provider: Provider, loaded: Loaded, signed_in: flow.SignedIn | None, proved: frozenset[str]
) -> Outcome:
    if loaded.areq is not None and loaded.client is not None:
        return flow.decide_for(provider, loaded.areq, loaded.client, signed_in, proved)
    state = signed_in.session.state() if signed_in else None
    offers = signed_in.offers if signed_in else ()
    return decide(
        state,
        AuthRequest(proved_events=proved),
        provider.now(),
        policy=loaded.policy,
        offers=offers,
    )


async def advance(
    provider: Provider,
    request: Request,
    loaded: Loaded,
    signed_in: flow.SignedIn | None,
    proved: frozenset[str],
) -> Response:
    """Decide again and answer: a code for the client, a return to our page, or the next page."""
    if loaded.areq is not None and loaded.client is not None:
        return await flow.advance(
            provider,
            request,
            loaded.areq,
            loaded.client,
            signed_in,
            interaction_id=loaded.id,
            proved_events=proved,
        )
    outcome = decide_for(provider, loaded, signed_in, proved)
    if isinstance(outcome, Deny):
        return error_page(
            "This action cannot be confirmed",
            outcome.description,
            outcome.error.error,
            status_code=403,
        )
    if isinstance(outcome, Allow):
        now = provider.now()
        await provider.write(lambda conn: interaction_store.complete(conn, loaded.id, now))
        assert loaded.return_to is not None
        return RedirectResponse(loaded.return_to, status_code=303)
    return RedirectResponse(f"/interaction/{loaded.id}", status_code=303)


def wants_login(loaded: Loaded, outcome: Authenticate) -> bool:
    return loaded.signed_in is None or outcome.new_session or loaded.switching


async def _passkey_options(
    provider: Provider, loaded: Loaded, allow: list[bytes]
) -> tuple[str | None, str | None]:
    """Fresh single-use WebAuthn options for this page, and where the assertion goes."""
    rp_id = provider.settings.rp_id
    if not rp_id or rp_id.replace(".", "").isdigit() or ":" in rp_id:
        return None, None  # browsers refuse IP addresses as relying party ids
    options, challenge = passkey.authentication_options(rp_id, allow, require_uv=True)
    now = provider.now()
    cid = await provider.write(
        lambda conn: challenge_store.issue(
            conn, PASSKEY_CHALLENGE, loaded.id, challenge, now, passkey.CHALLENGE_TTL
        )
    )
    return options, f"/interaction/{loaded.id}/passkey?c={cid}"


async def _user_passkeys(provider: Provider, user_id: str) -> list[bytes]:
    creds = await provider.read(lambda conn: credential_store.for_user(conn, user_id))
    return [
        credential_store.unb64url(c.credential_id)
        for c in creds
        if c.type == credential_store.PASSKEY and c.credential_id
    ]


async def page(
    provider: Provider,
    loaded: Loaded,
    outcome: Authenticate,
    *,
    method: str | None = None,
    error: str | None = None,
    email: str | None = None,
    status_code: int = 200,
) -> Response:
    """The sign-in page (no session, or another user) or the "Confirm it's you" page."""
    iid = loaded.id
    csrf = cookies.csrf_token(loaded.browser)
    base = f"/interaction/{iid}"
    if wants_login(loaded, outcome):
        if method == "email_code_sent":
            return render(
                "email_code.html",
                status_code,
                csrf_token=csrf,
                email=loaded.params.get("email"),
                action_url=f"{base}/email/verify",
                resend_url=f"{base}/email/send",
                error=error,
                alternatives=[{"label": "Sign in another way", "href": base}],
            )
        options, passkey_url = await _passkey_options(provider, loaded, [])
        return render(
            "login.html",
            status_code,
            csrf_token=csrf,
            action_url=f"{base}/password",
            email=email
            if email is not None
            else (
                loaded.params.get("email") or (loaded.areq.login_hint if loaded.areq else "") or ""
            ),
            error=error,
            client_name=loaded.client_name,
            email_code_url=f"{base}/email/send",
            passkey_options=options,
            passkey_url=passkey_url,
            alternatives=[],
            **(await provider.read(lambda conn: federation.login_choices(conn, base))),
        )
    signed_in = loaded.signed_in
    assert signed_in is not None
    offered = [m for m in outcome.methods if m in {o.method for o in signed_in.offers}]
    if not offered:
        offered = [o.method for o in signed_in.offers]
    chosen = (
        method
        if method in offered or (method == "email_code_sent" and "email_code" in offered)
        else offered[0]
    )
    context: dict[str, Any] = {"method": chosen, "action_url": f"{base}/{chosen}"}
    if chosen == "email_code":
        context["action_url"] = f"{base}/email/send"
    elif chosen == "email_code_sent":
        context.update(action_url=f"{base}/email/verify", resend_url=f"{base}/email/send")
    elif chosen == "recovery_code":
        context["action_url"] = f"{base}/recovery"
    elif federation.is_federated(chosen):
        context["action_url"] = f"{base}/fed/{federation.connection_id(chosen)}"
    elif chosen == "passkey":
        allow = await _user_passkeys(provider, signed_in.user.id)
        options, passkey_url = await _passkey_options(provider, loaded, allow)
        context.update(passkey_options=options, action_url=passkey_url)
    current = "email_code" if chosen == "email_code_sent" else chosen
    labels = dict(LABELS)
    if any(federation.is_federated(m) for m in offered):
        labels.update(await provider.read(lambda conn: federation.labels(conn, offered)))
    context["method_label"] = labels.get(chosen, chosen)
    alternatives = [
        {"label": labels.get(m, m), "href": f"{base}?method={m}"} for m in offered if m != current
    ]
    age = provider.now() - signed_in.session.auth_time
    return render(
        "reauth.html",
        status_code,
        csrf_token=csrf,
        user_email=signed_in.user.email,
        client_name=loaded.client_name,
        reason=reasons.explain(outcome, age),
        action_label=loaded.policy.label if loaded.policy else None,
        error=error,
        not_you_url=f"{base}/switch",
        alternatives=alternatives,
        **context,
    )


async def show(request: Request) -> Response:
    """GET /interaction/{iid}: whatever page the decision calls for now."""
    provider: Provider = request.app.state.provider
    loaded = await load(provider, request, request.path_params["iid"])
    if isinstance(loaded, Response):
        return loaded
    outcome = decide_for(provider, loaded, loaded.signed_in, loaded.proved_events)
    if isinstance(outcome, Allow | Deny) and not loaded.switching:
        # Proved meanwhile (another tab): finish without asking again.
        return await advance(provider, request, loaded, loaded.signed_in, loaded.proved_events)
    if not isinstance(outcome, Authenticate):
        outcome = Authenticate("switch_user", new_session=True)
    method = request.query_params.get("method")
    return await page(provider, loaded, outcome, method=method)


def current_outcome(provider: Provider, loaded: Loaded) -> Authenticate:
    outcome = decide_for(provider, loaded, loaded.signed_in, loaded.proved_events)
    return (
        outcome
        if isinstance(outcome, Authenticate)
        else Authenticate("switch_user", new_session=True)
    )


async def fail(
    provider: Provider,
    request: Request,
    loaded: Loaded,
    *,
    method: str,
    reason: str,
    user: User | None,
    message: str,
    status_code: int = 401,
    page_method: str | None = None,
    email: str | None = None,
) -> Response:
    """Record ``authentication.failed`` (never the secret) and show the page again."""
    outcome = current_outcome(provider, loaded)
    ctx = _context(request, provider, loaded)
    login = wants_login(loaded, outcome)
    now = provider.now()
    await provider.write(
        lambda conn: outbox.record(
            conn,
            EventType.AUTHENTICATION_FAILED,
            now,
            user_id=user.id if user else None,
            session_id=loaded.signed_in.session.id if loaded.signed_in and not login else None,
            client_id=ctx.client_id,
            method=method,
            reason=reason,
            ip=ctx.ip,
            user_agent=ctx.user_agent,
            reauthentication=not login,
            action=loaded.action,
        )
    )
    return await page(
        provider,
        loaded,
        outcome,
        method=page_method or method,
        error=message,
        email=email,
        status_code=status_code,
    )


def _context(request: Request, provider: Provider, loaded: Loaded) -> RequestContext:
    from freshid.ui.forms import request_context

    return request_context(request, provider, loaded.client.client_id if loaded.client else None)


async def succeed(
    provider: Provider,
    request: Request,
    loaded: Loaded,
    user: User,
    completed: CompletedMethod,
    on_success: Any = None,
) -> Response:
    """A method succeeded for ``user``: extend, replace or start the session, then move on.

    ``on_success(conn)`` runs in the same transaction (e.g. marking a code used), so a proof is
    consumed exactly when the session records it.
    """
    ctx = _context(request, provider, loaded)
    now = provider.now()
    current = loaded.signed_in.session if loaded.signed_in else None

    def store(conn: Connection) -> tuple[flow.SignedIn, str] | None:
        if on_success is not None and on_success(conn) is False:
            return None
        params = dict(loaded.params)
        kind = continuation(current, user.id)
        if kind is Continuation.EXTEND:
            assert current is not None
            continuing = current.event_id in loaded.proved_events
            session, secret = session_store.reauthenticate(
                conn,
                current,
                completed,
                now,
                ctx,
                action=loaded.action,
                event_id=current.event_id if continuing else None,
                signing_in=continuing and bool(params.get("signed_in_here")),
            )
        else:
            if kind is Continuation.REPLACE:
                assert current is not None
                session_store.revoke(
                    conn, current.id, "replaced_by_other_user", now, current.user_id
                )
            session, secret = session_store.start(
                conn, user.id, completed, now, provider.settings.session_ttl, ctx
            )
            params["signed_in_here"] = True
        params.pop("switch_user", None)
        params["events"] = list(dict.fromkeys([*params.get("events", ()), session.event_id]))
        interaction_store.update_params(conn, loaded.id, params)
        return flow.SignedIn(session, user, flow.offers_for(conn, user)), secret

    stored = await provider.write(store)
    if stored is None:
        return await fail(
            provider,
            request,
            loaded,
            method=completed.method,
            reason="used",
            user=user,
            message="That code was already used. Request a new one.",
        )
    signed_in, secret = stored
    proved = loaded.proved_events | {signed_in.session.event_id or ""}
    reloaded = Loaded(
        loaded.interaction,
        loaded.browser,
        signed_in,
        loaded.areq,
        loaded.client,
        loaded.policy,
        loaded.return_to,
    )
    response = await advance(provider, request, reloaded, signed_in, proved)
    cookies.write(
        response,
        cookies.SESSION,
        secret,
        provider.settings,
        max_age=signed_in.session.expires_at - provider.now(),
    )
    return response


async def switch_user(request: Request) -> Response:
    """ "Not you?": the next sign-in on this interaction is for whoever signs in. The current
    session is untouched until that sign-in succeeds; another user then gets a new session."""
    from freshid.ui import forms

    provider: Provider = request.app.state.provider
    loaded = await load(provider, request, request.path_params["iid"])
    if isinstance(loaded, Response):
        return loaded
    form = await forms.read(request, loaded.browser)
    if isinstance(form, Response):
        return form
    params = {**loaded.params, "switch_user": True}
    await provider.write(lambda conn: interaction_store.update_params(conn, loaded.id, params))
    return RedirectResponse(f"/interaction/{loaded.id}", status_code=303)


async def start_internal(
    provider: Provider, request: Request, policy: ActionPolicy, return_to: str
) -> Response:
    """Send the browser through "Confirm it's you" for one of FreshID's own account actions."""
    browser, fresh = cookies.browser_id(request, provider.settings)
    now = provider.now()
    iid = await provider.write(
        lambda conn: interaction_store.create(
            conn,
            browser,
            None,
            {"action": policy.action, "return_to": return_to},
            now,
            provider.settings.interaction_ttl,
        )
    )
    response = RedirectResponse(f"/interaction/{iid}", status_code=303)
    if fresh:
        cookies.write(response, cookies.BROWSER, browser, provider.settings, max_age=None)
    return response
