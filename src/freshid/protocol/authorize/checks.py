"""Authorization request validation as a declared pipeline (RFC 6749 §4.1.1, §4.1.2.1; OIDC Core
§3.1.2.1-§3.1.2.2; RFC 7636 §4.3; RFC 9700 §2.1.1).

Two stages, because they fail differently. :func:`resolve_client` establishes the client and the
redirect URI; until both are known to be genuine, an error must be shown on our own page and never
sent anywhere (RFC 6749 §4.1.2.1). After that, every check in :data:`CHECKS` runs in order and the
first failure is returned to the client's redirect URI. Each check reads the parameters and adds
the fields it is responsible for.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from freshid_guard.policy import ACTION_DETAIL_TYPE

from freshid.errors import (
    InvalidAuthorizationDetails,
    InvalidRequest,
    InvalidScope,
    OAuthError,
    RegistrationNotSupported,
    RequestNotSupported,
    RequestUriNotSupported,
    UnsupportedResponseType,
)
from freshid.protocol.authorize.request import AuthorizationRequest
from freshid.protocol.params import Params
from freshid.storage.clients import Client

SUPPORTED_SCOPES = ("openid", "email", "offline_access")
_PKCE_CHALLENGE = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")
_MAX_STATE = 2048


class PageError(Exception):
    """An error shown on FreshID's own page: the redirect URI cannot be trusted yet."""

    def __init__(self, title: str, description: str, error: str = "invalid_request") -> None:
        super().__init__(description)
        self.title = title
        self.description = description
        self.error = error


def resolve_client(
    params: Params, find_client: Callable[[str], Client | None]
) -> tuple[Client, str]:
    client_id = params.value("client_id")
    if client_id is None:
        raise PageError(
            "This sign-in link is not valid", "The request does not name an application."
        )
    client = find_client(client_id)
    if client is None:
        raise PageError(
            "This sign-in link is not valid", "The application is not registered.", "invalid_client"
        )
    redirect_uri = params.value("redirect_uri")
    if redirect_uri is None:
        raise PageError("This sign-in link is not valid", "The request has no redirect URI.")
    # Exact string comparison (RFC 9700 §4.1.3): no normalisation, no prefix or pattern matching.
    if redirect_uri not in client.redirect_uris:
        raise PageError(
            "This sign-in link is not valid",
            "The redirect URI is not registered for this application.",
        )
    return client, redirect_uri


@dataclass(frozen=True)
class CheckInput:
    params: Params
    client: Client
    verify_hint: Callable[[str], str]
    """Returns the subject of an ``id_token_hint`` we issued; raises :class:`InvalidRequest`."""
    actions: Mapping[str, object]
    """The action policy catalog: names an ``authorization_details`` entry may use."""


Check = Callable[[CheckInput], dict[str, Any]]


def check_request_objects(c: CheckInput) -> dict[str, Any]:
    if "request" in c.params:
        raise RequestNotSupported("request objects are not supported")
    if "request_uri" in c.params:
        raise RequestUriNotSupported("request_uri is not supported")
    if "registration" in c.params:
        raise RegistrationNotSupported("the registration parameter is not supported")
    return {}


def check_response_type(c: CheckInput) -> dict[str, Any]:
    response_type = c.params.value("response_type")
    if response_type is None:
        raise InvalidRequest("response_type is required")
    if response_type != "code":
        # RFC 9700 §2.1.2: no implicit flow, no hybrid flows.
        raise UnsupportedResponseType("only response_type=code is supported")
    mode = c.params.value("response_mode")
    if mode is not None and mode != "query":
        raise InvalidRequest("only response_mode=query is supported")
    return {}


def check_scope(c: CheckInput) -> dict[str, Any]:
    requested = (c.params.value("scope") or "").split()
    if "openid" not in requested:
        raise InvalidScope("the openid scope is required")
    granted = [s for s in SUPPORTED_SCOPES if s in requested]
    return {"scope": " ".join(granted)}


def check_state_and_nonce(c: CheckInput) -> dict[str, Any]:
    state, nonce = c.params.value("state"), c.params.value("nonce")
    if state is not None and len(state) > _MAX_STATE:
        raise InvalidRequest("state is too long")
    if nonce is not None and len(nonce) > 512:
        raise InvalidRequest("nonce is too long")
    return {"state": state, "nonce": nonce}


def check_pkce(c: CheckInput) -> dict[str, Any]:
    challenge = c.params.value("code_challenge")
    method = c.params.value("code_challenge_method")
    if challenge is None:
        if method is not None:
            raise InvalidRequest("code_challenge_method without code_challenge")
        if c.client.is_public:
            raise InvalidRequest("PKCE is required: send code_challenge with method S256")
        return {}
    if method != "S256":
        # RFC 9700 §2.1.1: plain offers no protection if the challenge leaks; absent means plain.
        raise InvalidRequest("code_challenge_method must be S256")
    if not _PKCE_CHALLENGE.match(challenge):
        raise InvalidRequest("code_challenge is malformed")
    return {"code_challenge": challenge}


def check_prompt(c: CheckInput) -> dict[str, Any]:
    # Which values are allowed, and together, is a freshness rule: see decision.check_prompt_values.
    return {"prompt": tuple(dict.fromkeys((c.params.value("prompt") or "").split()))}


def check_max_age(c: CheckInput) -> dict[str, Any]:
    raw = c.params.value("max_age")
    if raw is None:
        return {}
    if not raw.isascii() or not raw.isdigit() or len(raw) > 10:
        raise InvalidRequest("max_age must be a non-negative integer")
    return {"max_age": int(raw)}


def _essential_acr(claims_raw: str) -> tuple[str, ...]:
    try:
        claims = json.loads(claims_raw)
    except (json.JSONDecodeError, RecursionError):
        raise InvalidRequest("claims is not valid JSON") from None
    if not isinstance(claims, dict):
        raise InvalidRequest("claims must be a JSON object")
    acr = (
        (claims.get("id_token") or {}).get("acr")
        if isinstance(claims.get("id_token"), dict)
        else None
    )
    if not isinstance(acr, dict) or acr.get("essential") is not True:
        return ()
    values = acr.get("values") if "values" in acr else [acr.get("value")]
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values) or not values:
        raise InvalidRequest("claims.id_token.acr must name one or more values")
    return tuple(values)


def check_acr(c: CheckInput) -> dict[str, Any]:
    acr_values = tuple((c.params.value("acr_values") or "").split())
    claims_raw = c.params.value("claims")
    essential = _essential_acr(claims_raw) if claims_raw else ()
    return {"acr_values": acr_values, "essential_acr": essential}


def check_hints(c: CheckInput) -> dict[str, Any]:
    hint = c.params.value("id_token_hint")
    login_hint = c.params.value("login_hint")
    if login_hint is not None and len(login_hint) > 320:
        raise InvalidRequest("login_hint is too long")
    return {
        "hint_subject": c.verify_hint(hint) if hint is not None else None,
        "login_hint": login_hint,
    }


def check_authorization_details(c: CheckInput) -> dict[str, Any]:
    """RFC 9396 §2: a JSON array of objects with a ``type``; FreshID knows one type, which names
    the action this authorization (and the proof behind it) is for."""
    raw = c.params.value("authorization_details")
    if raw is None:
        return {}
    try:
        details = json.loads(raw)
    except (json.JSONDecodeError, RecursionError):
        raise InvalidAuthorizationDetails("authorization_details is not valid JSON") from None
    if not isinstance(details, list) or not details:
        raise InvalidAuthorizationDetails("authorization_details must be a non-empty JSON array")
    actions = []
    for entry in details:
        if not isinstance(entry, dict) or not isinstance(entry.get("type"), str):
            raise InvalidAuthorizationDetails("each authorization_details entry needs a type")
        if entry["type"] != ACTION_DETAIL_TYPE:
            raise InvalidAuthorizationDetails(f"unsupported type; supported: {ACTION_DETAIL_TYPE}")
        if set(entry) - {"type", "action"} or not isinstance(entry.get("action"), str):
            raise InvalidAuthorizationDetails("an action entry has exactly type and action")
        if entry["action"] not in c.actions:
            raise InvalidAuthorizationDetails("the action is not in the provider's catalog")
        actions.append(entry["action"])
    if len(set(actions)) != 1:
        raise InvalidAuthorizationDetails("name exactly one action")
    return {"action": actions[0]}


CHECKS: tuple[Check, ...] = (
    check_request_objects,
    check_response_type,
    check_scope,
    check_state_and_nonce,
    check_pkce,
    check_prompt,
    check_max_age,
    check_acr,
    check_hints,
    check_authorization_details,
)


def validate(
    params: Params,
    client: Client,
    redirect_uri: str,
    verify_hint: Callable[[str], str],
    actions: Mapping[str, object],
) -> AuthorizationRequest:
    """Run every check in order; raises the first :class:`OAuthError`."""
    fields: dict[str, Any] = {
        "client_id": client.client_id,
        "redirect_uri": redirect_uri,
    }
    data = CheckInput(params, client, verify_hint, actions)
    for check in CHECKS:
        fields.update(check(data))
    return AuthorizationRequest(**fields)


def state_of(params: Params) -> str | None:
    """``state`` for an error response, even when validation failed before reading it."""
    state = params.value("state")
    return state if state is not None and len(state) <= _MAX_STATE else None


__all__ = ["CHECKS", "OAuthError", "PageError", "resolve_client", "state_of", "validate"]
