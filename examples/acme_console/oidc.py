"""The console's OpenID Connect client: Authlib's Starlette integration behind a typed wrapper.

Authlib does the protocol work a relying party must not hand-roll: discovery, ``state``,
``nonce``, PKCE S256 (RFC 7636), the code exchange with client authentication, and ID token
validation (signature against the provider's JWKS, ``iss``, ``aud``, ``exp``, ``nonce``,
``at_hash``; OIDC Core §3.1.3.7). This module adds the two checks Authlib 1.9 leaves to us:

* the discovered ``issuer`` must equal the configured one (OIDC Discovery §4.3), and
* the ``iss`` authorization response parameter must name that issuer (RFC 9207, mix-up defence),
  and must be present when the provider says it sends it.

Step-ups are started by ``freshid_guard`` (its own ``state``, nonce and PKCE verifier, kept in its
pending store); :meth:`FreshIDClient.complete_step_up` redeems their code with that verifier and
validates the ID token against that nonce, through the same Authlib client.

It also turns every library, network and protocol failure into a :class:`ConsoleError`, so views
render a page instead of a traceback. Authlib ships no type information; ``Any`` stays in here.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from authlib.common.errors import AuthlibBaseError
from authlib.integrations.base_client.errors import MismatchingStateError
from authlib.integrations.starlette_client import OAuth
from freshid_guard import PendingStepUp
from joserfc.errors import JoseError
from starlette.requests import Request
from starlette.responses import Response

from .config import AcmeConfig
from .errors import ConsoleError

__all__ = ["FreshIDClient", "SignInResult"]

logger = logging.getLogger(__name__)

CLIENT_NAME = "freshid"
"""The Authlib registry name; it also prefixes Authlib's session keys (``_state_freshid_…``)."""


def _http_error_types() -> tuple[type[Exception], ...]:
    """Authlib talks through ``httpx2`` when it is installed and falls back to ``httpx``; the two
    have distinct exception classes, so catch network errors from whichever is present."""
    found: list[type[Exception]] = []
    for name in ("httpx2", "httpx"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        found.append(module.HTTPError)
    return tuple(found)


_HTTP_ERRORS = _http_error_types()
_FETCH_ERRORS: tuple[type[Exception], ...] = (*_HTTP_ERRORS, ValueError, RuntimeError)
"""Network failures, bodies that are not JSON, metadata without an endpoint."""


@dataclass(frozen=True)
class SignInResult:
    """A validated ID token (its claims, and the compact JWT for ``id_token_hint`` later) and the
    access token issued with it, which only the guard reads."""

    claims: Mapping[str, Any]
    id_token: str
    access_token: str


def _result(token: Mapping[str, Any], claims: object) -> SignInResult:
    id_token = token.get("id_token")
    access_token = token.get("access_token")
    if not isinstance(claims, Mapping) or not isinstance(id_token, str):
        raise ConsoleError("invalid_id_token", "The token response has no ID token.")
    if not isinstance(access_token, str) or not access_token:
        raise ConsoleError("invalid_id_token", "The token response has no access token.")
    return SignInResult(claims=dict(claims), id_token=id_token, access_token=access_token)


@contextmanager
def _token_errors() -> Iterator[None]:
    """Turn what can go wrong while redeeming a code into a :class:`ConsoleError`."""
    try:
        yield
    except MismatchingStateError as exc:
        # Authlib's own text for this is about CSRF; the user needs "start again".
        raise ConsoleError("mismatching_state") from exc
    except AuthlibBaseError as exc:
        # An `error=` redirect (e.g. access_denied) or a token endpoint error response.
        logger.info("sign-in refused: %r", exc.error)
        raise ConsoleError(str(exc.error or "oauth_error"), exc.description or None) from exc
    except JoseError as exc:
        logger.warning("ID token rejected: %s", type(exc).__name__)
        raise ConsoleError("invalid_id_token") from exc
    except _HTTP_ERRORS as exc:
        logger.warning("token endpoint unreachable: %s", type(exc).__name__)
        raise ConsoleError("provider_unavailable") from exc
    except (ValueError, RuntimeError, KeyError, TypeError) as exc:
        logger.warning("unusable token response: %s", type(exc).__name__)
        raise ConsoleError("invalid_id_token") from exc


class FreshIDClient:
    """One registered Authlib client for the configured FreshID issuer."""

    def __init__(self, config: AcmeConfig) -> None:
        self._config = config
        oauth = OAuth()
        self._app: Any = oauth.register(
            name=CLIENT_NAME,
            client_id=config.client_id,
            client_secret=config.client_secret,
            server_metadata_url=config.server_metadata_url,
            client_kwargs={"scope": config.scope, "code_challenge_method": "S256"},
        )

    async def metadata(self) -> Mapping[str, Any]:
        """The provider's discovery document (fetched once, then cached by Authlib)."""
        try:
            metadata: Mapping[str, Any] = await self._app.load_server_metadata()
        except _FETCH_ERRORS as exc:
            logger.warning("discovery failed: %s", type(exc).__name__)
            raise ConsoleError("provider_unavailable") from exc
        if metadata.get("issuer") != self._config.issuer:
            logger.warning("discovery names a different issuer than the configured one")
            raise ConsoleError(
                "issuer_mismatch", "The discovery document names a different issuer."
            )
        return metadata

    async def authorization_endpoint(self) -> str:
        """Where step-up redirects go (``freshid_guard.step_up_redirect`` builds them)."""
        endpoint = (await self.metadata()).get("authorization_endpoint")
        if not isinstance(endpoint, str) or not endpoint:
            raise ConsoleError("provider_unavailable", "FreshID names no authorization endpoint.")
        return endpoint

    async def authorize_redirect(self, request: Request) -> Response:
        """Start a sign-in: send the browser to the authorization endpoint.

        Authlib stores state, nonce and the PKCE verifier in ``request.session`` on the way.
        """
        await self.metadata()
        try:
            response: Response = await self._app.authorize_redirect(
                request, self._config.redirect_uri
            )
        except _FETCH_ERRORS as exc:
            logger.warning("could not start sign-in: %s", type(exc).__name__)
            raise ConsoleError("provider_unavailable") from exc
        return response

    async def _check_iss(self, request: Request) -> None:
        """RFC 9207 §2.4: reject a response whose ``iss`` is not our issuer, or that lacks ``iss``
        although the provider advertises sending it.

        The comparison needs no I/O (discovery must name the configured issuer anyway), so an
        error response (``error=access_denied``) is explained even while the provider is down.
        """
        returned = request.query_params.get("iss")
        if returned is not None and returned != self._config.issuer:
            raise ConsoleError("issuer_mismatch", "The response names a different issuer.")
        if "error" in request.query_params:
            return
        metadata = await self.metadata()
        advertised = metadata.get("authorization_response_iss_parameter_supported") is True
        if returned is None and advertised:
            raise ConsoleError("issuer_mismatch", "The response has no 'iss' parameter.")

    async def complete_sign_in(self, request: Request) -> SignInResult:
        """Handle the redirect back from a sign-in: errors, ``iss``, state, code, ID token."""
        await self._check_iss(request)
        with _token_errors():
            token: Mapping[str, Any] = await self._app.authorize_access_token(request)
        return _result(token, token.get("userinfo"))

    async def complete_step_up(self, request: Request, pending: PendingStepUp) -> SignInResult:
        """Handle the redirect back from a step-up the guard started (``pending`` was found by
        its ``state``): errors, ``iss``, the code redeemed with the step-up's PKCE verifier, and
        the ID token checked against its nonce (OIDC Core §3.1.3.7)."""
        await self._check_iss(request)
        error = request.query_params.get("error")
        if error:
            raise ConsoleError(error, request.query_params.get("error_description"))
        code = request.query_params.get("code")
        if not code:
            raise ConsoleError("invalid_request", "The response has no code.")
        with _token_errors():
            token: Mapping[str, Any] = await self._app.fetch_access_token(
                redirect_uri=self._config.redirect_uri,
                code=code,
                code_verifier=pending.code_verifier,
            )
            claims = await self._app.parse_id_token(token, nonce=pending.nonce)
        return _result(token, claims)

    async def end_session_url(self, *, id_token_hint: str, state: str) -> str | None:
        """RP-initiated logout URL with ``id_token_hint``, ``post_logout_redirect_uri``,
        ``client_id`` and ``state``; None when the provider advertises no end-session endpoint.
        """
        metadata = await self.metadata()
        if not metadata.get("end_session_endpoint"):
            return None
        result: Mapping[str, Any] = await self._app.create_logout_url(
            post_logout_redirect_uri=self._config.post_logout_redirect_uri,
            id_token_hint=id_token_hint,
            state=state,
            client_id=self._config.client_id,
        )
        url = result.get("url")
        return url if isinstance(url, str) else None
