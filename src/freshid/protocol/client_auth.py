"""Client authentication at the token, introspection and revocation endpoints (RFC 6749 §2.3.1;
OIDC Core §9: ``client_secret_basic``, ``client_secret_post``, ``none``).

Exactly one method per request (RFC 6749 §2.3). A confidential client must authenticate; a public
client must not present a secret. Secrets are compared as digests in constant time.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from urllib.parse import unquote

from starlette.requests import Request

from freshid.errors import InvalidClient, InvalidRequest
from freshid.protocol.params import Params
from freshid.storage.clients import Client
from freshid.tokens.secrets import matches


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        raise InvalidClient("unsupported authorization scheme")
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise InvalidClient("malformed basic credentials") from None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise InvalidClient("malformed basic credentials")
    # RFC 6749 §2.3.1: both parts are form-urlencoded before base64.
    return unquote(client_id.replace("+", " ")), unquote(secret.replace("+", " "))


def authenticate(
    request: Request, params: Params, find_client: Callable[[str], Client | None]
) -> Client:
    basic = _basic_credentials(request)
    post_secret = params.value("client_secret")
    if basic is not None and (post_secret is not None or "client_assertion" in params):
        raise InvalidRequest("use exactly one client authentication method")
    if "client_assertion" in params:
        raise InvalidClient("client assertions are not supported")
    if basic is not None:
        client_id, secret = basic
        body_id = params.value("client_id")
        if body_id is not None and body_id != client_id:
            raise InvalidRequest("client_id does not match the authenticated client")
    else:
        client_id_or_none, secret_or_none = params.value("client_id"), post_secret
        if client_id_or_none is None:
            raise InvalidClient("client authentication is required")
        client_id, secret = client_id_or_none, secret_or_none or ""
    client = find_client(client_id) if len(client_id) <= 64 else None
    if client is None:
        raise InvalidClient("unknown client or bad credentials")
    if client.is_public:
        if secret:
            raise InvalidClient("a public client must not send a secret")
        return client
    if not secret or client.secret_digest is None or not matches(secret, client.secret_digest):
        raise InvalidClient("unknown client or bad credentials")
    return client
