"""The back channel to upstream providers: discovery, JWKS, token and userinfo requests.

Discovery documents and key sets are cached per process for a few minutes; they are public,
re-fetchable data, not flow state, so a node that has not seen them simply fetches them. A token
signed with an unknown ``kid`` makes one JWKS refresh (key rotation), no more often than every
:data:`JWKS_MIN_REFRESH` seconds, so forged tokens cannot make us hammer the provider.

Failures raise :class:`~freshid.methods.base.MethodFailed` with a short reason; response bodies and
tokens are never logged.
"""

from __future__ import annotations

import base64
import logging
import ssl
import time
from typing import Any
from urllib.parse import quote

import httpx

from freshid.federation.connections import Connection
from freshid.methods.base import MethodFailed
from freshid.methods.oidc_upstream import ProviderMetadata, parse_metadata

log = logging.getLogger("freshid.federation")

CACHE_TTL = 300
JWKS_MIN_REFRESH = 10
TIMEOUT = 10.0
MAX_BODY = 256 * 1024

# One TLS context for every request: building one per client costs tens of milliseconds.
_TLS = ssl.create_default_context()
_metadata: dict[str, tuple[float, ProviderMetadata]] = {}
_jwks: dict[str, tuple[float, dict[str, Any]]] = {}


async def _get_json(url: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False, verify=_TLS) as http:
        try:
            response = await http.get(
                url, headers={"Accept": "application/json", **(headers or {})}
            )
        except httpx.HTTPError as exc:
            log.warning("upstream request failed: %s %s", type(exc).__name__, url.split("?")[0])
            raise MethodFailed("upstream_unreachable") from None
    return _json(response, url)


def _json(response: httpx.Response, url: str) -> dict[str, Any]:
    if response.status_code != 200 or len(response.content) > MAX_BODY:
        log.warning("upstream answered %s for %s", response.status_code, url.split("?")[0])
        raise MethodFailed("upstream_bad_response")
    try:
        body = response.json()
    except ValueError:
        raise MethodFailed("upstream_bad_response") from None
    if not isinstance(body, dict):
        raise MethodFailed("upstream_bad_response")
    return body


async def metadata(issuer: str) -> ProviderMetadata:
    """OIDC Discovery §4: ``{issuer}/.well-known/openid-configuration``, checked against issuer."""
    cached = _metadata.get(issuer)
    if cached and time.monotonic() - cached[0] < CACHE_TTL:
        return cached[1]
    doc = await _get_json(f"{issuer}/.well-known/openid-configuration")
    parsed = parse_metadata(doc, issuer)
    _metadata[issuer] = (time.monotonic(), parsed)
    return parsed


async def jwks(uri: str, *, refresh: bool = False) -> dict[str, Any]:
    cached = _jwks.get(uri)
    age = time.monotonic() - cached[0] if cached else None
    if cached and age is not None and (age < CACHE_TTL and not refresh):
        return cached[1]
    if cached and age is not None and refresh and age < JWKS_MIN_REFRESH:
        return cached[1]
    body = await _get_json(uri)
    _jwks[uri] = (time.monotonic(), body)
    return body


def _basic(client_id: str, secret: str) -> str:
    # RFC 6749 §2.3.1: each part form-urlencoded before the Basic encoding.
    raw = f"{quote(client_id, safe='')}:{quote(secret, safe='')}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


async def redeem_code(
    connection: Connection,
    token_endpoint: str,
    code: str,
    redirect_uri: str,
    code_verifier: str,
) -> dict[str, Any]:
    """RFC 6749 §4.1.3 with the PKCE verifier (RFC 7636 §4.5), as a confidential client."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": code_verifier,
    }
    headers = {"Accept": "application/json"}
    secret = connection.client_secret or ""
    if connection.config.get("token_auth") == "client_secret_post":
        form.update(client_id=connection.client_id, client_secret=secret)
    else:
        headers["Authorization"] = _basic(connection.client_id, secret)
    async with httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False, verify=_TLS) as http:
        try:
            response = await http.post(token_endpoint, data=form, headers=headers)
        except httpx.HTTPError as exc:
            log.warning("token request failed: %s", type(exc).__name__)
            raise MethodFailed("upstream_unreachable") from None
    if response.status_code != 200:
        raise MethodFailed("code_redemption_failed")
    body = _json(response, token_endpoint)
    if not isinstance(body.get("access_token"), str):
        raise MethodFailed("code_redemption_failed")
    return body


async def userinfo(url: str, access_token: str) -> dict[str, Any]:
    return await _get_json(url, {"Authorization": f"Bearer {access_token}"})


async def verified_emails(url: str, access_token: str) -> list[dict[str, Any]]:
    """GitHub-style ``/user/emails``: a JSON list of ``{email, primary, verified}``."""
    async with httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False, verify=_TLS) as http:
        try:
            response = await http.get(
                url,
                headers={"Accept": "application/json", "Authorization": f"Bearer {access_token}"},
            )
            body = response.json() if response.status_code == 200 else []
        except (httpx.HTTPError, ValueError):
            return []
    return [e for e in body if isinstance(e, dict)] if isinstance(body, list) else []


def forget_caches() -> None:
    """Drop cached documents (tests; an admin changing a connection)."""
    _metadata.clear()
    _jwks.clear()
