"""OpenID Provider metadata (OIDC Discovery 1.0 §3; RFC 8414 §2) and the JWKS (RFC 7517 §5).

The metadata advertises exactly what is implemented; tests hold it to that.
"""

from __future__ import annotations

from typing import Any

from freshid_guard.policy import ACTION_DETAIL_TYPE
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from freshid.freshness.levels import LADDER
from freshid.protocol.authorize.checks import SUPPORTED_SCOPES
from freshid.provider import Provider


def metadata(issuer: str) -> dict[str, Any]:
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/authorize",
        "token_endpoint": f"{issuer}/token",
        "userinfo_endpoint": f"{issuer}/userinfo",
        "jwks_uri": f"{issuer}/jwks",
        "end_session_endpoint": f"{issuer}/logout",
        "introspection_endpoint": f"{issuer}/introspect",
        "revocation_endpoint": f"{issuer}/revoke",
        "scopes_supported": list(SUPPORTED_SCOPES),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "token_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
        "introspection_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
        ],
        "revocation_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": [
            "iss",
            "sub",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "acr",
            "amr",
            "sid",
            "azp",
            "email",
            "email_verified",
        ],
        "claims_parameter_supported": True,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "acr_values_supported": list(LADDER),
        "prompt_values_supported": ["none", "login"],
        "authorization_response_iss_parameter_supported": True,
        "authorization_details_types_supported": [ACTION_DETAIL_TYPE],
        "claim_types_supported": ["normal"],
    }


async def openid_configuration(request: Request) -> Response:
    provider: Provider = request.app.state.provider
    return JSONResponse(metadata(provider.issuer), headers={"Cache-Control": "public, max-age=300"})


async def jwks(request: Request) -> Response:
    provider: Provider = request.app.state.provider
    ring = await provider.keyring_async()
    return JSONResponse(
        ring.jwks,
        headers={"Cache-Control": "public, max-age=300"},
        media_type="application/jwk-set+json",
    )
