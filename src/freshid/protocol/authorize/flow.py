"""Moving an authorization request forward: decide, then issue a code, answer with an error, or
send the browser to a hosted page (RFC 6749 §4.1.2, RFC 9207 ``iss``, OIDC Core §3.1.2.5-6).

Both the authorization endpoint and the hosted pages call :func:`advance`; after the user proves
who they are, the page calls it again with the *same* request and the authentication events
completed in this interaction, which the decision counts as made for this very request.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sqlalchemy.engine import Connection
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from freshid.errors import OAuthError
from freshid.federation import choices as federation
from freshid.freshness import Allow, Authenticate, Deny, MethodOffer, decide
from freshid.freshness.decision import Outcome
from freshid.methods import email_code, passkey, password, recovery_codes, totp
from freshid.methods.base import MethodInfo
from freshid.protocol.authorize.request import AuthorizationRequest
from freshid.provider import Provider
from freshid.sessions import cookies
from freshid.sessions.model import Session
from freshid.storage import clients as client_store
from freshid.storage import credentials as credential_store
from freshid.storage import grants as grant_store
from freshid.storage import interactions as interaction_store
from freshid.storage import sessions as session_store
from freshid.storage import users as user_store
from freshid.storage.clients import Client
from freshid.storage.users import User


@dataclass(frozen=True)
class SignedIn:
    session: Session
    user: User
    offers: tuple[MethodOffer, ...] = ()
    """The methods this user can prove it with, as the decision sees them."""


def _offer(info: MethodInfo, amr: tuple[str, ...]) -> MethodOffer:
    return MethodOffer(info.name, amr, frozenset(info.factors), info.phishing_resistant, info.rank)


def offers_for(conn: Connection, user: User | None) -> tuple[MethodOffer, ...]:
    """What each enrolled method would prove; recovery codes stand in for the authenticator app."""
    if user is None or user.disabled:
        return ()
    creds = credential_store.for_user(conn, user.id)
    kinds = {c.type for c in creds}
    offers = [_offer(email_code.INFO, email_code.AMR)]
    if user.password_hash:
        offers.append(_offer(password.INFO, password.AMR))
    if credential_store.TOTP in kinds:
        offers.append(_offer(totp.INFO, totp.AMR))
        if any(c.type == credential_store.RECOVERY_CODE and c.last_used_at is None for c in creds):
            offers.append(_offer(recovery_codes.INFO, recovery_codes.AMR))
    if credential_store.PASSKEY in kinds:
        offers.append(
            MethodOffer(
                passkey.INFO.name,
                ("hwk", "user", "mfa"),
                frozenset(passkey.INFO.factors),
                True,
                passkey.INFO.rank,
            )
        )
    # Linked upstream identity providers (OIDC, SAML) that can re-prove it.
    offers.extend(federation.offers(conn, user.id))
    return tuple(sorted(offers, key=lambda o: -o.rank))


def current_session(conn: Connection, cookie: str | None, provider: Provider) -> SignedIn | None:
    """The browser's live session and its user, or None (expired, revoked, user disabled)."""
    if cookie is None:
        return None
    session = session_store.by_cookie(conn, cookie)
    now = provider.now()
    if session is None or not session.alive(now, provider.settings.session_idle_ttl):
        return None
    user = user_store.by_id(conn, session.user_id)
    if user is None or user.disabled:
        return None
    return SignedIn(session, user, offers_for(conn, user))


def redirect_to_client(redirect_uri: str, params: dict[str, str | None]) -> RedirectResponse:
    """Add parameters to a registered redirect URI, keeping its own query (RFC 6749 §3.1.2)."""
    parts = urlsplit(redirect_uri)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query += [(k, v) for k, v in params.items() if v is not None]
    location = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))
    return RedirectResponse(location, status_code=303, headers={"Cache-Control": "no-store"})


def error_to_client(
    provider: Provider, redirect_uri: str, state: str | None, error: OAuthError
) -> RedirectResponse:
    return redirect_to_client(
        redirect_uri,
        {**error.to_dict(), "state": state, "iss": provider.issuer},
    )


def decide_for(
    provider: Provider,
    areq: AuthorizationRequest,
    client: Client,
    signed_in: SignedIn | None,
    proved_events: frozenset[str] = frozenset(),
) -> Outcome:
    state = signed_in.session.state() if signed_in else None
    offers = signed_in.offers if signed_in else ()
    freshness = areq.freshness(client.default_max_age, proved_events)
    policy = provider.policies.get(areq.action) if areq.action else None
    return decide(state, freshness, provider.now(), policy=policy, offers=offers)


async def advance(
    provider: Provider,
    request: Request,
    areq: AuthorizationRequest,
    client: Client,
    signed_in: SignedIn | None,
    *,
    interaction_id: str | None = None,
    proved_events: frozenset[str] = frozenset(),
) -> Response:
    outcome = decide_for(provider, areq, client, signed_in, proved_events)
    if isinstance(outcome, Deny):
        return error_to_client(
            provider, areq.redirect_uri, areq.state, outcome.error(outcome.description)
        )
    if isinstance(outcome, Allow):
        assert signed_in is not None
        return await _issue_code(provider, areq, signed_in, outcome, interaction_id)
    return await _interact(provider, request, areq, outcome, interaction_id)


async def _issue_code(
    provider: Provider,
    areq: AuthorizationRequest,
    signed_in: SignedIn,
    allowed: Allow,
    interaction_id: str | None,
) -> Response:
    settings, now = provider.settings, provider.now()
    session = signed_in.session

    def store(conn: Connection) -> str:
        if interaction_id is not None:
            interaction_store.complete(conn, interaction_id, now)
        session_store.touch(conn, session.id, now)
        return grant_store.create_with_code(
            conn,
            client_id=areq.client_id,
            user_id=session.user_id,
            session_id=session.id,
            scope=areq.scope,
            auth_time=session.auth_time,
            acr=allowed.acr,
            amr=session.amr,
            offline="offline_access" in areq.scope.split() and areq.action is None,
            action=areq.action,
            redirect_uri=areq.redirect_uri,
            nonce=areq.nonce,
            code_challenge=areq.code_challenge,
            now=now,
            code_ttl=settings.code_ttl,
            grant_ttl=settings.refresh_token_ttl,
        )

    code = await provider.write_short(store)
    return redirect_to_client(
        areq.redirect_uri, {"code": code, "state": areq.state, "iss": provider.issuer}
    )


async def _interact(
    provider: Provider,
    request: Request,
    areq: AuthorizationRequest,
    outcome: Authenticate,
    interaction_id: str | None,
) -> Response:
    if interaction_id is not None:
        return RedirectResponse(f"/interaction/{interaction_id}", status_code=303)
    browser, fresh = cookies.browser_id(request, provider.settings)
    now = provider.now()
    iid = await provider.write(
        lambda conn: interaction_store.create(
            conn,
            browser,
            areq.client_id,
            {"request": areq.to_json()},
            now,
            provider.settings.interaction_ttl,
        )
    )
    response = RedirectResponse(
        f"/interaction/{iid}", status_code=303, headers={"Cache-Control": "no-store"}
    )
    if fresh:
        cookies.write(response, cookies.BROWSER, browser, provider.settings, max_age=None)
    return response


def find_client(conn: Connection, client_id: str) -> Client | None:
    return client_store.by_id(conn, client_id)
