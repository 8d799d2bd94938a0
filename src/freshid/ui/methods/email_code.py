"""Emailed one-time codes ("magic auth"): request, enter the code, or confirm from the link.

The code is bound to the interaction that asked for it (and so to that browser); a new request
supersedes the old code. Opening the link only shows a confirm page: the sign-in happens on its
POST, so mail scanners that fetch links consume nothing. Sending is capped per address and per
interaction, and an unknown address gets the same page as a known one (no enumeration).
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import logging
from collections.abc import Callable
from email.message import EmailMessage

import anyio
from sqlalchemy.engine import Connection
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from freshid.events import outbox
from freshid.events.catalog import EventType
from freshid.methods import email_code
from freshid.methods.base import MethodFailed
from freshid.provider import Provider
from freshid.sessions import cookies
from freshid.storage import email_codes as code_store
from freshid.storage import interactions as interaction_store
from freshid.storage import throttle
from freshid.storage import users as user_store
from freshid.ui import forms, interaction
from freshid.ui.pages import error_page, render

log = logging.getLogger("freshid.mail")
SENDS = "email-code-sends"
MAX_SENDS = 5
SEND_WINDOW = 900
DEAD_LINK = {
    "used": (
        "This sign-in link was already used",
        "Each link works once. If you still need to sign in, go back to the app and start again.",
    ),
    "superseded": (
        "This sign-in link was replaced",
        "A newer code was sent. Use the link or code from the latest email.",
    ),
    "expired": (
        "This sign-in link has expired",
        "Links work for 10 minutes. Go back to the app and request a new code.",
    ),
}


def _matches_any(code: str, records: list[email_code.StoredEmailCode]) -> bool:
    """Whether ``code`` is the code of one of ``records`` (replaced codes of this flow)."""
    cleaned = code.replace(" ", "")
    if len(cleaned) != email_code.CODE_DIGITS or not (cleaned.isascii() and cleaned.isdigit()):
        return False
    found = False
    for r in records:
        digest = email_code.code_digest(r.id, cleaned)
        found |= hmac.compare_digest(digest.encode("ascii"), r.code_digest.encode("ascii"))
    return found


def _dead_link(record: email_code.StoredEmailCode, now: int) -> str | None:
    """Why a link can no longer sign in, whatever browser opens it (None: it still can)."""
    if record.used_at is not None:
        return "used"
    if record.superseded:
        return "superseded"
    if now >= record.expires_at:
        return "expired"
    return None


async def send(request: Request) -> Response:
    posted = await interaction.posted(request)
    if isinstance(posted, Response):
        return posted
    provider, loaded, form = posted.provider, posted.loaded, posted.form
    outcome = interaction.current_outcome(provider, loaded)
    login = interaction.wants_login(loaded, outcome)
    if login:
        # "Send a new code" on the code page carries no address: reuse the one asked for.
        asked = form.get("email") or loaded.params.get("email") or ""
        address = user_store.normalise_email(asked)[:320]
    else:
        assert loaded.signed_in is not None
        address = loaded.signed_in.user.email
    if "@" not in address:
        return await interaction.fail(
            provider,
            request,
            loaded,
            method="email_code",
            reason="invalid_email",
            user=None,
            status_code=400,
            message="Enter the email address of your account.",
        )
    now = provider.now()
    issued = email_code.new_challenge(now)

    def store(conn: Connection) -> tuple[user_store.User | None, bool]:
        per_address = throttle.hit(conn, SENDS, address, now, SEND_WINDOW)
        per_flow = throttle.hit(conn, SENDS, loaded.id, now, SEND_WINDOW)
        if per_address > MAX_SENDS or per_flow > MAX_SENDS:
            return None, False
        user = user_store.by_email(conn, address)
        usable = user if user is not None and not user.disabled else None
        code_store.issue(conn, loaded.id, usable.id if usable else None, address, issued, now)
        interaction_store.update_params(conn, loaded.id, {**loaded.params, "email": address})
        return usable, True

    user, allowed = await provider.write(store)
    if not allowed:
        return await interaction.fail(
            provider,
            request,
            loaded,
            method="email_code",
            reason="throttled",
            user=None,
            status_code=429,
            message="Too many codes requested. Wait a few minutes.",
        )
    if user is not None:
        link = f"{provider.issuer}/email/confirm/{issued.link_token}"
        compose = functools.partial(
            email_code.compose,
            address,
            issued.code,
            link,
            "FreshID",
            loaded.client_name or "your FreshID account",
            now,
            mail_from=provider.settings.mail_from,
        )
        # Composed and delivered in the background: doing either here, and only for known
        # addresses, would let the response time tell which addresses have accounts.
        task = asyncio.get_running_loop().create_task(_deliver(provider, compose))
        _DELIVERIES.add(task)
        task.add_done_callback(_DELIVERIES.discard)
    return RedirectResponse(f"/interaction/{loaded.id}?method=email_code_sent", status_code=303)


_DELIVERIES: set[asyncio.Task[None]] = set()
"""Deliveries in flight (the event loop keeps only weak references to tasks)."""


async def _deliver(provider: Provider, compose: Callable[[], EmailMessage]) -> None:
    try:
        message = await anyio.to_thread.run_sync(compose)
        await provider.mailer.send(message)
    except Exception as exc:  # the user can ask for a new code; the page must not fail
        log.warning("emailed code not delivered: %s", type(exc).__name__)


async def verify(request: Request) -> Response:
    posted = await interaction.posted(request)
    if isinstance(posted, Response):
        return posted
    provider, loaded, form = posted.provider, posted.loaded, posted.form

    code = form.get("code", "")[:32]

    def reserve(
        conn: Connection,
    ) -> tuple[tuple[email_code.StoredEmailCode, str | None] | None, bool]:
        found = code_store.current(conn, loaded.id)
        if found is None:
            return None, False
        record = code_store.reserve_attempt(conn, found[0].id)
        replaced = code_store.superseded(conn, loaded.id)
        return ((record, found[1]) if record else None), _matches_any(code, replaced)

    reserved, replaced = await provider.write(reserve)
    return await _complete(provider, request, loaded, reserved, code, None, replaced=replaced)


async def _complete(
    provider: Provider,
    request: Request,
    loaded: interaction.Loaded,
    reserved: tuple[email_code.StoredEmailCode, str | None] | None,
    code: str | None,
    link_token: str | None,
    *,
    replaced: bool = False,
) -> Response:
    now = provider.now()
    reason = "no_code"
    user = None
    if reserved is not None:
        record, user_id = reserved
        try:
            completed = email_code.check(record, code, now, link_token=link_token)
            user = (
                await provider.read(lambda conn: user_store.by_id(conn, user_id))
                if user_id
                else None
            )
            if user is not None and not user.disabled:
                if (
                    loaded.signed_in
                    and not loaded.switching
                    and loaded.signed_in.user.id != user.id
                    and not interaction.wants_login(
                        loaded, interaction.current_outcome(provider, loaded)
                    )
                ):
                    reason = "wrong_user"
                else:
                    return await interaction.succeed(
                        provider,
                        request,
                        loaded,
                        user,
                        completed,
                        lambda conn: code_store.mark_used(conn, record.id, now),
                    )
            else:
                reason = "unknown_user"
        except MethodFailed as exc:
            # A code from an earlier email of this flow: say a newer one was sent.
            reason = "superseded" if exc.reason == "invalid_code" and replaced else exc.reason
    messages = {
        "expired": "That code has expired. Request a new one.",
        "used": "That code was already used. Request a new one.",
        "superseded": "A newer code was sent. Use the latest one.",
        "too_many_attempts": "Too many wrong tries. Request a new code.",
    }
    return await interaction.fail(
        provider,
        request,
        loaded,
        method="email_code",
        reason=reason,
        user=user,
        message=messages.get(reason, "That code is not right."),
        page_method="email_code_sent",
        status_code=429 if reason == "too_many_attempts" else 401,
    )


async def link_page(request: Request) -> Response:
    """GET from the email: a confirm page only — following a link must change nothing."""
    provider: Provider = request.app.state.provider
    token = request.path_params["token"]
    found = await provider.read(
        lambda conn: code_store.by_link(conn, email_code.link_digest(token))
    )
    if found is None or len(token) > 128:
        return error_page(
            "This sign-in link is not valid",
            "It may have expired or been replaced by a newer one. Request a new code.",
        )
    dead = _dead_link(found[0], provider.now())
    if dead is not None:
        return error_page(*DEAD_LINK[dead])
    browser, fresh = cookies.browser_id(request, provider.settings)
    response = render(
        "email_link.html",
        csrf_token=cookies.csrf_token(browser),
        email=found[3],
        client_name=None,
        action_url=f"/email/confirm/{token}",
        error=None,
    )
    if fresh:
        cookies.write(response, cookies.BROWSER, browser, provider.settings, max_age=None)
    return response


async def link_confirm(request: Request) -> Response:
    provider: Provider = request.app.state.provider
    token = request.path_params["token"][:128]
    browser = cookies.read(request, cookies.BROWSER, provider.settings)
    form = await forms.read(request, browser)
    if isinstance(form, Response):
        return form
    found = await provider.read(
        lambda conn: code_store.by_link(conn, email_code.link_digest(token))
    )
    if found is None:
        return error_page(
            "This sign-in link is not valid",
            "It may have expired or been replaced by a newer one. Request a new code.",
        )
    record, iid, user_id, _address = found
    loaded = await interaction.load(provider, request, iid)
    dead = _dead_link(record, provider.now())
    if isinstance(loaded, Response) and dead is not None:
        # Its sign-in is over (used, replaced or expired): say so, and record the attempt.
        now = provider.now()
        ctx = forms.request_context(request, provider, None)
        await provider.write(
            lambda conn: outbox.record(
                conn,
                EventType.AUTHENTICATION_FAILED,
                now,
                user_id=user_id,
                method="email_code",
                reason=dead,
                ip=ctx.ip,
                user_agent=ctx.user_agent,
            )
        )
        return error_page(*DEAD_LINK[dead])
    if isinstance(loaded, Response):
        return error_page(
            "Open this link where you started",
            "For your safety, a sign-in link only works in the browser where you asked for it. "
            "There, you can also type the 6-digit code from the email.",
        )
    return await _complete(provider, request, loaded, (record, user_id), None, token)
