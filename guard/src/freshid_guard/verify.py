"""Verifying RFC 9068 JWT access tokens, without I/O.

:meth:`TokenVerifier.verify` is handed the token, a :class:`~freshid_guard.jose.KeySet` and the
current time, and either returns a :class:`VerifiedToken` or raises
:class:`~freshid_guard.errors.InvalidToken`. The checks, in order:

1. Compact JWS shape and size (RFC 7515 §7.1).
2. Header: ``typ`` is ``at+jwt`` (RFC 9068 §4; ``application/at+jwt`` too, case-insensitively, RFC
   7515 §4.1.9); ``alg`` is in the allow-list (default ``ES256``; ``none`` and ``HS*`` cannot be
   allowed); no ``jku``/``jwk``/``x5u``/``x5c``/``crit`` (RFC 8725 §3.10); ``kid`` names a key in
   the set — an unknown one raises :class:`~freshid_guard.errors.UnknownKey` so the caller may
   refetch the set once.
3. The signature, with a key whose type and ``alg`` fit the token's ``alg`` (RFC 8725 §3.1).
4. Claims (RFC 9068 §2.2, RFC 7519 §4.1): ``iss`` exactly the issuer; ``aud`` (a string or a list)
   contains the expected audience (FreshID uses its issuer URL, the default); ``exp`` in the future
   (with a small leeway); ``nbf``, ``iat`` and ``auth_time`` not in the future; ``auth_time`` not
   after ``iat``; ``sub``, ``client_id``, ``jti`` present.
5. ``auth_time`` (OIDC Core §2) is *required*: without it nobody can tell how fresh the proof is.

The token's claims are then typed strictly: a claim of the wrong JSON type refuses the token.

:class:`VerifiedTokenCache` remembers verified tokens by their exact text so that a repeated token
costs a dictionary lookup. It honours ``exp`` and is cleared whenever the key set changes. It caches
*verification* only: freshness is judged on every request.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from freshid_guard.errors import InvalidToken, UnknownKey
from freshid_guard.jose import (
    DEFAULT_MAX_TOKEN_LENGTH,
    FORBIDDEN_HEADERS,
    KeySet,
    check_algorithms,
    parse_compact,
    payload_object,
    verify_signature,
)
from freshid_guard.policy import ACTION_DETAIL_TYPE

DEFAULT_ALGORITHMS = frozenset({"ES256"})
DEFAULT_LEEWAY = 30
_ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})
_MAX_ID_LENGTH = 255


@dataclass(frozen=True, eq=False)
class VerifiedToken:
    """A verified access token's claims, typed."""

    issuer: str
    sub: str
    client_id: str
    jti: str
    scope: frozenset[str]
    auth_time: int
    """When the user last proved who they are (OIDC Core §2), seconds since the epoch."""
    acr: str | None
    amr: tuple[str, ...]
    sid: str | None
    iat: int
    exp: int
    authorization_details: tuple[Mapping[str, Any], ...] = ()
    """RFC 9396 §2 authorization details the token carries."""
    claims: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    """Every claim, read-only."""

    @property
    def bound_actions(self) -> frozenset[str]:
        """The actions this token's proof was given for (``urn:freshid:action`` details)."""
        return frozenset(
            d["action"]
            for d in self.authorization_details
            if d.get("type") == ACTION_DETAIL_TYPE and isinstance(d.get("action"), str)
        )


class TokenVerifier:
    """Verifies access tokens from one issuer for one audience (the checks are listed above)."""

    def __init__(
        self,
        issuer: str,
        *,
        audience: str | None = None,
        algorithms: frozenset[str] = DEFAULT_ALGORITHMS,
        leeway: int = DEFAULT_LEEWAY,
        max_token_length: int = DEFAULT_MAX_TOKEN_LENGTH,
    ) -> None:
        if not issuer:
            raise ValueError("issuer is required")
        if leeway < 0 or leeway > 300:
            raise ValueError("leeway must be between 0 and 300 seconds")
        self.issuer = issuer
        self.audience = audience if audience is not None else issuer
        self.algorithms = check_algorithms(frozenset(algorithms))
        self.leeway = leeway
        self.max_token_length = max_token_length

    def verify(self, token: str, keys: KeySet, now: int) -> VerifiedToken:
        """Verify ``token`` against ``keys`` at time ``now``; raises ``InvalidToken``."""
        jws = parse_compact(token, self.max_token_length)
        header = jws.header

        typ = header.get("typ")
        if not isinstance(typ, str) or typ.lower() not in _ACCESS_TOKEN_TYPES:
            raise InvalidToken("the token is not a JWT access token (typ must be at+jwt)")
        forbidden = FORBIDDEN_HEADERS.intersection(header)
        if forbidden:
            raise InvalidToken(f"the token carries a forbidden header ({min(forbidden)})")
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms:
            raise InvalidToken("the token's algorithm is not allowed")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid or len(kid) > _MAX_ID_LENGTH:
            raise InvalidToken("the token has no usable key id")
        jwk = keys.get(kid)
        if jwk is None:
            raise UnknownKey(kid)
        verify_signature(jws, jwk, alg)

        return self._claims(payload_object(jws.payload), now)

    def _claims(self, claims: dict[str, Any], now: int) -> VerifiedToken:
        if claims.get("iss") != self.issuer:
            raise InvalidToken("the token is from another issuer")
        aud = claims.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        if not all(isinstance(a, str) for a in audiences) or self.audience not in audiences:
            raise InvalidToken("the token is for another audience")

        leeway = self.leeway
        exp = _numeric_date(claims, "exp")
        if now >= exp + leeway:
            raise InvalidToken("the token has expired")
        if "nbf" in claims and _numeric_date(claims, "nbf") > now + leeway:
            raise InvalidToken("the token is not valid yet")
        iat = _numeric_date(claims, "iat")
        if iat > now + leeway:
            raise InvalidToken("the token was issued in the future")
        if "auth_time" not in claims:
            raise InvalidToken("the token has no auth_time: its freshness cannot be judged")
        auth_time = _numeric_date(claims, "auth_time")
        if auth_time > now + leeway or auth_time > iat + leeway:
            raise InvalidToken("the token's auth_time is in the future")

        amr = claims.get("amr", [])
        if not isinstance(amr, list) or not all(isinstance(v, str) for v in amr):
            raise InvalidToken("the token's amr claim is not a list of strings")
        scope = _optional_string(claims, "scope")
        details = claims.get("authorization_details", [])
        if not isinstance(details, list) or not all(
            isinstance(d, dict) and isinstance(d.get("type"), str) for d in details
        ):
            raise InvalidToken("the token's authorization_details are malformed (RFC 9396 §2)")

        return VerifiedToken(
            issuer=self.issuer,
            sub=_required_string(claims, "sub"),
            client_id=_required_string(claims, "client_id"),
            jti=_required_string(claims, "jti"),
            scope=frozenset(scope.split()) if scope else frozenset(),
            auth_time=auth_time,
            acr=_optional_string(claims, "acr"),
            amr=tuple(amr),
            sid=_optional_string(claims, "sid"),
            iat=iat,
            exp=exp,
            authorization_details=tuple(MappingProxyType(d) for d in details),
            claims=MappingProxyType(claims),
        )


def _numeric_date(claims: Mapping[str, Any], name: str) -> int:
    """RFC 7519 §2 NumericDate: a JSON number of seconds (fractions truncated)."""
    value = claims.get(name)
    if value.__class__ is not int and value.__class__ is not float:  # bool is not a NumericDate
        raise InvalidToken(f"the token's {name} claim is not a NumericDate")
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidToken(f"the token's {name} claim is not a NumericDate")
    if not -(2**62) < value < 2**62:
        raise InvalidToken(f"the token's {name} claim is out of range")
    return int(value)


def _required_string(claims: Mapping[str, Any], name: str) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not value:
        raise InvalidToken(f"the token has no {name} claim")
    if name == "jti" and len(value) > _MAX_ID_LENGTH:
        raise InvalidToken("the token's jti is too long")
    return value


def _optional_string(claims: Mapping[str, Any], name: str) -> str | None:
    value = claims.get(name)
    if value is not None and not isinstance(value, str):
        raise InvalidToken(f"the token's {name} claim is not a string")
    return value


class VerifiedTokenCache:
    """A bounded LRU of verified tokens keyed by the exact token string.

    An entry is served only while ``now < exp``; :meth:`clear_if_keys_changed` empties the cache
    when the key set's fingerprint moves (a key rotated out must stop vouching for tokens at once).
    Thread-safe: framework adapters may share one guard between worker threads.
    """

    def __init__(self, maxsize: int = 1024) -> None:
        if maxsize < 0:
            raise ValueError("maxsize must not be negative")
        self.maxsize = maxsize
        self._entries: OrderedDict[str, VerifiedToken] = OrderedDict()
        self._lock = threading.Lock()
        self._fingerprint: str | None = None

    def get(self, token: str, now: int) -> VerifiedToken | None:
        with self._lock:
            verified = self._entries.get(token)
            if verified is None:
                return None
            if now >= verified.exp:
                del self._entries[token]
                return None
            self._entries.move_to_end(token)
            return verified

    def put(self, token: str, verified: VerifiedToken, fingerprint: str) -> None:
        """Remember a token verified with the key set whose fingerprint is ``fingerprint``."""
        if self.maxsize == 0:
            return
        with self._lock:
            if fingerprint != self._fingerprint:
                self._entries.clear()
                self._fingerprint = fingerprint
            self._entries[token] = verified
            self._entries.move_to_end(token)
            while len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)

    def clear_if_keys_changed(self, fingerprint: str) -> None:
        with self._lock:
            if fingerprint != self._fingerprint:
                self._entries.clear()
                self._fingerprint = fingerprint

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
