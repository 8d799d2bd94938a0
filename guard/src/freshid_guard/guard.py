"""The :class:`Guard`: verification, keys, caches and the freshness decision behind one object.

Two layers:

- :meth:`Guard.check` / :meth:`Guard.check_async` return :class:`~freshid_guard.decision.Allowed`
  or raise a :class:`~freshid_guard.errors.GuardRefusal` (a step-up is
  :class:`~freshid_guard.errors.StepUpRequired`).
- :meth:`Guard.protect` / :meth:`Guard.protect_async` never raise: they return ``Allowed`` or a
  :class:`Denial` — status, headers and body ready for any framework — which is what the adapters
  use. Unexpected errors (a failing evidence hook, a replay store down) become a bare ``500`` and
  are logged without the token. :meth:`Guard.protect_cached`, which async adapters ask first,
  gives the same answer synchronously when the token is already verified and allowed, and
  ``None`` for everything else.

Bearer tokens are read from the ``Authorization`` header (RFC 6750 §2.1: the scheme is
case-insensitive; a request with two such headers is ``invalid_request``).
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio.to_thread
import httpx

from freshid_guard.challenge import (
    PendingStore,
    UnsafeReturnPath,
    refusal_challenge,
    safe_return_path,
    step_up_redirect,
)
from freshid_guard.decision import Allowed, EvidenceHook, Freshness, ReplayStore, StepUp
from freshid_guard.errors import (
    GuardRefusal,
    InsufficientScope,
    InvalidRequest,
    InvalidToken,
    ProviderUnavailable,
    StepUpRequired,
    TokenMissing,
    UnknownKey,
)
from freshid_guard.jose import KeySet
from freshid_guard.jwks import (
    DEFAULT_TIMEOUT,
    JWKSCache,
    ProviderMetadata,
    fetch_keys,
    fetch_keys_async,
    fetch_metadata,
    fetch_metadata_async,
)
from freshid_guard.policy import ActionPolicy, load_policies_file
from freshid_guard.verify import (
    DEFAULT_ALGORITHMS,
    DEFAULT_LEEWAY,
    TokenVerifier,
    VerifiedToken,
    VerifiedTokenCache,
)

log = logging.getLogger("freshid_guard")

# RFC 6750 §2.1 b64token. Case-sensitive on purpose: an IGNORECASE class is several times slower,
# and this runs on every request (the scheme's case is handled apart).
_TOKEN68 = re.compile(r"[A-Za-z0-9\-._~+/]+=*")

Authorization = str | Sequence[str] | None
"""The ``Authorization`` header: its value, every value a request carried, or ``None``."""


def bearer_token(authorization: Authorization) -> str:
    """The bearer token of an ``Authorization`` header (RFC 6750 §2.1)."""
    token = _bearer_credentials(authorization)
    if _TOKEN68.fullmatch(token) is None:
        raise InvalidToken("the bearer token is malformed")
    return token


def _bearer_credentials(authorization: Authorization) -> str:
    """What follows ``Bearer``, its syntax not checked: the guard's own path looks the text up in
    the verified-token cache first, and :meth:`TokenVerifier.parse`, which refuses anything that
    is not a compact JWS (a stricter syntax than RFC 6750's ``b64token``), checks the rest."""
    if authorization is None:
        raise TokenMissing("no bearer token")
    if not isinstance(authorization, str):
        values = list(authorization)
        if len(values) > 1:
            raise InvalidRequest("more than one Authorization header")
        if not values:
            raise TokenMissing("no bearer token")
        authorization = values[0]
    scheme, _, rest = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise TokenMissing("no bearer token")
    return rest.lstrip(" ")


@dataclass(frozen=True)
class Denial:
    """A refusal ready to send: the adapters copy it into their framework's response."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    refusal: GuardRefusal | None = None

    @property
    def media_type(self) -> str:
        return dict(self.headers).get("Content-Type", "application/json")


@dataclass(frozen=True)
class BrowserStepUp:
    """Browser routes answer a refusal with a redirect to the provider instead of a 401.

    ``authorization_endpoint`` is discovered from the issuer when not given. The app's callback
    route takes ``state`` from the provider's answer, pops the :class:`~freshid_guard.challenge.
    PendingStepUp` from ``pending_store`` and, after redeeming the code, sends the user to
    ``pending.return_to``.
    """

    client_id: str
    redirect_uri: str
    pending_store: PendingStore
    authorization_endpoint: str | None = None
    scope: str = "openid"


@dataclass(frozen=True)
class BrowserRequest:
    """What a browser route knows about the request being refused."""

    config: BrowserStepUp
    return_to: str
    id_token_hint: str | None = None
    login_hint: str | None = None


class Guard:
    """Verifies FreshID access tokens and enforces the action catalog.

    ``audience`` defaults to the issuer (what FreshID puts in ``aud`` today). The HTTP clients are
    used only to fetch discovery metadata and keys; by default the guard opens its own.
    """

    def __init__(
        self,
        issuer: str,
        policies: Mapping[str, ActionPolicy],
        *,
        audience: str | None = None,
        algorithms: frozenset[str] = DEFAULT_ALGORITHMS,
        leeway: int = DEFAULT_LEEWAY,
        replay_store: ReplayStore | None = None,
        on_evidence: EvidenceHook | None = None,
        cache_size: int = 1024,
        jwks_ttl: int = 300,
        jwks_min_refetch_interval: int = 30,
        jwks_max_stale: int = 86_400,
        http_client: httpx.Client | None = None,
        async_http_client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
        realm: str | None = None,
    ) -> None:
        self.verifier = TokenVerifier(
            issuer, audience=audience, algorithms=algorithms, leeway=leeway
        )
        self.freshness = Freshness(
            policies, replay_store=replay_store, on_evidence=on_evidence, leeway=leeway
        )
        self.jwks = JWKSCache(
            issuer,
            ttl=jwks_ttl,
            min_refetch_interval=jwks_min_refetch_interval,
            max_stale=jwks_max_stale,
        )
        self.cache = VerifiedTokenCache(cache_size)
        self.realm = realm
        self._clock = clock
        self._http = http_client
        self._owns_http = http_client is None
        self._async_http = async_http_client

    @classmethod
    def from_policy_file(cls, issuer: str, path: str | Path, **options: Any) -> Guard:
        """A guard whose catalog is the TOML file at ``path`` (:mod:`freshid_guard.policy`)."""
        return cls(issuer, load_policies_file(path), **options)

    @property
    def issuer(self) -> str:
        return self.verifier.issuer

    @property
    def policies(self) -> Mapping[str, ActionPolicy]:
        return self.freshness.policies

    def policy(self, action: str) -> ActionPolicy:
        """The action's policy; raises :class:`~freshid_guard.errors.UnknownAction`."""
        return self.freshness.policy(action)

    def now(self) -> int:
        return int(self._clock())

    def close(self) -> None:
        if self._http is not None and self._owns_http:
            self._http.close()
            self._http = None

    def _client(self) -> httpx.Client:
        if self._http is None:
            self._http = httpx.Client(timeout=DEFAULT_TIMEOUT, follow_redirects=False)
        return self._http

    # --- verification -----------------------------------------------------------------------

    def authenticate(self, token: str) -> VerifiedToken:
        """Verify an access token (fetching keys if needed); raises ``GuardRefusal``."""
        now = self.now()
        verified = self.cache.get(token, now)
        return verified if verified is not None else self._verify(token, now)

    async def authenticate_async(self, token: str) -> VerifiedToken:
        """:meth:`authenticate` for ``asyncio`` apps."""
        now = self.now()
        verified = self.cache.get(token, now)
        return verified if verified is not None else await self._verify_async(token, now)

    def _verify(self, token: str, now: int) -> VerifiedToken:
        """Verify a token the cache does not hold, and remember it."""
        parsed = self.verifier.parse(token)  # a malformed token never causes a key fetch
        keys = self.jwks.fresh(now)
        if keys is None:
            keys = fetch_keys(self.jwks, self._client(), now)
        self.cache.clear_if_keys_changed(keys.fingerprint)
        try:
            verified = self.verifier.verify_parsed(parsed, keys, now)
        except UnknownKey:
            keys = fetch_keys(self.jwks, self._client(), now, unknown_kid=True)
            self.cache.clear_if_keys_changed(keys.fingerprint)
            verified = self.verifier.verify_parsed(parsed, keys, now)
        self.cache.put(token, verified, keys.fingerprint)
        return verified

    async def _verify_async(self, token: str, now: int) -> VerifiedToken:
        """:meth:`_verify` for ``asyncio`` apps: only a key fetch awaits; verification itself
        runs inline: it is about 70 µs of CPU, most of it the ECDSA verify, and handing it to a
        thread would cost the event loop more than that."""
        parsed = self.verifier.parse(token)
        keys = self.jwks.fresh(now)
        if keys is None:
            keys = await self._keys_async(now, unknown_kid=False)
        self.cache.clear_if_keys_changed(keys.fingerprint)
        try:
            verified = self.verifier.verify_parsed(parsed, keys, now)
        except UnknownKey:
            keys = await self._keys_async(now, unknown_kid=True)
            self.cache.clear_if_keys_changed(keys.fingerprint)
            verified = self.verifier.verify_parsed(parsed, keys, now)
        self.cache.put(token, verified, keys.fingerprint)
        return verified

    async def _keys_async(self, now: int, *, unknown_kid: bool) -> KeySet:
        if not self.jwks.should_fetch(now, unknown_kid=unknown_kid):
            return self.jwks.result(now)
        if self._async_http is not None:
            return await fetch_keys_async(self.jwks, self._async_http, now, unknown_kid=unknown_kid)
        # A client per (rare) fetch: an AsyncClient's connections belong to one event loop.
        async with httpx.AsyncClient(timeout=DEFAULT_TIMEOUT, follow_redirects=False) as client:
            return await fetch_keys_async(self.jwks, client, now, unknown_kid=unknown_kid)

    # --- decisions --------------------------------------------------------------------------

    def require_fresh(self, token: VerifiedToken, action: str) -> Allowed | StepUp:
        """Judge a verified token for ``action`` now (consuming a bound proof if allowed)."""
        return self.freshness.require_fresh(token, action, self.now())

    def check(
        self, authorization: Authorization, action: str, *, scopes: frozenset[str] = frozenset()
    ) -> Allowed:
        """Verify the request's bearer token and decide ``action``; raises ``GuardRefusal``."""
        policy = self.freshness.policy(action)
        now = int(self._clock())
        credentials = _bearer_credentials(authorization)
        # The cache is keyed by the exact text of tokens that passed every check, so a hit needs
        # no syntax check either; only a new token is checked, then verified.
        token = self.cache.get(credentials, now)
        if token is None:
            token = self._verify(credentials, now)
        if scopes:
            _check_scopes(token, scopes)
        outcome = self.freshness.decide(token, policy, now)
        if isinstance(outcome, StepUp):
            raise StepUpRequired(outcome)
        return outcome

    async def check_async(
        self, authorization: Authorization, action: str, *, scopes: frozenset[str] = frozenset()
    ) -> Allowed:
        """:meth:`check` for ``asyncio`` apps (a blocking replay store runs in a thread)."""
        policy = self.freshness.policy(action)
        now = int(self._clock())
        credentials = _bearer_credentials(authorization)
        token = self.cache.get(credentials, now)
        if token is None:
            token = await self._verify_async(credentials, now)
        if scopes:
            _check_scopes(token, scopes)
        if policy.bind and self.freshness.replay_store.blocking:
            outcome = await anyio.to_thread.run_sync(self.freshness.decide, token, policy, now)
        else:
            outcome = self.freshness.decide(token, policy, now)
        if isinstance(outcome, StepUp):
            raise StepUpRequired(outcome)
        return outcome

    # --- answers for adapters ---------------------------------------------------------------

    def protect(
        self,
        authorization: Authorization,
        action: str,
        *,
        scopes: frozenset[str] = frozenset(),
        browser: BrowserRequest | None = None,
    ) -> Allowed | Denial:
        """:meth:`check`, answering every refusal with a :class:`Denial`; never raises."""
        try:
            try:
                return self.check(authorization, action, scopes=scopes)
            except (TokenMissing, InvalidToken, StepUpRequired) as refusal:
                if browser is None:
                    raise
                endpoint = browser.config.authorization_endpoint
                if endpoint is None:
                    endpoint = fetch_metadata(
                        self.jwks, self._client(), self.now()
                    ).authorization_endpoint
                return self._redirect(refusal, action, browser, endpoint)
        except GuardRefusal as refusal:
            return self.deny(refusal)
        except Exception:
            log.exception("freshid_guard: unexpected error while protecting %r", action)
            return _internal_error()

    async def protect_async(
        self,
        authorization: Authorization,
        action: str,
        *,
        scopes: frozenset[str] = frozenset(),
        browser: BrowserRequest | None = None,
    ) -> Allowed | Denial:
        """:meth:`protect` for ``asyncio`` apps."""
        try:
            try:
                return await self.check_async(authorization, action, scopes=scopes)
            except (TokenMissing, InvalidToken, StepUpRequired) as refusal:
                if browser is None:
                    raise
                endpoint = browser.config.authorization_endpoint
                if endpoint is None:
                    endpoint = (await self._metadata_async()).authorization_endpoint
                return self._redirect(refusal, action, browser, endpoint)
        except GuardRefusal as refusal:
            return self.deny(refusal)
        except Exception:
            log.exception("freshid_guard: unexpected error while protecting %r", action)
            return _internal_error()

    def protect_cached(
        self, authorization: Authorization, action: str, *, scopes: frozenset[str] = frozenset()
    ) -> Allowed | Denial | None:
        """The answer of :meth:`protect_async` when it can be given now, without I/O: the token
        is in the verified-token cache, the action is allowed, and no blocking replay store is
        involved. Otherwise ``None``, with no side effect (a refusal changes no state), and the
        caller awaits :meth:`protect_async`, which decides everything afresh.

        Async adapters call it first: a request with a known token then costs no coroutine, no
        exception and no browser bookkeeping — a few microseconds, on every request of a session.
        Never raises; a failing evidence hook gives the same bare ``500`` as :meth:`protect`.
        """
        try:
            policy = self.freshness.policies.get(action)
            if policy is None:
                return None
            now = int(self._clock())
            if isinstance(authorization, str) and authorization.startswith("Bearer "):
                # The form clients send. Cached tokens contain no spaces, so on a hit this is
                # exactly the token _bearer_credentials would extract; a miss goes the full way.
                credentials = authorization[7:]
            else:
                credentials = _bearer_credentials(authorization)
            token = self.cache.get(credentials, now)
            if token is None or (policy.bind and self.freshness.replay_store.blocking):
                return None
            if scopes and not scopes <= token.scope:
                return None
            outcome = self.freshness.decide(token, policy, now)
        except GuardRefusal:
            return None
        except Exception:
            log.exception("freshid_guard: unexpected error while protecting %r", action)
            return _internal_error()
        return outcome if isinstance(outcome, Allowed) else None

    async def _metadata_async(self) -> ProviderMetadata:
        if self._async_http is not None:
            return await fetch_metadata_async(self.jwks, self._async_http, self.now())
        async with httpx.AsyncClient(timeout=DEFAULT_TIMEOUT, follow_redirects=False) as client:
            return await fetch_metadata_async(self.jwks, client, self.now())

    def deny(self, refusal: GuardRefusal) -> Denial:
        """The API answer to a refusal: its status, a ``WWW-Authenticate`` challenge (RFC 6750
        §3, RFC 9470 §3) and a small JSON body."""
        headers: list[tuple[str, str]] = [
            ("Content-Type", "application/json"),
            ("Cache-Control", "no-store"),
        ]
        body: dict[str, Any] = {}
        if isinstance(refusal, ProviderUnavailable):
            headers.append(("Retry-After", str(self.jwks.min_refetch_interval or 1)))
            body = {"error": "temporarily_unavailable", "error_description": refusal.description}
        else:
            headers.append(("WWW-Authenticate", refusal_challenge(refusal, realm=self.realm)))
            if refusal.error is not None:
                body = {"error": refusal.error, "error_description": refusal.description}
            if isinstance(refusal, StepUpRequired):
                step_up = refusal.step_up
                body["action"] = step_up.action
                body["max_age"] = step_up.max_age
                if step_up.acr_values is not None:
                    body["acr_values"] = step_up.acr_values
        return Denial(refusal.status, tuple(headers), json.dumps(body).encode(), refusal)

    def _redirect(
        self,
        refusal: GuardRefusal,
        action: str,
        browser: BrowserRequest,
        endpoint: str | None,
    ) -> Denial:
        if endpoint is None:
            raise ProviderUnavailable("the provider advertises no authorization_endpoint")
        try:
            return_to = safe_return_path(browser.return_to)
        except UnsafeReturnPath:
            return_to = "/"
        reason = refusal.step_up.reason if isinstance(refusal, StepUpRequired) else None
        redirect = step_up_redirect(
            authorization_endpoint=endpoint,
            client_id=browser.config.client_id,
            redirect_uri=browser.config.redirect_uri,
            policy=self.policy(action),
            return_to=return_to,
            now=self.now(),
            reason=reason,
            scope=browser.config.scope,
            login_hint=browser.login_hint,
            id_token_hint=browser.id_token_hint,
        )
        browser.config.pending_store.save(redirect.pending)
        headers = (
            ("Location", redirect.url),
            ("Cache-Control", "no-store"),
            ("Content-Type", "text/plain; charset=utf-8"),
        )
        return Denial(303, headers, b"Re-authentication required", refusal)


def safe_hint(getter: Callable[[Any], str | None] | None, request: Any) -> str | None:
    """Call an app's ``id_token_hint`` getter; a failing getter only loses the hint."""
    if getter is None:
        return None
    try:
        return getter(request)
    except Exception:
        log.exception("freshid_guard: the id_token_hint getter failed")
        return None


def _check_scopes(token: VerifiedToken, scopes: frozenset[str]) -> None:
    missing = scopes - token.scope
    if missing:
        raise InsufficientScope(f"the token lacks scope {' '.join(sorted(missing))}", scopes)


def _internal_error() -> Denial:
    headers = (("Content-Type", "application/json"), ("Cache-Control", "no-store"))
    return Denial(500, headers, b'{"error":"server_error"}', None)
