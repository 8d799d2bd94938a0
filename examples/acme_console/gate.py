"""Where Acme Console asks ``freshid_guard`` whether a sensitive action may happen now.

Every freshness decision of the console goes through :class:`Gate`; there is no age arithmetic
anywhere else. Before an action the gate verifies the access token kept server-side for this
session (RFC 9068, by the guard) and calls ``guard.require_fresh(token, action)``:

* **allowed** — the view acts. For a ``bind`` action the guard has just consumed the proof in its
  replay store, so the same token will not allow a second one; the guard has also reported the
  evidence (user, session, action, ``auth_time``, ``amr``, token id) to the activity log.
* **step-up** (no token, an expired or invalid one, or a proof too old, too weak, for another
  action or already used) — the gate answers with the guard's browser redirect
  (:func:`freshid_guard.step_up_redirect`): FreshID's ``/authorize`` with the action's
  ``max_age``, a ``login_hint``, PKCE, a nonce and, for a bound action, RFC 9396
  ``authorization_details``. The ``state`` maps, on our side only, to the path that brings the user
  back to the exact action: a page for a GET, a confirm page for a POST.

:meth:`Gate.complete` finishes a step-up when FreshID sends the browser back: it redeems the code,
insists on the same user, keeps the new access token server-side, and checks with the guard's pure
:func:`~freshid_guard.judge` that FreshID really delivered the proof the action needs (a relying
party must never assume the provider honoured ``max_age``, OIDC Core §3.1.2.1), so a provider that
does not cannot send the user round in circles.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import anyio.to_thread
from freshid_guard import (
    ActionPolicy,
    Allowed,
    Guard,
    GuardRefusal,
    PendingStore,
    ProviderUnavailable,
    StepUp,
    StepUpReason,
    VerifiedToken,
    judge,
    step_up_redirect,
)
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from .config import AcmeConfig
from .errors import ConsoleError
from .oidc import FreshIDClient
from .session import AcmeSession, SignedInUser
from .store import ServerSession
from .wording import duration, requirement

__all__ = ["ActionStatus", "Gate"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ActionStatus:
    """What a page says next to an action: what it needs, and whether the current proof does."""

    policy: ActionPolicy
    requirement: str
    covered: bool
    note: str


class Gate:
    """The guard, the pending step-ups, and the OIDC client that sends users to re-prove it."""

    def __init__(
        self,
        config: AcmeConfig,
        guard: Guard,
        client: FreshIDClient,
        pending: PendingStore,
    ) -> None:
        self.config = config
        self.guard = guard
        self.client = client
        self.pending = pending

    def policy(self, action: str) -> ActionPolicy:
        return self.guard.policy(action)

    # --- before an action -------------------------------------------------------------------

    async def _verified(self, server: ServerSession, policy: ActionPolicy) -> VerifiedToken | None:
        """The session's token for this action, verified; None if there is no usable one."""
        raw = server.token_for(policy.action, policy.bind)
        if raw is None:
            return None
        try:
            token = await self.guard.authenticate_async(raw)
        except ProviderUnavailable as exc:
            raise ConsoleError("provider_unavailable") from exc
        except GuardRefusal as refusal:  # expired, most often: the proof is old anyway
            logger.info("stored token refused for %s: %s", policy.action, refusal.description)
            return None
        return token if token.sub == server.sub else None

    async def require(
        self,
        user: SignedInUser,
        server: ServerSession,
        action: str,
        *,
        return_to: str,
    ) -> Allowed | Response:
        """``Allowed`` if the action may happen now; else the redirect to re-prove it, which
        brings the browser back to ``return_to`` (a GET path)."""
        policy = self.policy(action)
        token = await self._verified(server, policy)
        reason: StepUpReason | None = None
        if token is not None:
            if self.guard.freshness.needs_blocking_io(action):
                outcome = await anyio.to_thread.run_sync(self.guard.require_fresh, token, action)
            else:
                outcome = self.guard.require_fresh(token, action)
            if isinstance(outcome, Allowed):
                return outcome
            reason = outcome.reason
        logger.info("step-up for %s (%s)", action, reason or "no usable token")
        return await self._step_up(user, server, policy, return_to, reason)

    async def _step_up(
        self,
        user: SignedInUser,
        server: ServerSession,
        policy: ActionPolicy,
        return_to: str,
        reason: StepUpReason | None,
    ) -> Response:
        redirect = step_up_redirect(
            authorization_endpoint=await self.client.authorization_endpoint(),
            client_id=self.config.client_id,
            redirect_uri=self.config.redirect_uri,
            policy=policy,
            return_to=return_to,
            now=self.guard.now(),
            reason=reason,
            scope=self.config.scope,
            login_hint=user.email,
        )
        self.pending.save(redirect.pending)
        server.step_up_states.add(redirect.pending.state)
        return RedirectResponse(redirect.url, status_code=303)

    async def status(self, server: ServerSession, action: str) -> ActionStatus:
        """For display: does the session's proof cover ``action`` right now? Uses the guard's
        pure decision, so looking consumes nothing and records no evidence."""
        policy = self.policy(action)
        token = await self._verified(server, policy)
        verdict = judge(token, policy, self.guard.now()) if token is not None else None
        text = requirement(policy)
        if policy.bind:
            note = "Every time, FreshID asks you to confirm it's you for this action alone."
            return ActionStatus(policy, text, False, note)
        if isinstance(verdict, Allowed):
            left = duration(policy.max_age - verdict.proof_age)
            return ActionStatus(policy, text, True, f"Your last proof covers this for {left}.")
        note = "FreshID will ask you to confirm it's you first."
        return ActionStatus(policy, text, False, note)

    # --- back from FreshID ------------------------------------------------------------------

    def is_step_up(self, request: Request, server: ServerSession | None) -> bool:
        """Whether this callback answers a step-up this browser started."""
        state = request.query_params.get("state")
        return server is not None and state is not None and state in server.step_up_states

    async def complete(
        self, request: Request, session: AcmeSession, user: SignedInUser, server: ServerSession
    ) -> str:
        """Finish a step-up (see the module docstring); returns the path to go back to."""
        state = request.query_params.get("state", "")
        server.step_up_states.discard(state)
        pending = self.pending.pop(state, self.guard.now())
        if pending is None:
            raise ConsoleError("mismatching_state")
        result = await self.client.complete_step_up(request, pending)
        try:
            proved = SignedInUser.from_claims(result.claims)
        except ValueError as exc:
            raise ConsoleError("invalid_id_token", "The ID token has no subject.") from exc
        if proved.sub != user.sub:
            logger.warning("step-up completed for a different subject; signing out")
            session.clear()
            raise ConsoleError("step_up_other_account")
        try:
            token = await self.guard.authenticate_async(result.access_token)
        except ProviderUnavailable as exc:
            raise ConsoleError("provider_unavailable") from exc
        except GuardRefusal as exc:
            logger.warning("step-up access token refused: %s", exc.description)
            raise ConsoleError("invalid_access_token") from exc
        if token.sub != user.sub:
            session.clear()
            raise ConsoleError("step_up_other_account")

        session.proved_again(proved, result.id_token)
        policy = self.policy(pending.action)
        if policy.bind:
            server.bound_tokens[policy.action] = result.access_token
        else:
            server.access_token = result.access_token
        if isinstance(judge(token, policy, self.guard.now()), StepUp):
            logger.warning("step-up for %s did not deliver the proof it needs", policy.action)
            raise ConsoleError("step_up_not_fresh")
        return pending.return_to
