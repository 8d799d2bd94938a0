"""Authenticator-app codes (RFC 6238) and recovery codes, as a second factor or a re-proof.

Both share one attempt cap per user (:data:`freshid.methods.totp.MAX_ATTEMPTS` per window), counted
before checking, so parallel guesses cannot exceed it; a success clears the count, so a user's own
step-ups never lock them out. A TOTP step and a recovery code are each consumed by a conditional
UPDATE in the transaction that records the success.
"""

from __future__ import annotations

from sqlalchemy.engine import Connection
from starlette.requests import Request
from starlette.responses import Response

from freshid.methods import recovery_codes, totp
from freshid.methods.base import MethodFailed
from freshid.provider import Provider
from freshid.storage import credentials as credential_store
from freshid.storage import throttle
from freshid.ui import interaction

ATTEMPTS = "second-factor"


def _give_back(conn: Connection, user_id: str) -> None:
    """A success ends the run of attempts: the cap is on guesses, not on a user's own step-ups."""
    throttle.clear(conn, ATTEMPTS, user_id)


async def _prepare(
    request: Request, method: str
) -> tuple[Provider, interaction.Loaded, str] | Response:
    posted = await interaction.posted(request)
    if isinstance(posted, Response):
        return posted
    provider, loaded, form = posted.provider, posted.loaded, posted.form
    if loaded.signed_in is None or loaded.switching:
        return await interaction.fail(
            provider,
            request,
            loaded,
            method=method,
            reason="no_session",
            user=None,
            message="Sign in first.",
            status_code=400,
        )
    return provider, loaded, form.get("code", "")[:64]


async def submit(request: Request) -> Response:
    prepared = await _prepare(request, "totp")
    if isinstance(prepared, Response):
        return prepared
    provider, loaded, code = prepared
    assert loaded.signed_in is not None
    user, now = loaded.signed_in.user, provider.now()

    def attempt(conn: Connection) -> tuple[int, list[credential_store.Credential]]:
        count = throttle.hit(conn, ATTEMPTS, user.id, now, totp.ATTEMPT_WINDOW)
        creds = [
            c for c in credential_store.for_user(conn, user.id) if c.type == credential_store.TOTP
        ]
        return count, creds

    count, creds = await provider.write(attempt)
    if count > totp.MAX_ATTEMPTS:
        return await interaction.fail(
            provider,
            request,
            loaded,
            method="totp",
            reason="throttled",
            user=user,
            message="Too many attempts. Wait a few minutes, then try again.",
            status_code=429,
        )
    reason = "invalid_code"
    for cred in creds:
        try:
            step = totp.verify(cred.secret or "", code, now, cred.last_used_step)
        except MethodFailed as exc:
            reason = "replayed_code" if exc.reason == "replayed_code" else reason
            continue

        def consume(conn: Connection, cred_id: str = cred.id, step: int = step) -> bool:
            if not credential_store.use_totp_step(conn, cred_id, step, now):
                return False
            _give_back(conn, user.id)
            return True

        return await interaction.succeed(
            provider, request, loaded, user, totp.completed(now), consume
        )
    return await interaction.fail(
        provider,
        request,
        loaded,
        method="totp",
        reason=reason,
        user=user,
        message=(
            "That code was already used. Wait for the next one."
            if reason == "replayed_code"
            else "That code is not right. Try the current one."
        ),
    )


async def recovery(request: Request) -> Response:
    prepared = await _prepare(request, "recovery_code")
    if isinstance(prepared, Response):
        return prepared
    provider, loaded, code = prepared
    assert loaded.signed_in is not None
    user, now = loaded.signed_in.user, provider.now()

    def attempt(conn: Connection) -> tuple[int, list[str]]:
        count = throttle.hit(conn, ATTEMPTS, user.id, now, totp.ATTEMPT_WINDOW)
        return count, credential_store.unused_recovery_digests(conn, user.id)

    count, digests = await provider.write(attempt)
    if count > totp.MAX_ATTEMPTS:
        return await interaction.fail(
            provider,
            request,
            loaded,
            method="recovery_code",
            reason="throttled",
            user=user,
            message="Too many attempts. Wait a few minutes, then try again.",
            status_code=429,
        )
    try:
        digest = recovery_codes.match(code, digests)
    except MethodFailed as exc:
        return await interaction.fail(
            provider,
            request,
            loaded,
            method="recovery_code",
            reason=exc.reason,
            user=user,
            message="That recovery code is not valid.",
        )

    def consume(conn: Connection) -> bool:
        if not credential_store.use_recovery_code(conn, user.id, digest, now):
            return False
        _give_back(conn, user.id)
        return True

    return await interaction.succeed(
        provider, request, loaded, user, recovery_codes.completed(now), consume
    )
