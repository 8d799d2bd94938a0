"""The issuer's signing keys: discovery (OIDC Discovery 1.0 §4), then ``jwks_uri``, then the JWK
set (RFC 7517 §5).

:class:`JWKSCache` is the I/O-free core: it holds the provider metadata and the current
:class:`~freshid_guard.jose.KeySet` and decides *whether* to fetch. :func:`fetch_keys` and
:func:`fetch_keys_async` are the two thin fetchers on ``httpx``.

When a fetch happens:

- no keys yet, or the keys are older than ``ttl`` (default 300 s, the provider's own
  ``Cache-Control`` lifetime) — a refresh;
- a token names a ``kid`` the set does not hold — the provider may have rotated its key — but at
  most once per ``min_refetch_interval`` (default 30 s), so tokens with garbage ``kid`` values
  cannot make the app hammer the provider. Failed attempts count too.

If a refresh fails the previous keys stay in use for up to ``max_stale`` seconds (default one day):
a provider outage must not lock everybody out. With no usable keys the guard answers ``503``
(:class:`~freshid_guard.errors.ProviderUnavailable`), never ``invalid_token``: the token might be
fine. The discovered ``issuer`` must equal the configured one exactly (OIDC Discovery §4.3).
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from dataclasses import dataclass
from typing import Any, TypeGuard
from urllib.parse import urlsplit

import httpx

from freshid_guard.errors import ProviderUnavailable
from freshid_guard.jose import KeySet

MAX_DOCUMENT_BYTES = 512 * 1024
DEFAULT_TIMEOUT = 5.0


@dataclass(frozen=True)
class ProviderMetadata:
    """The parts of the provider's metadata (OIDC Discovery §3) the guard uses."""

    issuer: str
    jwks_uri: str
    authorization_endpoint: str | None


def discovery_url(issuer: str) -> str:
    """OIDC Discovery §4: the issuer without its trailing ``/``, then
    ``/.well-known/openid-configuration``."""
    return issuer.rstrip("/") + "/.well-known/openid-configuration"


def _is_web_url(value: object, *, https_only: bool) -> TypeGuard[str]:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    allowed = {"https"} if https_only else {"https", "http"}
    return parts.scheme in allowed and bool(parts.netloc)


def parse_metadata(document: object, issuer: str) -> ProviderMetadata:
    """Validate discovery metadata for ``issuer``; raises :class:`ValueError`."""
    if not isinstance(document, dict):
        raise ValueError("provider metadata is not a JSON object")
    if document.get("issuer") != issuer:
        raise ValueError("provider metadata names another issuer (OIDC Discovery §4.3)")
    https_only = urlsplit(issuer).scheme == "https"
    jwks_uri = document.get("jwks_uri")
    if not _is_web_url(jwks_uri, https_only=https_only):
        raise ValueError("provider metadata has no usable jwks_uri")
    endpoint = document.get("authorization_endpoint")
    usable_endpoint = endpoint if _is_web_url(endpoint, https_only=https_only) else None
    return ProviderMetadata(issuer, jwks_uri, usable_endpoint)


class JWKSCache:
    """The I/O-free state of the issuer's metadata and keys (see the module docstring)."""

    def __init__(
        self,
        issuer: str,
        *,
        ttl: int = 300,
        min_refetch_interval: int = 30,
        max_stale: int = 86_400,
    ) -> None:
        if ttl < 1 or min_refetch_interval < 0 or max_stale < 0:
            raise ValueError("ttl must be positive; intervals must not be negative")
        self.issuer = issuer
        self.ttl = ttl
        self.min_refetch_interval = min_refetch_interval
        self.max_stale = max_stale
        self.metadata: ProviderMetadata | None = None
        self.keys: KeySet | None = None
        self.fetched_at: int | None = None
        self.last_attempt: int | None = None
        self.fetch_count = 0
        self.sync_lock = threading.Lock()
        self._async_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )

    def async_lock(self) -> asyncio.Lock:
        """One lock per event loop (an ``asyncio.Lock`` cannot be shared between loops)."""
        loop = asyncio.get_running_loop()
        lock = self._async_locks.get(loop)
        if lock is None:
            lock = self._async_locks[loop] = asyncio.Lock()
        return lock

    def usable(self, now: int) -> KeySet | None:
        """The current keys, unless there are none or they are older than ``ttl + max_stale``."""
        if self.keys is None or self.fetched_at is None:
            return None
        if now >= self.fetched_at + self.ttl + self.max_stale:
            return None
        return self.keys

    def fresh(self, now: int) -> KeySet | None:
        """The keys, when they are younger than ``ttl``, else ``None``: then no fetch is due and
        they are usable, so every verification asks this first, before :meth:`should_fetch`."""
        keys, fetched_at = self.keys, self.fetched_at
        if keys is not None and fetched_at is not None and now < fetched_at + self.ttl:
            return keys
        return None

    def should_fetch(self, now: int, *, unknown_kid: bool = False) -> bool:
        """Whether to fetch now: missing or expired keys, or an unknown ``kid``, rate limited."""
        if self.last_attempt is not None and now - self.last_attempt < self.min_refetch_interval:
            return False
        if self.keys is None or self.fetched_at is None or unknown_kid:
            return True
        return now >= self.fetched_at + self.ttl

    def begin(self, now: int) -> None:
        self.last_attempt = now
        self.fetch_count += 1

    def accept_metadata(self, document: object) -> ProviderMetadata:
        self.metadata = parse_metadata(document, self.issuer)
        return self.metadata

    def accept_jwks(self, document: object, now: int) -> KeySet:
        keys = KeySet.from_jwks(document)
        self.keys = keys
        self.fetched_at = now
        return keys

    def result(self, now: int) -> KeySet:
        keys = self.usable(now)
        if keys is None:
            raise ProviderUnavailable("the issuer's signing keys are unavailable")
        return keys


def _json(response: httpx.Response) -> Any:
    if response.status_code != 200:
        raise ValueError(f"HTTP {response.status_code}")
    if len(response.content) > MAX_DOCUMENT_BYTES:
        raise ValueError("document too large")
    return response.json()


def fetch_keys(
    cache: JWKSCache, client: httpx.Client, now: int, *, unknown_kid: bool = False
) -> KeySet:
    """The keys to verify with, fetching (synchronously) when :meth:`JWKSCache.should_fetch`."""
    if not cache.should_fetch(now, unknown_kid=unknown_kid):
        return cache.result(now)
    with cache.sync_lock:
        if cache.should_fetch(now, unknown_kid=unknown_kid):
            cache.begin(now)
            try:
                metadata = cache.metadata or cache.accept_metadata(
                    _json(client.get(discovery_url(cache.issuer)))
                )
                cache.accept_jwks(_json(client.get(metadata.jwks_uri)), now)
            except (httpx.HTTPError, ValueError):
                cache.metadata = None  # rediscover next time: the jwks_uri may have moved
    return cache.result(now)


async def fetch_keys_async(
    cache: JWKSCache, client: httpx.AsyncClient, now: int, *, unknown_kid: bool = False
) -> KeySet:
    """:func:`fetch_keys` for ``asyncio`` apps."""
    if not cache.should_fetch(now, unknown_kid=unknown_kid):
        return cache.result(now)
    async with cache.async_lock():
        if cache.should_fetch(now, unknown_kid=unknown_kid):
            cache.begin(now)
            try:
                metadata = cache.metadata or cache.accept_metadata(
                    _json(await client.get(discovery_url(cache.issuer)))
                )
                cache.accept_jwks(_json(await client.get(metadata.jwks_uri)), now)
            except (httpx.HTTPError, ValueError):
                cache.metadata = None
    return cache.result(now)


def fetch_metadata(cache: JWKSCache, client: httpx.Client, now: int) -> ProviderMetadata:
    """The provider metadata, discovering it (once) if it is not known yet."""
    if cache.metadata is None:
        fetch_keys(cache, client, now, unknown_kid=True)
    if cache.metadata is None:
        raise ProviderUnavailable("the issuer's metadata is unavailable")
    return cache.metadata


async def fetch_metadata_async(
    cache: JWKSCache, client: httpx.AsyncClient, now: int
) -> ProviderMetadata:
    """:func:`fetch_metadata` for ``asyncio`` apps."""
    if cache.metadata is None:
        await fetch_keys_async(cache, client, now, unknown_kid=True)
    if cache.metadata is None:
        raise ProviderUnavailable("the issuer's metadata is unavailable")
    return cache.metadata
