"""Password sign-in and re-authentication (pure check in :mod:`freshid.methods.password`).

Attempts are reserved against the throttle before the hash is computed; unknown accounts and
disabled ones spend the same time and get the same answer as a wrong password.
"""

from __future__ import annotations

from sqlalchemy.engine import Connection
from starlette.requests import Request
from starlette.responses import Response

from freshid.methods.base import CompletedMethod, MethodFailed
from freshid.provider import Provider
from freshid.storage import throttle
from freshid.storage import users as user_store
from freshid.ui import forms, interaction


def limits(provider: Provider) -> throttle.Limits:
    s = provider.settings
    return throttle.Limits(
        s.throttle_window, s.throttle_per_account_ip, s.throttle_per_ip, s.throttle_per_account
    )


async def submit(request: Request) -> Response:
    posted = await interaction.posted(request)
    if isinstance(posted, Response):
        return posted
    provider, loaded, form = posted.provider, posted.loaded, posted.form
    outcome = interaction.current_outcome(provider, loaded)
    login = interaction.wants_login(loaded, outcome)
    if login:
        email = user_store.normalise_email(form.get("email", ""))[:320]
    else:
        assert loaded.signed_in is not None
        email = loaded.signed_in.user.email
    ip = forms.request_context(request, provider, None).ip or ""
    now = provider.now()

    def reserve(conn: Connection) -> tuple[user_store.User | None, bool]:
        user = user_store.by_email(conn, email) if email else None
        allowed = throttle.reserve_attempt(
            conn, email, ip, user.id if user else None, now, limits(provider)
        )
        return user, allowed

    user, allowed = await provider.write(reserve)
    usable = user if user is not None and not user.disabled else None
    if not allowed:
        return await interaction.fail(
            provider,
            request,
            loaded,
            method="password",
            reason="throttled",
            user=user,
            message="Too many attempts. Wait a few minutes, then try again.",
            status_code=429,
            email=email,
        )
    completed: CompletedMethod | None = None
    reason = "invalid_password"
    try:
        completed = await provider.password.verify(
            usable.password_hash if usable else None, form.get("password", ""), provider.now()
        )
    except MethodFailed as exc:
        reason = "user_disabled" if user is not None and user.disabled else exc.reason
    if completed is None or usable is None:
        message = (
            "The email address or password is incorrect."
            if login
            else "That password is incorrect."
        )
        return await interaction.fail(
            provider,
            request,
            loaded,
            method="password",
            reason=reason,
            user=user,
            message=message,
            email=email,
        )

    def clear(conn: Connection) -> None:
        throttle.succeeded(conn, usable.email, ip, usable.id, now)

    return await interaction.succeed(provider, request, loaded, usable, completed, clear)
