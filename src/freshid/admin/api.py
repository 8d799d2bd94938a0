"""The admin API, mounted at ``/api/v1``: events, users, sessions, clients, webhook endpoints,
upstream identity provider connections and the identities linked through them.

Every route but the OpenAPI document needs an admin API key as a bearer token (RFC 6750 §2.1)
with the route's scope (:class:`freshid.admin.keys.Scope`); a missing or bad key gets 401 with
``WWW-Authenticate: Bearer``, a key without the scope 403 ``insufficient_scope`` (RFC 6750 §3.1).
Errors are RFC 9457 problem documents (``application/problem+json``); input is checked before it
reaches the database, so bad input is a 4xx, never a 500. The routes are described by
:mod:`freshid.admin.openapi`, served at ``/api/v1/openapi.json``. Connections are shown without
their client secret (``client_secret_set`` says whether one is stored).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from freshid.admin import keys as key_store
from freshid.admin import observability, openapi
from freshid.admin.keys import ApiKey, Scope
from freshid.events import api as event_api
from freshid.events import delivery
from freshid.events import webhooks as hooks
from freshid.federation import client as upstream_client
from freshid.federation import connections as connection_store
from freshid.federation import identities as identity_store
from freshid.federation.connections import InvalidConnection
from freshid.provider import Provider
from freshid.storage import clients as client_store
from freshid.storage import sessions as session_store
from freshid.storage.tables import clients, sessions, users
from freshid.web.unavailable import DATABASE_UNAVAILABLE, RETRY_AFTER_SECONDS

log = logging.getLogger("freshid.admin")

_MAX_INT = 2**53  # epoch seconds and ids: far beyond any real value, within every integer column
_MAX_BODY = 64 * 1024
_MAX_CONNECTION_BODY = 1024 * 1024  # SAML IdP metadata (keys, many endpoints) can be large
T = TypeVar("T")


class ApiError(Exception):
    def __init__(self, status: int, title: str, detail: str = "", **extra: Any) -> None:
        super().__init__(title)
        self.status, self.title, self.detail, self.extra = status, title, detail, extra


def problem(status: int, title: str, detail: str = "", **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    headers = extra.pop("headers", None)
    body.update(extra)
    return JSONResponse(
        body, status_code=status, media_type="application/problem+json", headers=headers
    )


# -- request parsing ----------------------------------------------------------------------------


def _text(value: str, name: str, max_len: int = 256) -> str:
    if len(value) > max_len or "\x00" in value:
        raise ApiError(400, "Invalid parameter", f"{name} is too long or contains NUL")
    return value


def _query_text(request: Request, name: str) -> str | None:
    value = request.query_params.get(name)
    return None if value is None else _text(value, name)


def _query_int(request: Request, name: str, default: int | None, lo: int, hi: int) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isascii() or not raw.lstrip("-").isdigit() or len(raw) > 20:
        raise ApiError(400, "Invalid parameter", f"{name} must be an integer")
    value = int(raw)
    if not lo <= value <= hi:
        raise ApiError(400, "Invalid parameter", f"{name} must be between {lo} and {hi}")
    return value


def _path(request: Request, name: str) -> str:
    return _text(str(request.path_params[name]), name, 128)


async def _json_body(request: Request, limit: int = _MAX_BODY) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > limit:
        raise ApiError(413, "Request body too large")
    try:
        value = json.loads(raw or b"{}")
    except (ValueError, RecursionError):
        raise ApiError(400, "Invalid JSON body") from None
    if not isinstance(value, dict):
        raise ApiError(400, "Invalid JSON body", "the body must be a JSON object")
    return value


def _str_field(body: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise ApiError(422, "Invalid field", f"{name} is required")
        return None
    if not isinstance(value, str):
        raise ApiError(422, "Invalid field", f"{name} must be a string")
    return _text(value, name, 2000)


def _types_field(body: dict[str, Any]) -> list[str] | None:
    value = body.get("event_types")
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ApiError(422, "Invalid field", "event_types must be a list of strings")
    return value


def _cursor(request: Request) -> int:
    raw = request.query_params.get("cursor")
    if raw is None:
        return 0
    try:
        return event_api.decode_cursor(raw)
    except event_api.CursorError as exc:
        raise ApiError(400, "Invalid cursor", str(exc)) from None


# -- authentication -----------------------------------------------------------------------------

Handler = Callable[[Request, Provider, ApiKey], Awaitable[Response]]


def route(scope: Scope | None, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        provider: Provider = request.app.state.provider
        try:
            key = await _authenticate(request, provider, scope)
            return await handler(request, provider, key)
        except ApiError as exc:
            return problem(exc.status, exc.title, exc.detail, **exc.extra)

    return endpoint


async def _authenticate(request: Request, provider: Provider, scope: Scope | None) -> ApiKey:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    challenge = 'Bearer realm="freshid-admin"'
    if scheme.lower() != "bearer" or not value.strip():
        raise ApiError(
            401,
            "Unauthorized",
            "an admin API key is required",
            headers={"WWW-Authenticate": challenge},
        )
    presented = value.strip()
    key = await provider.read(lambda conn: key_store.authenticate(conn, presented))
    if key is None:
        raise ApiError(
            401,
            "Unauthorized",
            "the admin API key is not valid",
            headers={"WWW-Authenticate": challenge + ', error="invalid_token"'},
        )
    if scope is not None and scope.value not in key.scopes:
        raise ApiError(
            403,
            "Forbidden",
            f"this key lacks the {scope.value} scope",
            headers={
                "WWW-Authenticate": challenge + f', error="insufficient_scope", scope="{scope}"'
            },
        )
    now = provider.now()
    if key.last_used_at is None or now - key.last_used_at >= 60:
        await provider.write(lambda conn: key_store.touch(conn, key, now))
    return key


# -- events -------------------------------------------------------------------------------------


def _event_filter(request: Request) -> event_api.EventFilter:
    types: list[str] = []
    for raw in request.query_params.getlist("type"):
        types.extend(t for t in _text(raw, "type", 2000).split(",") if t)
    flt = event_api.EventFilter(
        types=tuple(types),
        user_id=_query_text(request, "user_id"),
        session_id=_query_text(request, "session_id"),
        client_id=_query_text(request, "client_id"),
        since=_query_int(request, "since", None, 0, _MAX_INT),
        until=_query_int(request, "until", None, 0, _MAX_INT),
    )
    try:
        flt.validate()
    except ValueError as exc:
        raise ApiError(400, "Invalid parameter", str(exc)) from None
    return flt


async def list_events(request: Request, provider: Provider, _key: ApiKey) -> Response:
    flt = _event_filter(request)
    after = _cursor(request)
    limit = _query_int(request, "limit", event_api.DEFAULT_LIMIT, 1, event_api.MAX_LIMIT)
    assert limit is not None
    page = await provider.read(lambda conn: event_api.page(conn, flt, after, limit))
    return JSONResponse(
        {"data": page.events, "next_cursor": page.next_cursor, "has_more": page.has_more}
    )


async def get_event(request: Request, provider: Provider, _key: ApiKey) -> Response:
    raw = _path(request, "event_id")
    if not raw.isdigit() or len(raw) > 15:
        raise ApiError(404, "Not found", "no such event")
    event = await provider.read(lambda conn: event_api.by_id(conn, int(raw)))
    if event is None:
        raise ApiError(404, "Not found", "no such event")
    return JSONResponse(event)


# -- users, sessions, clients -------------------------------------------------------------------


def _user_json(m: Any) -> dict[str, Any]:
    return {
        "id": m["id"],
        "email": m["email"],
        "disabled": bool(m["disabled"]),
        "created_at": int(m["created_at"]),
    }


def _text_cursor(request: Request) -> str:
    value = request.query_params.get("after", "")
    return _text(value, "after", 128)


async def list_users(request: Request, provider: Provider, _key: ApiKey) -> Response:
    after = _text_cursor(request)
    limit = _query_int(request, "limit", 100, 1, 1000)

    def run(conn: Connection) -> list[dict[str, Any]]:
        rows = conn.execute(
            users.select().where(users.c.id > after).order_by(users.c.id).limit(limit)
        )
        return [_user_json(r._mapping) for r in rows]

    data = await provider.read(run)
    return JSONResponse(
        {"data": data, "next_after": data[-1]["id"] if len(data) == limit else None}
    )


async def get_user(request: Request, provider: Provider, _key: ApiKey) -> Response:
    user_id = _path(request, "user_id")
    row = await provider.read(
        lambda conn: conn.execute(users.select().where(users.c.id == user_id)).first()
    )
    if row is None:
        raise ApiError(404, "Not found", "no such user")
    return JSONResponse(_user_json(row._mapping))


def _session_json(m: Any, now: int, idle_ttl: int) -> dict[str, Any]:
    active = (
        m["revoked_at"] is None and now < m["expires_at"] and now - m["last_seen_at"] < idle_ttl
    )
    return {
        "id": m["id"],
        "user_id": m["user_id"],
        "created_at": int(m["created_at"]),
        "auth_time": int(m["auth_time"]),
        "proof_age": max(0, now - int(m["auth_time"])),
        "last_seen_at": int(m["last_seen_at"]),
        "expires_at": int(m["expires_at"]),
        "revoked_at": m["revoked_at"],
        "revoked_reason": m["revoked_reason"],
        "user_agent": m["user_agent"],
        "active": active,
    }


async def list_user_sessions(request: Request, provider: Provider, _key: ApiKey) -> Response:
    user_id = _path(request, "user_id")
    active_only = request.query_params.get("active") in {"true", "1"}
    now, idle = provider.now(), provider.settings.session_idle_ttl

    def run(conn: Connection) -> list[dict[str, Any]] | None:
        if conn.execute(sa.select(users.c.id).where(users.c.id == user_id)).first() is None:
            return None
        rows = conn.execute(
            sessions.select()
            .where(sessions.c.user_id == user_id)
            .order_by(sessions.c.created_at.desc(), sessions.c.id)
            .limit(500)
        )
        out = [_session_json(r._mapping, now, idle) for r in rows]
        return [s for s in out if s["active"]] if active_only else out

    data = await provider.read(run)
    if data is None:
        raise ApiError(404, "Not found", "no such user")
    return JSONResponse({"data": data})


async def revoke_session(request: Request, provider: Provider, key: ApiKey) -> Response:
    session_id = _path(request, "session_id")
    now = provider.now()

    def run(conn: Connection) -> bool | None:
        row = conn.execute(sa.select(sessions.c.user_id).where(sessions.c.id == session_id)).first()
        if row is None:
            return None
        return session_store.revoke(conn, session_id, "admin", now, user_id=row.user_id)

    revoked = await provider.write(run)
    if revoked is None:
        raise ApiError(404, "Not found", "no such session")
    return JSONResponse({"id": session_id, "revoked": True, "changed": revoked})


async def revoke_user_sessions(request: Request, provider: Provider, key: ApiKey) -> Response:
    user_id = _path(request, "user_id")
    now = provider.now()

    def run(conn: Connection) -> list[str] | None:
        if conn.execute(sa.select(users.c.id).where(users.c.id == user_id)).first() is None:
            return None
        live = conn.execute(
            sa.select(sessions.c.id).where(
                sessions.c.user_id == user_id, sessions.c.revoked_at.is_(None)
            )
        ).scalars()
        return [s for s in list(live) if session_store.revoke(conn, s, "admin", now, user_id)]

    revoked = await provider.write(run)
    if revoked is None:
        raise ApiError(404, "Not found", "no such user")
    return JSONResponse({"revoked": revoked})


async def list_clients(request: Request, provider: Provider, _key: ApiKey) -> Response:
    def run(conn: Connection) -> list[dict[str, Any]]:
        rows = conn.execute(sa.select(clients.c.client_id, clients.c.created_at))
        created = {r.client_id: int(r.created_at) for r in rows}
        return [
            {
                "client_id": c.client_id,
                "name": c.name,
                "public": c.is_public,
                "redirect_uris": list(c.redirect_uris),
                "post_logout_redirect_uris": list(c.post_logout_redirect_uris),
                "default_max_age": c.default_max_age,
                "require_auth_time": c.require_auth_time,
                "created_at": created.get(c.client_id),
            }
            for c in client_store.all_clients(conn)
        ]

    return JSONResponse({"data": await provider.read(run)})


# -- webhook endpoints --------------------------------------------------------------------------


async def list_webhooks(request: Request, provider: Provider, _key: ApiKey) -> Response:
    found = await provider.read(hooks.all_endpoints)
    return JSONResponse({"data": [e.as_json() for e in found]})


async def create_webhook(request: Request, provider: Provider, _key: ApiKey) -> Response:
    body = await _json_body(request)
    url = _str_field(body, "url", required=True)
    assert url is not None
    description = _str_field(body, "description") or ""
    types = _types_field(body) or []
    now = provider.now()
    try:
        endpoint, secret = await provider.write(
            lambda conn: hooks.create(conn, url, types, description, now)
        )
    except ValueError as exc:
        raise ApiError(422, "Invalid field", str(exc)) from None
    return JSONResponse({**endpoint.as_json(), "secret": secret}, status_code=201)


async def _endpoint_or_404(provider: Provider, endpoint_id: str) -> hooks.Endpoint:
    found = await provider.read(lambda conn: hooks.get(conn, endpoint_id))
    if found is None:
        raise ApiError(404, "Not found", "no such webhook endpoint")
    return found


async def get_webhook(request: Request, provider: Provider, _key: ApiKey) -> Response:
    return JSONResponse((await _endpoint_or_404(provider, _path(request, "endpoint_id"))).as_json())


async def update_webhook(request: Request, provider: Provider, _key: ApiKey) -> Response:
    endpoint_id = _path(request, "endpoint_id")
    body = await _json_body(request)
    url, description = _str_field(body, "url"), _str_field(body, "description")
    types = _types_field(body)
    now = provider.now()
    try:
        updated = await provider.write(
            lambda conn: hooks.update(
                conn, endpoint_id, now, url=url, event_types=types, description=description
            )
        )
    except ValueError as exc:
        raise ApiError(422, "Invalid field", str(exc)) from None
    if updated is None:
        raise ApiError(404, "Not found", "no such webhook endpoint")
    return JSONResponse(updated.as_json())


async def delete_webhook(request: Request, provider: Provider, _key: ApiKey) -> Response:
    endpoint_id = _path(request, "endpoint_id")
    now = provider.now()
    if not await provider.write(lambda conn: hooks.delete(conn, endpoint_id, now)):
        raise ApiError(404, "Not found", "no such webhook endpoint")
    return Response(status_code=204)


async def rotate_webhook_secret(request: Request, provider: Provider, _key: ApiKey) -> Response:
    endpoint_id = _path(request, "endpoint_id")
    now = provider.now()
    secret = await provider.write(lambda conn: hooks.rotate_secret(conn, endpoint_id, now))
    if secret is None:
        raise ApiError(404, "Not found", "no such webhook endpoint")
    return JSONResponse({"id": endpoint_id, "secret": secret})


def _set_enabled(enabled: bool) -> Handler:
    async def handler(request: Request, provider: Provider, _key: ApiKey) -> Response:
        endpoint_id = _path(request, "endpoint_id")
        now = provider.now()
        await _endpoint_or_404(provider, endpoint_id)
        await provider.write(
            lambda conn: hooks.set_enabled(conn, endpoint_id, enabled, now, "disabled by an admin")
        )
        return JSONResponse((await _endpoint_or_404(provider, endpoint_id)).as_json())

    return handler


async def list_deliveries(request: Request, provider: Provider, _key: ApiKey) -> Response:
    endpoint_id = _path(request, "endpoint_id")
    await _endpoint_or_404(provider, endpoint_id)
    after = _query_int(request, "after", 0, 0, _MAX_INT)
    limit = _query_int(request, "limit", 100, 1, 1000)
    status = request.query_params.get("status")
    if status is not None and status not in {"pending", "succeeded", "failed"}:
        raise ApiError(400, "Invalid parameter", "status is pending, succeeded or failed")
    assert after is not None and limit is not None
    data = await provider.read(
        lambda conn: delivery.deliveries_for(
            conn, endpoint_id, after, limit, [status] if status else []
        )
    )
    return JSONResponse({"data": data, "next_after": data[-1]["id"] if data else after})


# -- upstream identity provider connections -----------------------------------------------------

_SETTING_TYPES: list[tuple[str, type[Any], str]] = [
    ("id", str, "a string"),
    ("kind", str, "a string"),
    ("name", str, "a string"),
    ("config", dict, "an object"),
    ("client_secret", str, "a string"),
    ("domains", list, "a list of strings"),
    ("freshness_skew", int, "an integer"),
    ("jit", bool, "true or false"),
    ("link_verified_email", bool, "true or false"),
    ("show_on_login", bool, "true or false"),
    ("enabled", bool, "true or false"),
]
_CREATE_FIELDS = frozenset(name for name, _kind, _what in _SETTING_TYPES)
_FIXED_FIELDS = {
    "id": "id: cannot be changed; create another connection",
    "kind": "kind: cannot be changed; create another connection",
    "enabled": "enabled: use POST /connections/{connection_id}/enable or /disable",
}
_UPDATE_FIELDS = _CREATE_FIELDS - set(_FIXED_FIELDS)
_MAX_SECRET = 512  # the column's width
_MAX_DEPTH = 32


def _invalid(detail: str) -> ApiError:
    """A 400 naming the setting at fault (the messages read ``setting: what is wrong``)."""
    setting = detail.split(":", 1)[0]
    return ApiError(400, "Invalid connection", detail, setting=setting)


def _check_plain_json(body: dict[str, Any]) -> None:
    """Refuse what JSON parsing lets through but the databases or the response cannot hold:
    NUL and lone surrogates in strings, NaN and infinities, absurd nesting."""
    stack: list[tuple[str, Any, int]] = [(k, v, 1) for k, v in body.items()]
    while stack:
        setting, value, depth = stack.pop()
        if depth > _MAX_DEPTH:
            raise _invalid(f"{setting}: nested too deeply")
        if isinstance(value, str):
            values: list[Any] = []
            texts = [value]
        elif isinstance(value, dict):
            values, texts = list(value.values()), list(value)
        elif isinstance(value, list):
            values, texts = value, []
        elif isinstance(value, float) and not math.isfinite(value):
            raise _invalid(f"{setting}: numbers must be finite")
        else:
            continue
        for text in texts:
            if "\x00" in text or (not text.isascii() and not _utf8(text)):
                raise _invalid(f"{setting}: contains NUL or invalid Unicode")
        stack.extend((setting, v, depth + 1) for v in values)


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _setting(body: dict[str, Any], name: str, kind: type[T], what: str) -> T | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise _invalid(f"{name}: must be {what}")
    return value


def _connection_settings(body: dict[str, Any], allowed: frozenset[str]) -> dict[str, Any]:
    """The settings a body gives, type-checked; the values are checked by the store."""
    for name in sorted(body):
        if name not in allowed:
            raise _invalid(_FIXED_FIELDS.get(name, f"{name}: unknown setting"))
    _check_plain_json(body)
    out: dict[str, Any] = {}
    for name, kind, what in _SETTING_TYPES:
        value = _setting(body, name, kind, what)
        if value is not None:
            out[name] = value
    if not all(isinstance(d, str) for d in out.get("domains", [])):
        raise _invalid("domains: must be a list of strings")
    if len(out.get("client_secret", "")) > _MAX_SECRET:
        raise _invalid(f"client_secret: at most {_MAX_SECRET} characters")
    return out


async def _check_metadata(kind: str, settings: dict[str, Any]) -> None:
    """Parse SAML IdP metadata before storing it, as ``freshid connections create`` does."""
    metadata = settings.get("config", {}).get("idp_metadata")
    if (
        kind == connection_store.SAML
        and isinstance(metadata, str)
        and "EntityDescriptor" in metadata
    ):
        try:
            await anyio.to_thread.run_sync(connection_store.check_saml_metadata, metadata)
        except InvalidConnection as exc:
            raise _invalid(str(exc)) from None


def _connection_json(c: connection_store.Connection, issuer: str) -> dict[str, Any]:
    base = f"{issuer}/federation/{c.id}"
    out: dict[str, Any] = {
        "id": c.id,
        "kind": c.kind,
        "name": c.name,
        "method": c.method,
        "enabled": c.enabled,
        "show_on_login": c.show_on_login,
        "domains": list(c.domains),
        "jit": c.jit,
        "link_verified_email": c.link_verified_email,
        "freshness_skew": c.freshness_skew,
        "config": dict(c.config),
        "client_secret_set": bool(c.client_secret),  # never the secret itself
        "created_at": c.created_at,
    }
    if c.kind == connection_store.SAML:
        out.update(acs_url=f"{base}/saml/acs", sp_metadata_url=f"{base}/saml/metadata")
    else:
        out["redirect_uri"] = f"{base}/callback"
    return out


async def list_connections(request: Request, provider: Provider, _key: ApiKey) -> Response:
    found = await provider.read(connection_store.all_connections)
    return JSONResponse({"data": [_connection_json(c, provider.issuer) for c in found]})


async def create_connection(request: Request, provider: Provider, _key: ApiKey) -> Response:
    settings = _connection_settings(await _json_body(request, _MAX_CONNECTION_BODY), _CREATE_FIELDS)
    for name in ("id", "kind", "name", "config"):
        if name not in settings:
            raise _invalid(f"{name}: required")
    await _check_metadata(settings["kind"], settings)
    now = provider.now()
    try:
        created = await provider.write(
            lambda conn: connection_store.create(conn, now=now, **settings)
        )
    except connection_store.DuplicateConnection as exc:
        raise ApiError(409, "Conflict", str(exc), setting="id") from None
    except InvalidConnection as exc:
        raise _invalid(str(exc)) from None
    except sa.exc.IntegrityError:  # the same id, created concurrently
        detail = f"id: a connection {settings['id']!r} exists"
        raise ApiError(409, "Conflict", detail, setting="id") from None
    return JSONResponse(_connection_json(created, provider.issuer), status_code=201)


async def _connection_or_404(provider: Provider, connection_id: str) -> connection_store.Connection:
    found = await provider.read(lambda conn: connection_store.get(conn, connection_id))
    if found is None:
        raise ApiError(404, "Not found", "no such connection")
    return found


async def get_connection(request: Request, provider: Provider, _key: ApiKey) -> Response:
    found = await _connection_or_404(provider, _path(request, "connection_id"))
    return JSONResponse(_connection_json(found, provider.issuer))


async def update_connection(request: Request, provider: Provider, _key: ApiKey) -> Response:
    connection_id = _path(request, "connection_id")
    body = await _json_body(request, _MAX_CONNECTION_BODY)
    current = await _connection_or_404(provider, connection_id)
    settings = _connection_settings(body, _UPDATE_FIELDS)
    await _check_metadata(current.kind, settings)
    now = provider.now()
    try:
        updated = await provider.write(
            lambda conn: connection_store.update(conn, connection_id, now, **settings)
        )
    except InvalidConnection as exc:
        raise _invalid(str(exc)) from None
    if updated is None:
        raise ApiError(404, "Not found", "no such connection")
    upstream_client.forget_caches()  # this process's; the others' expire in minutes
    return JSONResponse(_connection_json(updated, provider.issuer))


def _set_connection_enabled(enabled: bool) -> Handler:
    async def handler(request: Request, provider: Provider, _key: ApiKey) -> Response:
        connection_id = _path(request, "connection_id")
        now = provider.now()

        def run(conn: Connection) -> connection_store.Connection | None:
            if not connection_store.set_enabled(conn, connection_id, enabled, now):
                return None
            return connection_store.get(conn, connection_id)

        found = await provider.write(run)
        if found is None:
            raise ApiError(404, "Not found", "no such connection")
        return JSONResponse(_connection_json(found, provider.issuer))

    return handler


async def delete_connection(request: Request, provider: Provider, _key: ApiKey) -> Response:
    connection_id = _path(request, "connection_id")
    now = provider.now()
    in_use = (
        "identities are linked to this connection: unlink them first "
        "(DELETE /users/{user_id}/identities/" + connection_id + "), or disable it instead"
    )
    try:
        deleted = await provider.write(
            lambda conn: connection_store.delete(conn, connection_id, now)
        )
    except connection_store.ConnectionInUse as exc:
        raise ApiError(409, "Connection in use", in_use, linked_identities=exc.linked) from None
    except sa.exc.IntegrityError:  # an identity linked while we deleted
        raise ApiError(409, "Connection in use", in_use) from None
    if not deleted:
        raise ApiError(404, "Not found", "no such connection")
    return Response(status_code=204)


def _identity_json(i: identity_store.Identity) -> dict[str, Any]:
    return {
        "id": i.id,
        "user_id": i.user_id,
        "connection_id": i.connection_id,
        "subject": i.subject,
        "email": i.email,
        "linked_by": i.linked_by,
        "created_at": i.created_at,
        "last_used_at": i.last_used_at,
    }


async def list_user_identities(request: Request, provider: Provider, _key: ApiKey) -> Response:
    user_id = _path(request, "user_id")

    def run(conn: Connection) -> list[dict[str, Any]] | None:
        if conn.execute(sa.select(users.c.id).where(users.c.id == user_id)).first() is None:
            return None
        return [_identity_json(i) for i in identity_store.for_user(conn, user_id)]

    data = await provider.read(run)
    if data is None:
        raise ApiError(404, "Not found", "no such user")
    return JSONResponse({"data": data})


async def unlink_user_identity(request: Request, provider: Provider, _key: ApiKey) -> Response:
    user_id, connection_id = _path(request, "user_id"), _path(request, "connection_id")
    now = provider.now()
    if not await provider.write(
        lambda conn: identity_store.unlink(conn, user_id, connection_id, now)
    ):
        raise ApiError(404, "Not found", "no identity of this user is linked to this connection")
    return Response(status_code=204)


# -- the application ----------------------------------------------------------------------------


async def metrics(request: Request, provider: Provider, _key: ApiKey) -> Response:
    """Prometheus text format 0.0.4 (mounted at ``/metrics`` by the app, not under /api/v1)."""
    now = provider.now()
    counts = observability.event_counts(provider.db)
    lines = observability.HTTP_METRICS.render()
    lines += await provider.read(lambda conn: observability.store_metrics(conn, counts, now))
    return Response("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4; charset=utf-8")


metrics_endpoint = route(Scope.METRICS_READ, metrics)


async def openapi_document(request: Request) -> Response:
    return JSONResponse(openapi.document(str(request.app.state.provider.issuer)))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    titles = {404: "Not found", 405: "Method not allowed"}
    return problem(exc.status_code, titles.get(exc.status_code, "Bad request"), str(exc.detail))


async def _database_unavailable(request: Request, exc: Exception) -> Response:
    log.warning("admin API: database unavailable (%s) on %s", type(exc).__name__, request.url.path)
    return problem(
        503,
        "Service unavailable",
        "the database is unavailable; retry later",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


async def _server_error(request: Request, exc: Exception) -> Response:
    # The type only: the text may echo request data.
    log.error("admin API: unhandled %s on %s", type(exc).__name__, request.url.path)
    return problem(500, "Internal server error")


ROUTES: list[tuple[str, str, Scope | None, Handler]] = [
    ("/events", "GET", Scope.EVENTS_READ, list_events),
    ("/events/{event_id}", "GET", Scope.EVENTS_READ, get_event),
    ("/users", "GET", Scope.USERS_READ, list_users),
    ("/users/{user_id}", "GET", Scope.USERS_READ, get_user),
    ("/users/{user_id}/sessions", "GET", Scope.SESSIONS_READ, list_user_sessions),
    ("/users/{user_id}/sessions/revoke", "POST", Scope.SESSIONS_WRITE, revoke_user_sessions),
    ("/sessions/{session_id}/revoke", "POST", Scope.SESSIONS_WRITE, revoke_session),
    ("/clients", "GET", Scope.CLIENTS_READ, list_clients),
    ("/webhooks", "GET", Scope.WEBHOOKS_READ, list_webhooks),
    ("/webhooks", "POST", Scope.WEBHOOKS_WRITE, create_webhook),
    ("/webhooks/{endpoint_id}", "GET", Scope.WEBHOOKS_READ, get_webhook),
    ("/webhooks/{endpoint_id}", "PATCH", Scope.WEBHOOKS_WRITE, update_webhook),
    ("/webhooks/{endpoint_id}", "DELETE", Scope.WEBHOOKS_WRITE, delete_webhook),
    (
        "/webhooks/{endpoint_id}/rotate-secret",
        "POST",
        Scope.WEBHOOKS_WRITE,
        rotate_webhook_secret,
    ),
    ("/webhooks/{endpoint_id}/enable", "POST", Scope.WEBHOOKS_WRITE, _set_enabled(True)),
    ("/webhooks/{endpoint_id}/disable", "POST", Scope.WEBHOOKS_WRITE, _set_enabled(False)),
    ("/webhooks/{endpoint_id}/deliveries", "GET", Scope.WEBHOOKS_READ, list_deliveries),
    ("/connections", "GET", Scope.CONNECTIONS_READ, list_connections),
    ("/connections", "POST", Scope.CONNECTIONS_WRITE, create_connection),
    ("/connections/{connection_id}", "GET", Scope.CONNECTIONS_READ, get_connection),
    ("/connections/{connection_id}", "PATCH", Scope.CONNECTIONS_WRITE, update_connection),
    ("/connections/{connection_id}", "DELETE", Scope.CONNECTIONS_WRITE, delete_connection),
    (
        "/connections/{connection_id}/enable",
        "POST",
        Scope.CONNECTIONS_WRITE,
        _set_connection_enabled(True),
    ),
    (
        "/connections/{connection_id}/disable",
        "POST",
        Scope.CONNECTIONS_WRITE,
        _set_connection_enabled(False),
    ),
    ("/users/{user_id}/identities", "GET", Scope.CONNECTIONS_READ, list_user_identities),
    (
        "/users/{user_id}/identities/{connection_id}",
        "DELETE",
        Scope.CONNECTIONS_WRITE,
        unlink_user_identity,
    ),
]


def create_api(provider: Provider) -> Starlette:
    """The ``/api/v1`` application; mount it with ``Mount("/api/v1", app=create_api(p))``."""
    by_path: dict[str, dict[str, Callable[[Request], Awaitable[Response]]]] = {}
    for path, method, scope, handler in ROUTES:
        by_path.setdefault(path, {})[method] = route(scope, handler)

    def dispatcher(
        methods: dict[str, Callable[[Request], Awaitable[Response]]],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            handler = methods.get(request.method)
            if handler is None:
                allowed = ", ".join(sorted(methods))
                return problem(405, "Method not allowed", headers={"Allow": allowed})
            return await handler(request)

        return endpoint

    routes = [Route("/openapi.json", openapi_document, methods=["GET"])]
    routes += [
        Route(path, dispatcher(methods), methods=[*methods, "PUT", "PATCH", "DELETE", "POST"])
        for path, methods in by_path.items()
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={
            HTTPException: _http_error,
            **dict.fromkeys(DATABASE_UNAVAILABLE, _database_unavailable),
            Exception: _server_error,
        },
    )
    app.state.provider = provider
    return app
