"""The OpenAPI 3.1 document of the admin API, served at ``/api/v1/openapi.json``.

Written by hand next to the routes (:data:`freshid.admin.api.ROUTES`); a test checks that every
route is described and that the document is valid OpenAPI 3.1, and schemathesis exercises it.
"""

from __future__ import annotations

from typing import Any

from freshid.admin.keys import Scope
from freshid.events.api import DEFAULT_LIMIT, MAX_LIMIT
from freshid.events.catalog import EventType
from freshid.federation import connections

_MAX_INT = 2**53
# Every id FreshID makes is base64url or hex (with an optional ``xx_`` prefix).
_ID = {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,128}$"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/problem+json": {"schema": _ref("Problem")}},
    }


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _list_of(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["data", *extra],
        "properties": {"data": {"type": "array", "items": _ref(name)}, **extra},
    }


def _path_param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": _ID}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


def _op(
    summary: str,
    scope: Scope,
    responses: dict[str, Any],
    *,
    params: list[dict[str, Any]] | None = None,
    body: dict[str, Any] | None = None,
    op_id: str,
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": op_id,
        "summary": summary,
        "security": [{"adminKey": [scope.value]}],
        "parameters": params or [],
        "responses": {
            **responses,
            "400": _problem("Invalid parameter"),
            "401": _problem("Missing or invalid admin API key"),
            "403": _problem(f"The key lacks the {scope.value} scope"),
        },
    }
    if body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": body}},
        }
    return op


def _nullable(kind: str) -> dict[str, Any]:
    return {"type": [kind, "null"]}


_CONNECTION_SETTINGS: dict[str, Any] = {
    "name": {
        "type": "string",
        "minLength": 1,
        "maxLength": 100,
        "description": "What the button says: 'Continue with NAME'",
    },
    "config": {
        "type": "object",
        "description": "Protocol settings. oidc: issuer, client_id, scopes, algorithms, "
        "token_auth, mfa_acr, phr_acr, mfa_amr, multi_factor, step_up_acr_values. oauth2: "
        "authorization_endpoint, token_endpoint, userinfo_endpoint, client_id, scopes, "
        "subject_claim, email_claim, emails_endpoint. saml: idp_metadata (XML), "
        "mfa_authn_context, phr_authn_context, multi_factor. In an update it replaces the whole "
        "object.",
    },
    "client_secret": {
        "type": "string",
        "maxLength": 512,
        "description": "oidc and oauth2 (FreshID is a confidential client); never shown again",
    },
    "domains": {
        "type": "array",
        "items": {"type": "string"},
        "description": "Email domains this upstream may speak for (and routes by); empty: any",
    },
    "freshness_skew": {
        "type": "integer",
        "minimum": 0,
        "maximum": connections.MAX_SKEW,
        "description": "Seconds of clock skew allowed when checking the upstream's auth time",
    },
    "jit": {"type": "boolean", "description": "Create users on their first sign-in"},
    "link_verified_email": {
        "type": "boolean",
        "description": "Link to an existing user with the same verified address",
    },
    "show_on_login": {"type": "boolean", "description": "A button on the sign-in page"},
}
_CONNECTION_ID = {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,23}$"}


SCHEMAS: dict[str, Any] = {
    "Problem": {
        "type": "object",
        "description": "RFC 9457 problem details",
        "required": ["type", "title", "status"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "setting": {
                "type": "string",
                "description": "Connections: the setting at fault (`detail` says what is wrong)",
            },
        },
    },
    "Event": {
        "type": "object",
        "required": ["id", "type", "occurred_at", "data", "hash", "prev_hash"],
        "properties": {
            "id": {"type": "integer", "description": "Ascending in commit order, no gaps"},
            "type": {"type": "string", "enum": [t.value for t in EventType]},
            "occurred_at": {"type": "integer", "description": "Epoch seconds"},
            "user_id": _nullable("string"),
            "session_id": _nullable("string"),
            "client_id": _nullable("string"),
            "data": {"type": "object"},
            "hash": {"type": "string", "description": "SHA-256 (hex) of this event in the chain"},
            "prev_hash": {"type": "string"},
        },
    },
    "EventPage": {
        "type": "object",
        "required": ["data", "next_cursor", "has_more"],
        "properties": {
            "data": {"type": "array", "items": _ref("Event")},
            "next_cursor": {
                "type": "string",
                "description": "Opaque; pass it as `cursor` to read on. Always present: polling "
                "with it later returns only newer events.",
            },
            "has_more": {"type": "boolean"},
        },
    },
    "User": {
        "type": "object",
        "required": ["id", "email", "disabled", "created_at"],
        "properties": {
            "id": {"type": "string"},
            "email": {"type": "string"},
            "disabled": {"type": "boolean"},
            "created_at": {"type": "integer"},
        },
    },
    "Session": {
        "type": "object",
        "required": ["id", "user_id", "auth_time", "proof_age", "active"],
        "properties": {
            "id": {"type": "string"},
            "user_id": {"type": "string"},
            "created_at": {"type": "integer"},
            "auth_time": {"type": "integer"},
            "proof_age": {"type": "integer", "description": "Seconds since auth_time"},
            "last_seen_at": {"type": "integer"},
            "expires_at": {"type": "integer"},
            "revoked_at": _nullable("integer"),
            "revoked_reason": _nullable("string"),
            "user_agent": _nullable("string"),
            "active": {"type": "boolean"},
        },
    },
    "Client": {
        "type": "object",
        "required": ["client_id", "name", "public", "redirect_uris"],
        "properties": {
            "client_id": {"type": "string"},
            "name": {"type": "string"},
            "public": {"type": "boolean"},
            "redirect_uris": {"type": "array", "items": {"type": "string"}},
            "post_logout_redirect_uris": {"type": "array", "items": {"type": "string"}},
            "default_max_age": _nullable("integer"),
            "require_auth_time": {"type": "boolean"},
            "created_at": _nullable("integer"),
        },
    },
    "WebhookEndpoint": {
        "type": "object",
        "required": ["id", "url", "event_types", "enabled"],
        "properties": {
            "id": {"type": "string"},
            "url": {"type": "string"},
            "description": {"type": "string"},
            "event_types": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Empty: every type",
            },
            "enabled": {"type": "boolean"},
            "disabled_at": _nullable("integer"),
            "disabled_reason": _nullable("string"),
            "consecutive_failures": {"type": "integer"},
            "failing_since": _nullable("integer"),
            "secrets": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "created_at": {"type": "integer"},
                        "expires_at": _nullable("integer"),
                    },
                },
            },
            "created_at": {"type": "integer"},
            "updated_at": {"type": "integer"},
            "secret": {
                "type": "string",
                "description": "whsec_…, only in the response that creates it",
            },
        },
    },
    "WebhookEndpointInput": {
        "type": "object",
        "properties": {
            "url": {"type": "string", "description": "https, or http on a loopback address"},
            "description": {"type": "string", "maxLength": 200},
            "event_types": {
                "type": "array",
                "items": {"type": "string", "enum": [t.value for t in EventType]},
            },
        },
    },
    "Delivery": {
        "type": "object",
        "required": ["id", "event_id", "webhook_id", "status", "attempts"],
        "properties": {
            "id": {"type": "integer"},
            "event_id": {"type": "integer"},
            "webhook_id": {"type": "string", "description": "The webhook-id header"},
            "status": {"type": "string", "enum": ["pending", "succeeded", "failed"]},
            "attempts": {"type": "integer"},
            "next_attempt_at": _nullable("integer"),
            "last_attempt_at": _nullable("integer"),
            "last_status_code": _nullable("integer"),
            "last_error": _nullable("string"),
            "created_at": {"type": "integer"},
            "completed_at": _nullable("integer"),
        },
    },
    "Connection": {
        "type": "object",
        "description": "An upstream identity provider; its client secret is never shown",
        "required": [
            "id",
            "kind",
            "name",
            "method",
            "enabled",
            "show_on_login",
            "domains",
            "jit",
            "link_verified_email",
            "freshness_skew",
            "config",
            "client_secret_set",
            "created_at",
        ],
        "properties": {
            "id": {"type": "string"},
            "kind": {"type": "string", "enum": list(connections.KINDS)},
            "method": {"type": "string", "description": "The method in session histories"},
            "enabled": {"type": "boolean"},
            **{k: v for k, v in _CONNECTION_SETTINGS.items() if k != "client_secret"},
            "client_secret_set": {"type": "boolean"},
            "created_at": {"type": "integer"},
            "redirect_uri": {"type": "string", "description": "oidc and oauth2: register it"},
            "acs_url": {"type": "string", "description": "saml"},
            "sp_metadata_url": {"type": "string", "description": "saml: give it to the IdP"},
        },
    },
    "ConnectionInput": {
        "type": "object",
        "required": ["id", "kind", "name", "config"],
        "additionalProperties": False,
        "properties": {
            "id": {**_CONNECTION_ID, "description": "Slug: the callback path and fed:<id>"},
            "kind": {"type": "string", "enum": list(connections.KINDS)},
            **_CONNECTION_SETTINGS,
            "enabled": {"type": "boolean", "default": True},
        },
    },
    "ConnectionUpdate": {
        "type": "object",
        "description": "The settings to change; the id and kind never change",
        "additionalProperties": False,
        "properties": _CONNECTION_SETTINGS,
    },
    "Identity": {
        "type": "object",
        "description": "An upstream account linked to a user",
        "required": ["id", "user_id", "connection_id", "subject", "linked_by", "created_at"],
        "properties": {
            "id": {"type": "string"},
            "user_id": {"type": "string"},
            "connection_id": {"type": "string"},
            "subject": {"type": "string", "description": "The upstream's stable subject"},
            "email": _nullable("string"),
            "linked_by": {"type": "string", "enum": ["jit", "verified_email", "account_page"]},
            "created_at": {"type": "integer"},
            "last_used_at": _nullable("integer"),
        },
    },
}


def _paths() -> dict[str, Any]:
    not_found = _problem("Not found")
    endpoint_id = _path_param("endpoint_id")
    connection_id = _path_param("connection_id")
    int_q = {"type": "integer", "minimum": 0, "maximum": _MAX_INT}
    return {
        "/events": {
            "get": _op(
                "List events, oldest first, with a forward cursor",
                Scope.EVENTS_READ,
                {"200": _json("A page of events", _ref("EventPage"))},
                op_id="listEvents",
                params=[
                    _query(
                        "type",
                        {"type": "string", "enum": [t.value for t in EventType]},
                        "Event type; repeat or comma-separate for several",
                    ),
                    _query("user_id", _ID, "Only this user's events"),
                    _query("session_id", _ID, "Only this session's events"),
                    _query("client_id", _ID, "Only this client's events"),
                    _query("since", int_q, "occurred_at >= since (epoch seconds)"),
                    _query("until", int_q, "occurred_at < until (epoch seconds)"),
                    _query(
                        "limit",
                        {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": MAX_LIMIT,
                            "default": DEFAULT_LIMIT,
                        },
                        "Page size",
                    ),
                    _query("cursor", {"type": "string"}, "next_cursor of the previous page"),
                ],
            )
        },
        "/events/{event_id}": {
            "get": _op(
                "One event",
                Scope.EVENTS_READ,
                {"200": _json("The event", _ref("Event")), "404": not_found},
                op_id="getEvent",
                params=[_path_param("event_id")],
            )
        },
        "/users": {
            "get": _op(
                "List users by id",
                Scope.USERS_READ,
                {"200": _json("Users", _list_of("User", next_after=_nullable("string")))},
                op_id="listUsers",
                params=[
                    _query("after", {"type": "string", "maxLength": 128}, "next_after"),
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "Size"),
                ],
            )
        },
        "/users/{user_id}": {
            "get": _op(
                "One user",
                Scope.USERS_READ,
                {"200": _json("The user", _ref("User")), "404": not_found},
                op_id="getUser",
                params=[_path_param("user_id")],
            )
        },
        "/users/{user_id}/sessions": {
            "get": _op(
                "A user's sessions, newest first, with their proof age",
                Scope.SESSIONS_READ,
                {"200": _json("Sessions", _list_of("Session")), "404": not_found},
                op_id="listUserSessions",
                params=[
                    _path_param("user_id"),
                    _query("active", {"type": "string", "enum": ["true", "false"]}, "Live only"),
                ],
            )
        },
        "/users/{user_id}/sessions/revoke": {
            "post": _op(
                "Revoke every live session of a user",
                Scope.SESSIONS_WRITE,
                {
                    "200": _json(
                        "Revoked session ids",
                        {
                            "type": "object",
                            "properties": {
                                "revoked": {"type": "array", "items": {"type": "string"}}
                            },
                        },
                    ),
                    "404": not_found,
                },
                op_id="revokeUserSessions",
                params=[_path_param("user_id")],
            )
        },
        "/sessions/{session_id}/revoke": {
            "post": _op(
                "Revoke one session",
                Scope.SESSIONS_WRITE,
                {
                    "200": _json(
                        "Revoked (changed is false if it already was)",
                        {
                            "type": "object",
                            "properties": {
                                "id": {"type": "string"},
                                "revoked": {"type": "boolean"},
                                "changed": {"type": "boolean"},
                            },
                        },
                    ),
                    "404": not_found,
                },
                op_id="revokeSession",
                params=[_path_param("session_id")],
            )
        },
        "/clients": {
            "get": _op(
                "List clients",
                Scope.CLIENTS_READ,
                {"200": _json("Clients", _list_of("Client"))},
                op_id="listClients",
            )
        },
        "/webhooks": {
            "get": _op(
                "List webhook endpoints",
                Scope.WEBHOOKS_READ,
                {"200": _json("Endpoints", _list_of("WebhookEndpoint"))},
                op_id="listWebhooks",
            ),
            "post": _op(
                "Register a webhook endpoint (the response shows its secret, once)",
                Scope.WEBHOOKS_WRITE,
                {
                    "201": _json("Created", _ref("WebhookEndpoint")),
                    "413": _problem("Body too large"),
                    "422": _problem("Invalid field"),
                },
                op_id="createWebhook",
                body={**_ref("WebhookEndpointInput"), "required": ["url"]},
            ),
        },
        "/webhooks/{endpoint_id}": {
            "get": _op(
                "One webhook endpoint",
                Scope.WEBHOOKS_READ,
                {"200": _json("The endpoint", _ref("WebhookEndpoint")), "404": not_found},
                op_id="getWebhook",
                params=[endpoint_id],
            ),
            "patch": _op(
                "Change a webhook endpoint's url, description or event types",
                Scope.WEBHOOKS_WRITE,
                {
                    "200": _json("The endpoint", _ref("WebhookEndpoint")),
                    "404": not_found,
                    "413": _problem("Body too large"),
                    "422": _problem("Invalid field"),
                },
                op_id="updateWebhook",
                params=[endpoint_id],
                body=_ref("WebhookEndpointInput"),
            ),
            "delete": _op(
                "Delete a webhook endpoint and its deliveries",
                Scope.WEBHOOKS_WRITE,
                {"204": {"description": "Deleted"}, "404": not_found},
                op_id="deleteWebhook",
                params=[endpoint_id],
            ),
        },
        "/webhooks/{endpoint_id}/rotate-secret": {
            "post": _op(
                "Add a new secret; the old ones keep signing for 24 hours",
                Scope.WEBHOOKS_WRITE,
                {
                    "200": _json(
                        "The new secret",
                        {
                            "type": "object",
                            "properties": {"id": {"type": "string"}, "secret": {"type": "string"}},
                        },
                    ),
                    "404": not_found,
                },
                op_id="rotateWebhookSecret",
                params=[endpoint_id],
            )
        },
        "/webhooks/{endpoint_id}/enable": {
            "post": _op(
                "Re-enable an endpoint (resets its failure streak; pending deliveries resume)",
                Scope.WEBHOOKS_WRITE,
                {"200": _json("The endpoint", _ref("WebhookEndpoint")), "404": not_found},
                op_id="enableWebhook",
                params=[endpoint_id],
            )
        },
        "/webhooks/{endpoint_id}/disable": {
            "post": _op(
                "Disable an endpoint (deliveries wait until it is enabled)",
                Scope.WEBHOOKS_WRITE,
                {"200": _json("The endpoint", _ref("WebhookEndpoint")), "404": not_found},
                op_id="disableWebhook",
                params=[endpoint_id],
            )
        },
        "/webhooks/{endpoint_id}/deliveries": {
            "get": _op(
                "An endpoint's deliveries, oldest first",
                Scope.WEBHOOKS_READ,
                {
                    "200": _json(
                        "Deliveries", _list_of("Delivery", next_after={"type": "integer"})
                    ),
                    "404": not_found,
                },
                op_id="listDeliveries",
                params=[
                    endpoint_id,
                    _query("after", int_q, "next_after of the previous page"),
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "Size"),
                    _query(
                        "status",
                        {"type": "string", "enum": ["pending", "succeeded", "failed"]},
                        "Only this status",
                    ),
                ],
            )
        },
        "/connections": {
            "get": _op(
                "List upstream identity provider connections",
                Scope.CONNECTIONS_READ,
                {"200": _json("Connections", _list_of("Connection"))},
                op_id="listConnections",
            ),
            "post": _op(
                "Add an upstream OpenID Connect, OAuth 2.0 or SAML 2.0 connection",
                Scope.CONNECTIONS_WRITE,
                {
                    "201": _json("Created", _ref("Connection")),
                    "409": _problem("A connection with this id exists"),
                    "413": _problem("Body too large"),
                },
                op_id="createConnection",
                body=_ref("ConnectionInput"),
            ),
        },
        "/connections/{connection_id}": {
            "get": _op(
                "One connection",
                Scope.CONNECTIONS_READ,
                {"200": _json("The connection", _ref("Connection")), "404": not_found},
                op_id="getConnection",
                params=[connection_id],
            ),
            "patch": _op(
                "Change a connection's settings (checked again as a whole)",
                Scope.CONNECTIONS_WRITE,
                {
                    "200": _json("The connection", _ref("Connection")),
                    "404": not_found,
                    "413": _problem("Body too large"),
                },
                op_id="updateConnection",
                params=[connection_id],
                body=_ref("ConnectionUpdate"),
            ),
            "delete": _op(
                "Delete a connection no identity is linked to",
                Scope.CONNECTIONS_WRITE,
                {
                    "204": {"description": "Deleted"},
                    "404": not_found,
                    "409": _problem("Identities are linked to it: unlink them, or disable it"),
                },
                op_id="deleteConnection",
                params=[connection_id],
            ),
        },
        "/connections/{connection_id}/enable": {
            "post": _op(
                "Enable a connection",
                Scope.CONNECTIONS_WRITE,
                {"200": _json("The connection", _ref("Connection")), "404": not_found},
                op_id="enableConnection",
                params=[connection_id],
            )
        },
        "/connections/{connection_id}/disable": {
            "post": _op(
                "Disable a connection: no button, no sign-in or step-up through it",
                Scope.CONNECTIONS_WRITE,
                {"200": _json("The connection", _ref("Connection")), "404": not_found},
                op_id="disableConnection",
                params=[connection_id],
            )
        },
        "/users/{user_id}/identities": {
            "get": _op(
                "The upstream identities linked to a user",
                Scope.CONNECTIONS_READ,
                {"200": _json("Identities", _list_of("Identity")), "404": not_found},
                op_id="listUserIdentities",
                params=[_path_param("user_id")],
            )
        },
        "/users/{user_id}/identities/{connection_id}": {
            "delete": _op(
                "Unlink a user's identity at a connection",
                Scope.CONNECTIONS_WRITE,
                {"204": {"description": "Unlinked"}, "404": not_found},
                op_id="unlinkUserIdentity",
                params=[_path_param("user_id"), connection_id],
            )
        },
    }


def document(issuer: str) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "FreshID admin API",
            "version": "1",
            "description": "Events (cursor-paginated, hash-chained), users, sessions, clients, "
            "webhook endpoints, and upstream identity provider connections with the identities "
            "linked through them. Authenticate with an admin API key: "
            "`Authorization: Bearer fid_…` (create one with `freshid admin-keys create`).",
        },
        "servers": [{"url": f"{issuer.rstrip('/')}/api/v1"}],
        "components": {
            "securitySchemes": {
                "adminKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An admin API key; scopes: " + ", ".join(s.value for s in Scope),
                }
            },
            "schemas": SCHEMAS,
        },
        "paths": _paths(),
    }
