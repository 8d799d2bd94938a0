"""Signing in and re-proving it through an upstream identity provider (OIDC, OAuth 2.0, SAML).

- Start (POST, CSRF-checked): from the sign-in page ("Continue with X", or the domain of the
  address typed into the single sign-on form) or from "Confirm it's you". The flow's secrets are
  stored server-side (:mod:`freshid.federation.flows`), bound to this browser, and the browser goes
  upstream. A re-authentication — or any sign-in whose request demands a fresh proof
  (``prompt=login``, ``max_age``, an action policy) — is *forced*: OIDC Core §3.1.2.1
  ``prompt=login`` and ``max_age=0``, SAML 2.0 Core §3.4.1 ``ForceAuthn="true"``.
- Return: the OIDC callback (one redirect URI per connection, RFC 9700 §4.4.2) or the SAML
  assertion consumer service. The answer is checked in full by the pure cores
  (:mod:`freshid.methods.oidc_upstream`, :mod:`freshid.methods.saml`); a forced flow then needs an
  upstream authentication time within the connection's skew, or the proof is refused with
  ``upstream_not_fresh`` and the page says so.
- Then the user: for a re-authentication, the upstream subject must be the one linked to the
  signed-in user; for a sign-in, :func:`freshid.federation.identities.resolve` finds, links or
  creates the user under its rules, and :func:`freshid.ui.interaction.succeed` records the proof.
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import anyio
from sqlalchemy.engine import Connection as DB
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from freshid.errors import OAuthError
from freshid.events import outbox
from freshid.events.catalog import EventType
from freshid.federation import assertions, client, flows, identities
from freshid.federation import connections as connection_store
from freshid.federation.connections import OAUTH2, OIDC, SAML, Connection
from freshid.federation.jose import UnknownKid
from freshid.methods import oidc_upstream
from freshid.methods.base import MethodFailed
from freshid.methods.oidc_upstream import UpstreamProof
from freshid.protocol import params as request_params
from freshid.protocol.authorize import flow as authorize_flow
from freshid.provider import Provider
from freshid.sessions import cookies
from freshid.storage import interactions as interaction_store
from freshid.storage import users as user_store
from freshid.storage.users import User
from freshid.tokens.secrets import new_token
from freshid.ui import account, forms, interaction
from freshid.ui.pages import error_page, render

if TYPE_CHECKING:
    from freshid.methods import saml as saml_types

GONE_TITLE = "This sign-in has expired"
GONE_TEXT = (
    "It may have been completed already, started in another browser, or left too long. "
    "Go back to the app and start again."
)


def redirect_uri(provider: Provider, connection_id: str) -> str:
    return f"{provider.issuer}/federation/{connection_id}/callback"


def _message(reason: str, c: Connection) -> str:
    name = c.name
    if reason == "upstream_not_fresh":
        return (
            f"{name} did not ask you to sign in again, so this can't count as confirming it's "
            f"you just now. Try again and sign in at {name} when asked, or choose another way."
        )
    if reason == "upstream_clock_skew":
        return f"{name} reported a sign-in time we can't trust. Try again in a moment."
    if reason == "upstream_cannot_prove_freshness":
        return f"{name} can't confirm a recent sign-in. Choose another way to continue."
    if reason == "upstream_subject_mismatch":
        return f"You signed in at {name} with a different account. Use the one linked to yours."
    if reason == "not_linked":
        return f"Your account is not linked to {name}. Choose another way to continue."
    if reason == "link_required":
        return (
            "An account with this email address already exists. Sign in another way, then link "
            f"{name} from your account page."
        )
    if reason == "email_not_verified":
        return f"{name} did not confirm your email address, so it can't sign you in here."
    if reason in {"no_account", "email_domain_not_allowed", "user_disabled"}:
        return f"There is no account here for the {name} account you used."
    if reason.startswith("upstream_error:access_denied"):
        return f"Signing in at {name} was cancelled."
    return f"Signing in with {name} didn't work. Try again or choose another way."


async def _fail(
    provider: Provider,
    request: Request,
    loaded: interaction.Loaded,
    c: Connection,
    reason: str,
    user: User | None = None,
) -> Response:
    if user is None and loaded.signed_in is not None and not loaded.switching:
        user = loaded.signed_in.user
    return await interaction.fail(
        provider,
        request,
        loaded,
        method=c.method,
        reason=reason,
        user=user,
        message=_message(reason, c),
        page_method=c.method,
        status_code=401,
    )


def demands_fresh_proof(loaded: interaction.Loaded) -> bool:
    """Whether the request behind this interaction asks for a proof made now, even for a first
    sign-in: ``prompt=login``, any ``max_age`` (its own or the client's default), or a policy."""
    if loaded.policy is not None:
        return True
    areq = loaded.areq
    if areq is None:
        return False
    default_max_age = loaded.client.default_max_age if loaded.client else None
    return "login" in areq.prompt or areq.max_age is not None or default_max_age is not None


# --- start -------------------------------------------------------------------------------------


async def start(request: Request) -> Response:
    """POST /interaction/{iid}/fed/{cid}: go to the connection's provider."""
    posted = await interaction.posted(request)
    if isinstance(posted, Response):
        return posted
    provider, loaded = posted.provider, posted.loaded
    cid = request.path_params["cid"][:24]
    c = await provider.read(lambda db: connection_store.get(db, cid))
    if c is None or not c.enabled:
        return error_page("This sign-in option is not available", "Go back and choose another.")
    return await _go_upstream(provider, request, loaded, c)


async def sso(request: Request) -> Response:
    """POST /interaction/{iid}/sso: home-realm discovery by the domain of the typed address."""
    posted = await interaction.posted(request)
    if isinstance(posted, Response):
        return posted
    provider, loaded, form = posted.provider, posted.loaded, posted.form
    email = user_store.normalise_email(form.get("email", ""))[:320]
    c = (
        await provider.read(lambda db: connection_store.for_domain(db, email))
        if "@" in email
        else None
    )
    if c is None:
        outcome = interaction.current_outcome(provider, loaded)
        return await interaction.page(
            provider,
            loaded,
            outcome,
            error="Single sign-on is not set up for that address. Sign in another way.",
            email=email,
            status_code=400,
        )
    params = {**loaded.params, "email": email}
    return await _go_upstream(provider, request, loaded, c, login_hint=email, params=params)


async def _go_upstream(
    provider: Provider,
    request: Request,
    loaded: interaction.Loaded,
    c: Connection,
    *,
    login_hint: str | None = None,
    params: dict[str, Any] | None = None,
) -> Response:
    outcome = interaction.current_outcome(provider, loaded)
    login = interaction.wants_login(loaded, outcome)
    user_id: str | None = None
    if not login:
        signed_in = loaded.signed_in
        assert signed_in is not None
        linked = await provider.read(lambda db: identities.for_user(db, signed_in.user.id))
        mine = [i for i in linked if i.connection_id == c.id]
        if not mine:
            return await _fail(provider, request, loaded, c, "not_linked")
        user_id = signed_in.user.id
        login_hint = mine[0].email or signed_in.user.email
    force = not login or demands_fresh_proof(loaded)
    if force and not c.can_prove_freshness:
        return await _fail(provider, request, loaded, c, "upstream_cannot_prove_freshness")
    purpose = flows.SIGNIN if login else flows.REAUTH
    try:
        if c.kind == SAML:
            location = await _begin_saml(
                provider, c, loaded.browser, loaded.id, purpose, user_id, force
            )
        else:
            location = await _begin_oauth(
                provider, c, loaded.browser, loaded.id, purpose, user_id, force, login_hint
            )
    except MethodFailed as exc:
        return await _fail(provider, request, loaded, c, exc.reason)
    if params is not None:
        await provider.write(lambda db: interaction_store.update_params(db, loaded.id, params))
    return RedirectResponse(location, status_code=303, headers={"Cache-Control": "no-store"})


async def _begin_oauth(
    provider: Provider,
    c: Connection,
    browser: str,
    interaction_id: str | None,
    purpose: str,
    user_id: str | None,
    force: bool,
    login_hint: str | None,
) -> str:
    secrets = oidc_upstream.new_flow()
    if c.kind == OIDC:
        metadata = await client.metadata(c.issuer)
        endpoint = metadata.authorization_endpoint
    else:
        endpoint = str(c.config["authorization_endpoint"])
    now = provider.now()
    await provider.write(
        lambda db: flows.begin(
            db,
            state=secrets.state,
            connection_id=c.id,
            browser=browser,
            interaction_id=interaction_id,
            purpose=purpose,
            user_id=user_id,
            force=force,
            now=now,
            nonce=secrets.nonce,
            code_verifier=secrets.verifier,
        )
    )
    step_up_acr = tuple(c.config.get("step_up_acr_values", ())) if purpose == flows.REAUTH else ()
    return oidc_upstream.authorization_url(
        endpoint,
        client_id=c.client_id,
        redirect_uri=redirect_uri(provider, c.id),
        scope=c.scopes,
        flow=secrets,
        force_login=force,
        auth_time_within=provider.settings.session_ttl,
        oidc=c.kind == OIDC,
        login_hint=login_hint,
        acr_values=step_up_acr,
    )


# --- return ------------------------------------------------------------------------------------


async def _record_orphan(provider: Provider, request: Request, cid: str, reason: str) -> None:
    """A return we cannot tie to a flow still leaves evidence."""
    ctx = forms.request_context(request, provider, None)
    now = provider.now()
    await provider.write(
        lambda db: outbox.record(
            db,
            EventType.AUTHENTICATION_FAILED,
            now,
            method=oidc_upstream.method_name(cid),
            reason=reason,
            ip=ctx.ip,
            user_agent=ctx.user_agent,
        )
    )


async def callback(request: Request) -> Response:
    """GET /federation/{cid}/callback: the OIDC / OAuth 2.0 authorization response."""
    provider: Provider = request.app.state.provider
    cid = request.path_params["cid"][:24]
    browser = cookies.read(request, cookies.BROWSER, provider.settings)
    params = {k: v for k, v in request.query_params.items() if len(v) <= 4096}
    now = provider.now()

    def take(db: DB) -> tuple[Connection | None, flows.Flow | None]:
        c = connection_store.get(db, cid)
        if c is None or c.kind not in {OIDC, OAUTH2}:
            return None, None
        return c, flows.take(db, params.get("state", ""), cid, browser, now)

    c, flow = await provider.write(take)
    if c is None or flow is None:
        await _record_orphan(provider, request, cid, "unknown_state")
        return error_page(GONE_TITLE, GONE_TEXT, status_code=400)
    if flow.purpose == flows.LINK:
        try:
            proof = await oauth_proof(provider, c, flow, params)
        except MethodFailed as exc:
            return await _link_failed(provider, request, c, flow, exc.reason)
        return await _finish_link(provider, request, c, flow, proof)
    assert flow.interaction_id is not None
    loaded = await interaction.load(provider, request, flow.interaction_id)
    if isinstance(loaded, Response):
        return loaded
    try:
        proof = await oauth_proof(provider, c, flow, params)
    except MethodFailed as exc:
        return await _fail(provider, request, loaded, c, exc.reason)
    return await finish(provider, request, loaded, c, flow, proof)


async def oauth_proof(
    provider: Provider, c: Connection, flow: flows.Flow, params: dict[str, str]
) -> UpstreamProof:
    """Redeem the code and establish who the upstream says this is (and how, and when)."""
    assert flow.code_verifier is not None
    if c.kind == OIDC:
        metadata = await client.metadata(c.issuer)
        code = oidc_upstream.check_response(params, metadata, metadata.issuer)
        tokens = await client.redeem_code(
            c, metadata.token_endpoint, code, redirect_uri(provider, c.id), flow.code_verifier
        )
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str) or metadata.jwks_uri is None:
            raise MethodFailed("missing_id_token")
        assert flow.nonce is not None

        def validate(keys: dict[str, Any]) -> dict[str, Any]:
            assert flow.nonce is not None
            return oidc_upstream.validate_id_token(
                id_token,
                keys,
                issuer=metadata.issuer,
                client_id=c.client_id,
                nonce=flow.nonce,
                now=provider.now(),
                algorithms=c.algorithms,
            )

        try:
            claims = validate(await client.jwks(metadata.jwks_uri))
        except UnknownKid:
            try:
                claims = validate(await client.jwks(metadata.jwks_uri, refresh=True))
            except UnknownKid:
                raise MethodFailed("unknown_kid") from None
        if "email" not in claims and metadata.userinfo_endpoint:
            # Many providers put scope claims in userinfo only (OIDC Core §5.4); its sub must
            # be the ID token's (§5.3.2), or the answer is about someone else.
            info = await client.userinfo(metadata.userinfo_endpoint, str(tokens["access_token"]))
            if info.get("sub") != claims["sub"]:
                raise MethodFailed("userinfo_subject_mismatch")
            claims = {
                **claims,
                **{k: info[k] for k in ("email", "email_verified") if k in info},
            }
        return oidc_upstream.proof_from_claims(claims)
    code = oidc_upstream.check_response(params, None, None)
    tokens = await client.redeem_code(
        c, str(c.config["token_endpoint"]), code, redirect_uri(provider, c.id), flow.code_verifier
    )
    access_token = str(tokens["access_token"])
    info = await client.userinfo(str(c.config["userinfo_endpoint"]), access_token)
    subject = info.get(str(c.config.get("subject_claim", "sub")))
    if subject is None or isinstance(subject, bool) or not str(subject):
        raise MethodFailed("missing_subject")
    email = info.get(str(c.config.get("email_claim", "email")))
    verified = info.get("email_verified") is True
    emails_endpoint = c.config.get("emails_endpoint")
    if emails_endpoint:
        listed = await client.verified_emails(str(emails_endpoint), access_token)
        primary = [e for e in listed if e.get("primary") is True and e.get("verified") is True]
        email, verified = (primary[0].get("email"), True) if primary else (email, False)
    return oidc_upstream.proof_from_claims(
        # Plain OAuth 2.0 says nothing of when or how: no auth_time, acr or amr.
        {"sub": str(subject), "email": email, "email_verified": verified}
    )


async def finish(
    provider: Provider,
    request: Request,
    loaded: interaction.Loaded,
    c: Connection,
    flow: flows.Flow,
    proof: UpstreamProof,
) -> Response:
    """A verified upstream answer: check freshness, find the user, record the proof."""
    now = provider.now()
    if flow.force:
        try:
            oidc_upstream.check_fresh(proof, now, c.freshness_skew)
        except MethodFailed as exc:
            return await _fail(provider, request, loaded, c, exc.reason)
    if flow.purpose == flows.REAUTH:
        signed_in = loaded.signed_in
        identity = await provider.read(lambda db: identities.by_subject(db, c.id, proof.subject))
        if (
            signed_in is None
            or identity is None
            or identity.user_id != flow.user_id
            or signed_in.user.id != flow.user_id
        ):
            return await _fail(provider, request, loaded, c, "upstream_subject_mismatch")
        user = signed_in.user
        identity_id = identity.id
    else:
        resolved = await provider.write(lambda db: identities.resolve(db, c, proof, now))
        if resolved.user is None or resolved.identity is None:
            return await _fail(provider, request, loaded, c, resolved.reason or "no_account")
        user, identity_id = resolved.user, resolved.identity.id
    completed_at = now if proof.auth_time is None else min(now, proof.auth_time)
    current = loaded.signed_in.session if loaded.signed_in else None
    if current is not None and current.user_id == user.id:
        # Never before the session's latest proof: the history stays in order.
        completed_at = max(completed_at, current.auth_time)
    completed = oidc_upstream.completed(
        c.id, proof, c.assurance, completed_at=completed_at, forced=flow.force
    )

    def touch(db: DB) -> None:
        identities.touch(db, identity_id, now)

    return await interaction.succeed(provider, request, loaded, user, completed, touch)


# --- SAML 2.0 ----------------------------------------------------------------------------------


def _saml() -> ModuleType:
    """The SAML core, imported on first use: pysaml2 is only needed by SAML connections."""
    try:
        from freshid.methods import saml
    except ImportError as exc:
        raise MethodFailed("saml_unavailable") from exc
    return saml


def service_provider(provider: Provider, c: Connection) -> saml_types.ServiceProvider:
    base = f"{provider.issuer}/federation/{c.id}/saml"
    sp: saml_types.ServiceProvider = _saml().ServiceProvider(
        entity_id=f"{base}/metadata",
        acs_url=f"{base}/acs",
        idp_metadata=str(c.config.get("idp_metadata", "")),
        skew=c.freshness_skew,
    )
    return sp


async def _begin_saml(
    provider: Provider,
    c: Connection,
    browser: str,
    interaction_id: str | None,
    purpose: str,
    user_id: str | None,
    force: bool,
) -> str:
    relay_state = new_token(32)
    sp = service_provider(provider, c)
    saml = _saml()
    # pysaml2 runs xmlsec1 and parses XML: off the event loop.
    sent: tuple[str, str] = await anyio.to_thread.run_sync(
        lambda: saml.authn_request(sp, relay_state, force=force)
    )
    request_id, location = sent
    now = provider.now()
    await provider.write(
        lambda db: flows.begin(
            db,
            state=relay_state,
            connection_id=c.id,
            browser=browser,
            interaction_id=interaction_id,
            purpose=purpose,
            user_id=user_id,
            force=force,
            now=now,
            request_id=request_id,
        )
    )
    return location


async def saml_acs(request: Request) -> Response:
    """POST /federation/{cid}/saml/acs: the IdP's response (HTTP-POST binding).

    It arrives as a cross-site POST, without our ``SameSite=Lax`` cookies, so it is verified here
    and kept with its flow; the browser then continues on a GET that carries them.
    """
    provider: Provider = request.app.state.provider
    cid = request.path_params["cid"][:24]
    try:
        form = await request_params.form(request)
    except OAuthError:
        return error_page(GONE_TITLE, GONE_TEXT, status_code=400)
    relay_state = form.get("RelayState", "")
    now = provider.now()

    def load(db: DB) -> tuple[Connection | None, flows.Flow | None]:
        c = connection_store.get(db, cid)
        if c is None or c.kind != SAML or not c.enabled:
            return None, None
        return c, flows.pending(db, relay_state, cid, now)

    c, flow = await provider.read(load)
    if c is None or flow is None or flow.request_id is None:
        await _record_orphan(provider, request, cid, "unknown_state")
        return error_page(GONE_TITLE, GONE_TEXT, status_code=400)
    request_id = flow.request_id
    try:
        sp = service_provider(provider, c)
        saml = _saml()
        answer: saml_types.SamlAnswer = await anyio.to_thread.run_sync(
            lambda: saml.parse_response(
                sp, form.get("SAMLResponse", ""), request_id, email_verified=bool(c.domains)
            )
        )
    except MethodFailed as exc:
        return await _saml_refused(provider, request, c, flow, exc.reason)

    def accept(db: DB) -> str | None:
        if not assertions.remember(db, c.id, answer.assertion_id, answer.not_on_or_after, now):
            return "assertion_replayed"
        if not flows.store_result(db, relay_state, c.id, _proof_json(answer.proof)):
            return "flow_already_answered"
        return None

    refused = await provider.write(accept)
    if refused is not None:
        return await _saml_refused(provider, request, c, flow, refused)
    location = f"/federation/{c.id}/saml/finish?{urlencode({'RelayState': relay_state})}"
    return RedirectResponse(location, status_code=303, headers={"Cache-Control": "no-store"})


async def _saml_refused(
    provider: Provider, request: Request, c: Connection, flow: flows.Flow, reason: str
) -> Response:
    """The ACS has no cookies, so no page of the interaction: record why, say it was refused."""
    ctx = forms.request_context(request, provider, None)
    now = provider.now()
    await provider.write(
        lambda db: outbox.record(
            db,
            EventType.AUTHENTICATION_FAILED,
            now,
            user_id=flow.user_id,
            method=c.method,
            reason=reason,
            reauthentication=flow.purpose == flows.REAUTH,
            ip=ctx.ip,
            user_agent=ctx.user_agent,
        )
    )
    return error_page(
        f"{c.name} could not sign you in",
        "The answer from your organisation's sign-in service was not accepted. Go back to the "
        "app and start again.",
        reason.split(":", 1)[0],
        status_code=400,
    )


def _proof_json(proof: UpstreamProof) -> dict[str, Any]:
    return {
        "sub": proof.subject,
        "email": proof.email,
        "email_verified": proof.email_verified,
        "auth_time": proof.auth_time,
        "acr": proof.acr,
        "amr": list(proof.amr),
    }


async def saml_finish(request: Request) -> Response:
    """GET /federation/{cid}/saml/finish: the browser's own request, cookies and all."""
    provider: Provider = request.app.state.provider
    cid = request.path_params["cid"][:24]
    browser = cookies.read(request, cookies.BROWSER, provider.settings)
    relay_state = request.query_params.get("RelayState", "")
    now = provider.now()

    def take(db: DB) -> tuple[Connection | None, flows.Flow | None]:
        c = connection_store.get(db, cid)
        if c is None or c.kind != SAML:
            return None, None
        return c, flows.take(db, relay_state, cid, browser, now)

    c, flow = await provider.write(take)
    if c is None or flow is None or flow.result is None:
        await _record_orphan(provider, request, cid, "unknown_state")
        return error_page(GONE_TITLE, GONE_TEXT, status_code=400)
    proof = oidc_upstream.proof_from_claims(flow.result)
    if flow.purpose == flows.LINK:
        return await _finish_link(provider, request, c, flow, proof)
    assert flow.interaction_id is not None
    loaded = await interaction.load(provider, request, flow.interaction_id)
    if isinstance(loaded, Response):
        return loaded
    return await finish(provider, request, loaded, c, flow, proof)


async def saml_metadata(request: Request) -> Response:
    """GET /federation/{cid}/saml/metadata: our SP metadata, for the IdP's administrator."""
    provider: Provider = request.app.state.provider
    cid = request.path_params["cid"][:24]
    c = await provider.read(lambda db: connection_store.get(db, cid))
    if c is None or c.kind != SAML:
        return error_page("Page not found", "There is no such connection.", status_code=404)
    try:
        sp = service_provider(provider, c)
        saml = _saml()
    except MethodFailed:
        return error_page("SAML is not available", "pysaml2 is not installed.", status_code=501)
    xml: str = await anyio.to_thread.run_sync(lambda: saml.sp_metadata(sp))
    return Response(xml, media_type="application/samlmetadata+xml")


# --- linking from the account page -------------------------------------------------------------


LINK_ACTION = "account.method.add"


async def link_start(request: Request) -> Response:
    """GET shows what is about to happen; POST goes upstream. Both need a proof of FreshID's own
    ``account.method.add`` policy (OWASP ASVS 5.0 §7.5.1): linking adds a way to sign in."""
    provider: Provider = request.app.state.provider
    cid = request.path_params["cid"][:24]
    here = f"/account/federation/{cid}/link"
    c = await provider.read(lambda db: connection_store.get(db, cid))
    if c is None or not c.enabled:
        return error_page("Page not found", "There is no such connection.", status_code=404)
    if request.method == "GET":
        # The account page's own freshness gate (a private helper of freshid.ui.account).
        ready = await account._fresh(request, LINK_ACTION, here)
        if isinstance(ready, Response):
            return ready
        return render(
            "confirm.html",
            csrf_token=ready.csrf,
            title=f"Link your {c.name} account",
            message=(
                f"You'll sign in at {c.name}; that account can then sign you in here and "
                "confirm it's you."
            ),
            action_url=here,
            button=c.label,
            cancel_url="/account",
        )
    posted = await account._post(request, LINK_ACTION, here)
    if isinstance(posted, Response):
        return posted
    ready = posted[0]
    user_id = ready.signed_in.user.id
    try:
        if c.kind == SAML:
            location = await _begin_saml(
                provider, c, ready.browser, None, flows.LINK, user_id, c.can_prove_freshness
            )
        else:
            location = await _begin_oauth(
                provider,
                c,
                ready.browser,
                None,
                flows.LINK,
                user_id,
                c.can_prove_freshness,
                None,
            )
    except MethodFailed as exc:
        return await _link_failed(provider, request, c, flow=None, reason=exc.reason)
    return RedirectResponse(location, status_code=303, headers={"Cache-Control": "no-store"})


async def _link_failed(
    provider: Provider,
    request: Request,
    c: Connection,
    flow: flows.Flow | None,
    reason: str,
    user_id: str | None = None,
) -> Response:
    now = provider.now()
    who = user_id or (flow.user_id if flow else None)
    await provider.write(
        lambda db: outbox.record(
            db,
            EventType.CREDENTIAL_ENROLMENT_FAILED,
            now,
            user_id=who,
            method=c.method,
            reason=reason,
        )
    )
    text = (
        f"That {c.name} account is already linked to another account here."
        if reason == "linked_to_another_user"
        else _message(reason, c)
    )
    return error_page(f"{c.name} was not linked", text, reason.split(":", 1)[0], 400)


async def _finish_link(
    provider: Provider, request: Request, c: Connection, flow: flows.Flow, proof: UpstreamProof
) -> Response:
    """Link the upstream account to the user who started this from their account page, in the
    same browser and session."""
    cookie = cookies.read(request, cookies.SESSION, provider.settings)
    signed_in = await provider.read(lambda db: authorize_flow.current_session(db, cookie, provider))
    if signed_in is None or signed_in.user.id != flow.user_id:
        return await _link_failed(provider, request, c, flow, "session_changed")
    now = provider.now()
    if flow.force:
        try:
            oidc_upstream.check_fresh(proof, now, c.freshness_skew)
        except MethodFailed as exc:
            return await _link_failed(provider, request, c, flow, exc.reason)
    user_id = signed_in.user.id

    def link(db: DB) -> str | None:
        existing = identities.by_subject(db, c.id, proof.subject)
        if existing is not None:
            return None if existing.user_id == user_id else "linked_to_another_user"
        identities.link(db, c, proof, user_id, identities.ACCOUNT_PAGE, now)
        return None

    refused = await provider.write(link)
    if refused is not None:
        return await _link_failed(provider, request, c, flow, refused)
    return RedirectResponse("/account", status_code=303)
