"""Passkeys (WebAuthn Level 2 §7.2) for sign-in and step-up; user verification is required.

The challenge was issued with the page and is consumed here, once. The credential must belong to
the user being re-authenticated (for a first sign-in, it names the user); its signature counter
must move forward, compare-and-set, so a replayed or parallel assertion has no second success.
"""

from __future__ import annotations

from sqlalchemy.engine import Connection
from starlette.requests import Request
from starlette.responses import Response

from freshid.methods import passkey
from freshid.methods.base import CompletedMethod, MethodFailed
from freshid.storage import challenges as challenge_store
from freshid.storage import credentials as credential_store
from freshid.storage import users as user_store
from freshid.ui import interaction


async def submit(request: Request) -> Response:
    posted = await interaction.posted(request)
    if isinstance(posted, Response):
        return posted
    provider, loaded, form = posted.provider, posted.loaded, posted.form
    settings, now = provider.settings, provider.now()
    credential_json = form.get("credential", "")
    cid = request.query_params.get("c", "")[:64]

    def prepare(
        conn: Connection,
    ) -> tuple[bytes | None, credential_store.Credential | None, user_store.User | None]:
        challenge = challenge_store.consume(
            conn, cid, interaction.PASSKEY_CHALLENGE, loaded.id, now
        )
        try:
            stored = credential_store.passkey_by_credential_id(
                conn, passkey.credential_id_of(credential_json)
            )
        except MethodFailed:
            stored = None
        user = user_store.by_id(conn, stored.user_id) if stored else None
        return challenge, stored, user

    challenge, stored, user = await provider.write(prepare)
    outcome = interaction.current_outcome(provider, loaded)
    expected_user = (
        None
        if interaction.wants_login(loaded, outcome) or loaded.signed_in is None
        else loaded.signed_in.user.id
    )
    reason: str | None = None
    if challenge is None:
        reason = "wrong_challenge"
    elif stored is None or user is None or user.disabled:
        reason = "unknown_credential"
    elif expected_user is not None and stored.user_id != expected_user:
        reason = "credential_of_another_user"
    if reason is not None or stored is None or user is None or challenge is None:
        return await interaction.fail(
            provider,
            request,
            loaded,
            method="passkey",
            reason=reason or "invalid",
            user=user,
            message="That passkey could not be used. Try again or choose another way.",
            page_method="passkey",
        )
    try:
        completed, new_count = passkey.verify_assertion(
            credential_json,
            challenge,
            settings.origin,
            settings.rp_id,
            passkey.StoredPasskey(
                credential_store.unb64url(stored.credential_id or ""),
                credential_store.unb64url(stored.public_key or ""),
                stored.sign_count,
                user.id.encode(),
                stored.backup_eligible,
            ),
            require_uv=True,
            now=now,
        )
    except MethodFailed as exc:
        return await interaction.fail(
            provider,
            request,
            loaded,
            method="passkey",
            reason=exc.reason,
            user=user,
            message="That passkey could not be used. Try again or choose another way.",
            page_method="passkey",
        )
    final: CompletedMethod = completed

    def consume(conn: Connection) -> bool:
        return credential_store.record_passkey_use(
            conn, stored.id, stored.sign_count, new_count, now
        )

    return await interaction.succeed(provider, request, loaded, user, final, consume)
