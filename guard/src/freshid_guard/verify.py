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
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from freshid_guard._frozen import build
from freshid_guard.errors import InvalidToken, UnknownKey
from freshid_guard.jose import (
    DEFAULT_MAX_TOKEN_LENGTH,
    FORBIDDEN_HEADERS,
    KeySet,
    b64url_bytes,
    check_algorithms,
    json_object,
    payload_object,
    split_compact,
)
from freshid_guard.policy import ACTION_DETAIL_TYPE

DEFAULT_ALGORITHMS = frozenset({"ES256"})
DEFAULT_LEEWAY = 30
_ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})
_MAX_ID_LENGTH = 255
_MAX_DATE = 2**62  # far beyond any real date: refuses absurd numbers before int() sees them
_MIN_DATE = -_MAX_DATE
_ABSENT = object()
_NO_SCOPE: frozenset[str] = frozenset()
_MEMO_SIZE = 64  # entries in each of the verifier's memos (headers, scopes)
_NO_ACTIONS: frozenset[str] = frozenset()
_KEY_CHARS = 32
"""Characters of a token's end that key the verified-token cache (see VerifiedTokenCache)."""


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
        if not self.authorization_details:
            return _NO_ACTIONS  # most tokens: no set built on every decision
        return frozenset(
            d["action"]
            for d in self.authorization_details
            if d.get("type") == ACTION_DETAIL_TYPE and isinstance(d.get("action"), str)
        )


ParsedToken = tuple[str, str, bytes, bytes, bytes]
"""What :meth:`TokenVerifier.parse` returns: ``(alg, kid, signing_input, signature, payload)``, the
payload decoded but not parsed (JSON is read only once the signature is good). A plain tuple: one
is built for every new token, and a ``NamedTuple`` costs ten times as much to make."""


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
        # Header segments that passed the header checks, with their ``(alg, kid)``. An issuer's
        # tokens share a handful of headers (one per signing key), so each is parsed and checked
        # once. Only accepted headers are kept, and the dictionary is bounded.
        self._headers: dict[bytes, tuple[str, str]] = {}
        # Scope strings and their sets: a client's tokens repeat one scope, so each set is built
        # once and shared by every token carrying it (bounded like the headers).
        self._scopes: dict[str, frozenset[str]] = {}

    def verify(self, token: str, keys: KeySet, now: int) -> VerifiedToken:
        """Verify ``token`` against ``keys`` at time ``now``; raises ``InvalidToken``."""
        return self.verify_parsed(self.parse(token), keys, now)

    def parse(self, token: str) -> ParsedToken:
        """Step 1 and the header checks of step 2, which need no key: a malformed token is refused
        before the caller fetches keys for it. Raises ``InvalidToken``."""
        header, signing_input, payload, signature = split_compact(token, self.max_token_length)
        alg, kid = self._headers.get(header) or self._header(header)
        return alg, kid, signing_input, b64url_bytes(signature), b64url_bytes(payload)

    def verify_parsed(self, token: ParsedToken, keys: KeySet, now: int) -> VerifiedToken:
        """The rest, on a :meth:`parse` result: the key lookup, the signature, the claims. Raises
        ``InvalidToken``, or ``UnknownKey`` when ``keys`` lacks the token's ``kid``."""
        alg, kid, signing_input, signature, payload = token
        jwk = keys.find(kid)
        if jwk is None:
            raise UnknownKey(kid)
        check = jwk.signature_check(alg)
        if check is None:
            raise InvalidToken("the token's algorithm does not match its key")
        if not check(signing_input, signature):
            raise InvalidToken("the token's signature is invalid")
        return self._claims(payload_object(payload), now)

    def _header(self, segment: bytes) -> tuple[str, str]:
        """The ``alg`` and ``kid`` of a header segment that passes the header checks."""
        checked = self._headers.get(segment)
        if checked is None:
            checked = self._check_header(json_object(b64url_bytes(segment), "header"))
            if len(self._headers) >= _MEMO_SIZE:
                self._headers.clear()
            self._headers[segment] = checked
        return checked

    def _scope_set(self, scope: str) -> frozenset[str]:
        scopes = self._scopes.get(scope)
        if scopes is None:
            scopes = frozenset(scope.split())
            if len(self._scopes) >= _MEMO_SIZE:
                self._scopes.clear()
            self._scopes[scope] = scopes
        return scopes

    def _check_header(self, header: Mapping[str, Any]) -> tuple[str, str]:
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
        return alg, kid

    def _claims(self, claims: dict[str, Any], now: int) -> VerifiedToken:
        # Direct comparisons rather than one helper call per claim: this runs for every token.
        get = claims.get
        if get("iss") != self.issuer:
            raise InvalidToken("the token is from another issuer")
        aud = get("aud")
        if aud != self.audience and not (
            isinstance(aud, list) and self.audience in aud and all(isinstance(a, str) for a in aud)
        ):
            raise InvalidToken("the token is for another audience")

        # NumericDates: the common case, an int in range, is tested inline; anything else (a
        # float, a wrong type, a huge value) goes through _numeric_date, which truncates or refuses.
        latest = now + self.leeway
        exp = get("exp")
        if exp.__class__ is not int or not _MIN_DATE < exp < _MAX_DATE:
            exp = _numeric_date(exp, "exp")
        if now >= exp + self.leeway:
            raise InvalidToken("the token has expired")
        if "nbf" in claims and _numeric_date(claims["nbf"], "nbf") > latest:
            raise InvalidToken("the token is not valid yet")
        iat = get("iat")
        if iat.__class__ is not int or not _MIN_DATE < iat < _MAX_DATE:
            iat = _numeric_date(iat, "iat")
        if iat > latest:
            raise InvalidToken("the token was issued in the future")
        auth_time = get("auth_time", _ABSENT)
        if auth_time is _ABSENT:
            raise InvalidToken("the token has no auth_time: its freshness cannot be judged")
        if auth_time.__class__ is not int or not _MIN_DATE < auth_time < _MAX_DATE:
            auth_time = _numeric_date(auth_time, "auth_time")
        if auth_time > latest or auth_time > iat + self.leeway:
            raise InvalidToken("the token's auth_time is in the future")

        sub, client_id, jti = get("sub"), get("client_id"), get("jti")
        if not isinstance(sub, str) or not sub:
            raise InvalidToken("the token has no sub claim")
        if not isinstance(client_id, str) or not client_id:
            raise InvalidToken("the token has no client_id claim")
        if not isinstance(jti, str) or not jti:
            raise InvalidToken("the token has no jti claim")
        if len(jti) > _MAX_ID_LENGTH:
            raise InvalidToken("the token's jti is too long")
        acr, sid, scope = get("acr"), get("sid"), get("scope")
        if acr is not None and not isinstance(acr, str):
            raise InvalidToken("the token's acr claim is not a string")
        if sid is not None and not isinstance(sid, str):
            raise InvalidToken("the token's sid claim is not a string")
        if scope is not None and not isinstance(scope, str):
            raise InvalidToken("the token's scope claim is not a string")
        amr = get("amr", [])
        if not isinstance(amr, list):
            raise InvalidToken("the token's amr claim is not a list of strings")
        for method in amr:  # a loop, not all(<generator>): half the cost for a short list
            if not isinstance(method, str):
                raise InvalidToken("the token's amr claim is not a list of strings")
        details: tuple[Mapping[str, Any], ...] = ()
        if "authorization_details" in claims:
            listed = claims["authorization_details"]
            if not isinstance(listed, list) or not all(
                isinstance(d, dict) and isinstance(d.get("type"), str) for d in listed
            ):
                raise InvalidToken("the token's authorization_details are malformed (RFC 9396 §2)")
            details = tuple(MappingProxyType(d) for d in listed)

        return build(  # the dataclass __init__ would cost 1.4 µs more (see _frozen)
            VerifiedToken,
            issuer=self.issuer,
            sub=sub,
            client_id=client_id,
            jti=jti,
            scope=(self._scopes.get(scope) or self._scope_set(scope)) if scope else _NO_SCOPE,
            auth_time=auth_time,
            acr=acr,
            amr=tuple(amr),
            sid=sid,
            iat=iat,
            exp=exp,
            authorization_details=details,
            claims=MappingProxyType(claims),
        )


def _numeric_date(value: object, name: str) -> int:
    """RFC 7519 §2 NumericDate: a JSON number of seconds (fractions truncated)."""
    if isinstance(value, bool) or not isinstance(value, int | float):  # bool is no NumericDate
        raise InvalidToken(f"the token's {name} claim is not a NumericDate")
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidToken(f"the token's {name} claim is not a NumericDate")
    if not _MIN_DATE < value < _MAX_DATE:
        raise InvalidToken(f"the token's {name} claim is out of range")
    return int(value)


class VerifiedTokenCache:
    """A bounded cache of verified tokens keyed by the exact token string.

    An entry is served only while ``now < exp``; :meth:`clear_if_keys_changed` empties the cache
    when the key set's fingerprint moves (a key rotated out must stop vouching for tokens at once).
    When full, the oldest entry goes (first in, first out): a plain ``dict`` keeps insertion
    order, so a hit is one ``dict.get`` with no bookkeeping, and a token still in use after being
    evicted costs one more verification.

    The dictionary's key is the token's last :data:`_KEY_CHARS` characters, the tail of its
    signature, and the entry holds the whole token, which a hit must equal: every request
    presents a new string, and hashing all of a 600-character token cost more than the rest of
    the lookup. Two tokens sharing a tail only evict each other.

    Thread-safe: framework adapters may share one guard between worker threads. Every change
    happens under a lock; a lookup needs none (``dict.get`` is atomic under the GIL).
    """

    def __init__(self, maxsize: int = 1024) -> None:
        if maxsize < 0:
            raise ValueError("maxsize must not be negative")
        self.maxsize = maxsize
        self._entries: dict[str, tuple[str, VerifiedToken]] = {}
        self._lock = threading.Lock()
        self._fingerprint: str | None = None

    def get(self, token: str, now: int) -> VerifiedToken | None:
        entry = self._entries.get(token[-_KEY_CHARS:])
        if entry is None or entry[0] != token:
            return None
        verified = entry[1]
        if now >= verified.exp:
            with self._lock:
                if self._entries.get(token[-_KEY_CHARS:]) is entry:
                    del self._entries[token[-_KEY_CHARS:]]
            return None
        return verified

    def put(self, token: str, verified: VerifiedToken, fingerprint: str) -> None:
        """Remember a token verified with the key set whose fingerprint is ``fingerprint``."""
        if self.maxsize == 0:
            return
        with self._lock:
            entries = self._entries
            if fingerprint != self._fingerprint:
                entries.clear()
                self._fingerprint = fingerprint
            entries[token[-_KEY_CHARS:]] = (token, verified)
            while len(entries) > self.maxsize:
                del entries[next(iter(entries))]

    def clear_if_keys_changed(self, fingerprint: str) -> None:
        if fingerprint == self._fingerprint:
            return  # the usual case, decided without the lock
        with self._lock:
            if fingerprint != self._fingerprint:
                self._entries.clear()
                self._fingerprint = fingerprint

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
