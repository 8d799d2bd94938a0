"""The account page: sign-in methods and sessions, each change behind a fresh proof.

FreshID applies its own freshness rules to itself (OWASP ASVS 5.0 §7.5.1): adding or removing a
sign-in method, creating recovery codes and ending another session are actions of the policy
catalog (:data:`freshid.freshness.policy.ACCOUNT_POLICIES`). A page or form whose proof is too old
sends the user through "Confirm it's you" and back to a page that shows, again, what they are
about to do; the change itself always happens on a CSRF-protected POST whose freshness is checked
again.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Connection
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from freshid.events import outbox
from freshid.events.catalog import EventType
from freshid.freshness import Allow, AuthRequest, Deny, decide
from freshid.methods import passkey, recovery_codes, totp
from freshid.methods.base import MethodFailed
from freshid.protocol.authorize import flow
from freshid.provider import Provider
from freshid.sessions import cookies
from freshid.storage import challenges as challenge_store
from freshid.storage import credentials as credential_store
from freshid.storage import sessions as session_store
from freshid.ui import forms, interaction
from freshid.ui.pages import error_page, render
from freshid.ui.reasons import duration

PASSKEY_REGISTRATION = "passkey-reg"
METHOD_NAMES = {
    "password": "Password",
    "email_code": "Code by email",
    "totp": "Authenticator app",
    "recovery_code": "Recovery code",
    "passkey": "Passkey",
}
NOTICES = {
    "passkey_added": "Your passkey was added.",
    "totp_added": "Your authenticator app is set up.",
    "removed": "The sign-in method was removed.",
    "session_revoked": "That session was signed out.",
}


@dataclass(frozen=True)
class Ready:
    provider: Provider
    signed_in: flow.SignedIn
    browser: str

    @property
    def csrf(self) -> str:
        return cookies.csrf_token(self.browser)


async def _fresh(request: Request, action: str, return_to: str) -> Ready | Response:
    """The signed-in user, if their proof satisfies ``action``; else the way to make it so."""
    provider: Provider = request.app.state.provider
    policy = provider.policies[action]
    session_cookie = cookies.read(request, cookies.SESSION, provider.settings)
    signed_in = await provider.read(
        lambda conn: flow.current_session(conn, session_cookie, provider)
    )
    browser = cookies.read(request, cookies.BROWSER, provider.settings)
    if signed_in is None or browser is None:
        return await interaction.start_internal(provider, request, policy, return_to)
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
    return Ready(provider, signed_in, browser)


async def _post(
    request: Request, action: str, return_to: str
) -> tuple[Ready, dict[str, str]] | Response:
    ready = await _fresh(request, action, return_to)
    if isinstance(ready, Response):
        return ready
    form = await forms.read(request, ready.browser)
    if isinstance(form, Response):
        return form
    return ready, dict(form)


def _ago(now: int, when: int | None) -> str:
    return "never" if when is None else f"{duration(now - when)} ago"


async def show(request: Request) -> Response:
    ready = await _fresh(request, "account.view", "/account")
    if isinstance(ready, Response):
        return ready
    provider, user = ready.provider, ready.signed_in.user
    now = provider.now()
    current = ready.signed_in.session

    def load(
        conn: Connection,
    ) -> tuple[list[credential_store.Credential], list[session_store.SessionSummary]]:
        return (
            credential_store.for_user(conn, user.id),
            session_store.live_for_user(conn, user.id, now, provider.settings.session_idle_ttl),
        )

    creds, sessions = await provider.read(load)
    methods: list[dict[str, object]] = []
    if user.password_hash:
        methods.append(
            {
                "id": "password",
                "type": "password",
                "name": "Password",
                "detail": "Used with your email address",
                "remove_url": None,
            }
        )
    for c in creds:
        if c.type == credential_store.RECOVERY_CODE:
            continue
        methods.append(
            {
                "id": c.id,
                "type": c.type,
                "name": c.name,
                "detail": (
                    f"Added {_ago(now, c.created_at)} · last used {_ago(now, c.last_used_at)}"
                ),
                "remove_url": f"/account/credentials/{c.id}/remove",
            }
        )
    codes = [c for c in creds if c.type == credential_store.RECOVERY_CODE]
    if codes:
        left = sum(1 for c in codes if c.last_used_at is None)
        methods.append(
            {
                "id": "recovery",
                "type": "recovery_codes",
                "name": "Recovery codes",
                "detail": f"{left} of {len(codes)} codes left",
                "remove_url": None,
            }
        )
    has_totp = any(c.type == credential_store.TOTP for c in creds)
    add_links = [{"label": "Add a passkey", "href": "/account/passkeys/new"}]
    if not has_totp:
        add_links.append({"label": "Set up an authenticator app", "href": "/account/totp/new"})
    rows = [
        {
            "sid_short": s.session.id[:8],
            "current": s.session.id == current.id,
            "created": _ago(now, s.session.created_at),
            "last_seen": _ago(now, s.session.last_seen_at),
            "proof_age": _ago(now, s.session.auth_time),
            "methods": ", ".join(METHOD_NAMES.get(m, m) for m in s.session.methods),
            "user_agent": s.user_agent,
            "revoke_url": None
            if s.session.id == current.id
            else f"/account/sessions/{s.session.id}/revoke",
        }
        for s in sessions
    ]
    return render(
        "account.html",
        csrf_token=ready.csrf,
        user_email=user.email,
        methods=methods,
        add_links=add_links,
        recovery_url="/account/recovery-codes/new" if has_totp else None,
        sessions=rows,
        logout_url="/account/logout",
        proof_age=f"You last proved it's you {duration(now - current.auth_time)} ago",
        notice=NOTICES.get(request.query_params.get("notice", "")),
    )


def _confirm(ready: Ready, title: str, message: str, action_url: str, button: str) -> Response:
    return render(
        "confirm.html",
        csrf_token=ready.csrf,
        title=title,
        message=message,
        action_url=action_url,
        button=button,
        cancel_url="/account",
    )


async def _confirmed(
    request: Request, action: str, path: str, title: str, message: str, button: str
) -> Ready | Response:
    """GET shows what is about to happen (after a fresh proof if needed); POST, checked again,
    returns the signed-in user ready to act."""
    if request.method == "GET":
        ready = await _fresh(request, action, path)
        if isinstance(ready, Response):
            return ready
        return _confirm(ready, title, message, path, button)
    posted = await _post(request, action, path)
    return posted if isinstance(posted, Response) else posted[0]


# --- passkeys -------------------------------------------------------------------------------


async def passkey_new(request: Request) -> Response:
    ready = await _fresh(request, "account.method.add", "/account/passkeys/new")
    if isinstance(ready, Response):
        return ready
    provider, user = ready.provider, ready.signed_in.user
    settings, now = provider.settings, provider.now()

    def prepare(conn: Connection) -> tuple[str, str]:
        existing = [
            credential_store.unb64url(c.credential_id or "")
            for c in credential_store.for_user(conn, user.id)
            if c.type == credential_store.PASSKEY
        ]
        options, challenge = passkey.registration_options(
            settings.rp_id,
            settings.webauthn_rp_name,
            user.id.encode(),
            user.email,
            user.email,
            existing,
        )
        cid = challenge_store.issue(
            conn, PASSKEY_REGISTRATION, user.id, challenge, now, passkey.CHALLENGE_TTL
        )
        return options, cid

    options, cid = await provider.write(prepare)
    error = request.query_params.get("error")
    return render(
        "enroll_passkey.html",
        csrf_token=ready.csrf,
        passkey_options=options,
        action_url=f"/account/passkeys/new?c={cid}",
        cancel_url="/account",
        error="That passkey could not be added. Try again." if error else None,
    )


async def passkey_register(request: Request) -> Response:
    posted = await _post(request, "account.method.add", "/account/passkeys/new")
    if isinstance(posted, Response):
        return posted
    ready, form = posted
    provider, user = ready.provider, ready.signed_in.user
    settings, now = provider.settings, provider.now()
    cid = request.query_params.get("c", "")[:64]
    name = (form.get("name") or "Passkey").strip()[:100] or "Passkey"
    challenge = await provider.write(
        lambda conn: challenge_store.consume(conn, cid, PASSKEY_REGISTRATION, user.id, now)
    )
    try:
        if challenge is None:
            raise MethodFailed("wrong_challenge")
        new = passkey.verify_registration(
            form.get("credential", ""), challenge, settings.origin, settings.rp_id
        )
    except MethodFailed as exc:
        reason = exc.reason
        await provider.write(
            lambda conn: outbox.record(
                conn,
                EventType.CREDENTIAL_ENROLMENT_FAILED,
                now,
                user_id=user.id,
                session_id=ready.signed_in.session.id,
                method="passkey",
                reason=reason,
            )
        )
        return RedirectResponse("/account/passkeys/new?error=1", status_code=303)

    def store(conn: Connection) -> bool:
        if credential_store.passkey_by_credential_id(conn, new.credential_id) is not None:
            return False
        cred = credential_store.add_passkey(
            conn,
            user.id,
            name,
            new.credential_id,
            new.public_key,
            new.sign_count,
            new.backup_eligible,
            new.transports,
            now,
        )
        outbox.record(
            conn,
            EventType.CREDENTIAL_ADDED,
            now,
            user_id=user.id,
            session_id=ready.signed_in.session.id,
            method="passkey",
            credential_id=cred,
        )
        return True

    if not await provider.write(store):
        return RedirectResponse("/account/passkeys/new?error=1", status_code=303)
    return RedirectResponse("/account?notice=passkey_added", status_code=303)


# --- authenticator app ------------------------------------------------------------------------


async def totp_new(request: Request) -> Response:
    ready = await _fresh(request, "account.method.add", "/account/totp/new")
    if isinstance(ready, Response):
        return ready
    provider, user = ready.provider, ready.signed_in.user
    secret, now = totp.new_secret(), provider.now()
    cred_id = await provider.write(
        lambda conn: credential_store.add_totp(conn, user.id, secret, now)
    )
    return _totp_page(ready, cred_id, secret, None)


def _totp_page(ready: Ready, cred_id: str, secret: str, error: str | None) -> Response:
    user = ready.signed_in.user
    uri = totp.provisioning_uri(secret, user.email, "FreshID")
    response = render(
        "enroll_totp.html",
        400 if error else 200,
        csrf_token=ready.csrf,
        qr_data_uri=totp.qr_svg_data_uri(uri),
        secret=secret,
        action_url=f"/account/totp/confirm?id={cred_id}",
        error=error,
        cancel_url="/account",
    )
    return response


async def totp_confirm(request: Request) -> Response:
    posted = await _post(request, "account.method.add", "/account/totp/new")
    if isinstance(posted, Response):
        return posted
    ready, form = posted
    provider, user = ready.provider, ready.signed_in.user
    now = provider.now()
    cred_id = request.query_params.get("id", "")[:64]
    pending = await provider.read(lambda conn: credential_store.by_id(conn, user.id, cred_id))
    if pending is None or pending.type != credential_store.TOTP or pending.confirmed_at:
        return RedirectResponse("/account/totp/new", status_code=303)
    try:
        step = totp.verify(pending.secret or "", form.get("code", "")[:16], now, None)
    except MethodFailed:
        return _totp_page(
            ready,
            cred_id,
            pending.secret or "",
            "That code is not right. Enter the code the app shows now.",
        )
    name = (form.get("name") or "Authenticator app").strip()[:100] or "Authenticator app"
    codes = recovery_codes.generate()

    def store(conn: Connection) -> bool:
        if not credential_store.confirm_totp(conn, user.id, cred_id, name, step, now):
            return False
        credential_store.replace_recovery_codes(
            conn, user.id, [recovery_codes.digest(c) for c in codes], now
        )
        outbox.record(
            conn,
            EventType.CREDENTIAL_ADDED,
            now,
            user_id=user.id,
            session_id=ready.signed_in.session.id,
            method="totp",
            credential_id=cred_id,
        )
        return True

    if not await provider.write(store):
        return RedirectResponse("/account", status_code=303)
    return render(
        "recovery_codes.html",
        csrf_token=ready.csrf,
        codes=codes,
        continue_url="/account?notice=totp_added",
    )


async def recovery_new(request: Request) -> Response:
    path = "/account/recovery-codes/new"
    ready = await _confirmed(
        request,
        "account.recovery_codes.create",
        path,
        "Create new recovery codes?",
        "Your current recovery codes will stop working.",
        "Create new codes",
    )
    if isinstance(ready, Response):
        return ready
    provider, user = ready.provider, ready.signed_in.user
    now, codes = provider.now(), recovery_codes.generate()

    def store(conn: Connection) -> None:
        credential_store.replace_recovery_codes(
            conn, user.id, [recovery_codes.digest(c) for c in codes], now
        )
        outbox.record(
            conn,
            EventType.CREDENTIAL_ADDED,
            now,
            user_id=user.id,
            session_id=ready.signed_in.session.id,
            method="recovery_code",
        )

    await provider.write(store)
    return render(
        "recovery_codes.html", csrf_token=ready.csrf, codes=codes, continue_url="/account"
    )


# --- removing methods and ending sessions -------------------------------------------------------


async def credential_remove(request: Request) -> Response:
    cred_id = request.path_params["cid"][:64]
    path = f"/account/credentials/{cred_id}/remove"
    if request.method == "GET":
        ready = await _fresh(request, "account.method.remove", path)
        if isinstance(ready, Response):
            return ready
        user_id = ready.signed_in.user.id
        found = await ready.provider.read(
            lambda conn: credential_store.by_id(conn, user_id, cred_id)
        )
        if found is None:
            return RedirectResponse("/account", status_code=303)
        return _confirm(
            ready,
            f"Remove “{found.name}”?",
            "You will no longer be able to sign in with it.",
            path,
            "Remove",
        )
    posted = await _post(request, "account.method.remove", path)
    if isinstance(posted, Response):
        return posted
    ready, _form = posted
    provider, user = ready.provider, ready.signed_in.user
    now = provider.now()

    def remove(conn: Connection) -> None:
        removed = credential_store.remove(conn, user.id, cred_id)
        if removed is None:
            return
        if removed.type == credential_store.TOTP:
            # Recovery codes stand in for the authenticator app; without it they go too.
            credential_store.replace_recovery_codes(conn, user.id, [], now)
        outbox.record(
            conn,
            EventType.CREDENTIAL_REMOVED,
            now,
            user_id=user.id,
            session_id=ready.signed_in.session.id,
            method=removed.type,
            credential_id=removed.id,
        )

    await provider.write(remove)
    return RedirectResponse("/account?notice=removed", status_code=303)


async def session_revoke(request: Request) -> Response:
    sid = request.path_params["sid"][:64]
    path = f"/account/sessions/{sid}/revoke"
    ready = await _confirmed(
        request,
        "account.session.revoke",
        path,
        "Sign out that session?",
        "Whoever uses it will have to sign in again.",
        "Sign it out",
    )
    if isinstance(ready, Response):
        return ready
    provider, user = ready.provider, ready.signed_in.user
    now = provider.now()

    def revoke(conn: Connection) -> None:
        target = session_store.by_id(conn, sid)
        if target is not None and target.user_id == user.id:
            session_store.revoke(conn, sid, "revoked_by_user", now, user.id)

    await provider.write(revoke)
    return RedirectResponse("/account?notice=session_revoked", status_code=303)


async def logout(request: Request) -> Response:
    provider: Provider = request.app.state.provider
    form = await forms.read(request, cookies.read(request, cookies.BROWSER, provider.settings))
    if isinstance(form, Response):
        return form
    session_cookie = cookies.read(request, cookies.SESSION, provider.settings)
    now = provider.now()

    def sign_out(conn: Connection) -> None:
        signed_in = flow.current_session(conn, session_cookie, provider)
        if signed_in is not None:
            session_store.revoke(conn, signed_in.session.id, "logout", now, signed_in.user.id)

    await provider.write(sign_out)
    response = render("logged_out.html", message=None)
    cookies.clear(response, cookies.SESSION, provider.settings)
    return response


async def dev_mail(request: Request) -> Response:
    """Development mode only: the mail FreshID would have sent."""
    provider: Provider = request.app.state.provider
    if not provider.settings.dev_mode or provider.settings.mail_backend != "outbox":
        return error_page("Page not found", "This page exists only in development mode.", None, 404)
    import re

    messages = [
        {
            "to": m.to,
            "subject": m.subject,
            "sent_at": m.date or "",
            "text": m.text,
            "links": re.findall(r"https?://\S+", m.text),
        }
        for m in provider.outbox.messages()
    ]
    return render("dev_mail.html", messages=messages)
