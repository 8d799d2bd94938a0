"""Compact JWS (RFC 7515 §7.1) parsing and verification, and JWK sets (RFC 7517 §5), on
``cryptography``.

Only asymmetric algorithms exist here (RFC 7518 §3.3-3.5, RFC 8037 §3.1): ``none`` and the ``HS*``
family cannot be configured at all, so a token can never make the guard verify an HMAC with a
public key (RFC 8725 §2.1, §3.1). The key is always found by ``kid`` in a set the guard holds; a
JWK's ``alg``, when present, pins the algorithm it may be used with, and the key type must match
the algorithm. Everything a token could use to pick its own key (``jwk``, ``jku``, ``x5u``, ``x5c``)
or to demand extensions (``crit``) is refused before any cryptography runs (RFC 8725 §3.10).

Parsing is strict: three base64url segments without padding, a length cap, and a UTF-8 JSON header
object without duplicate members (RFC 7515 §5.2) or ``NaN``/``Infinity``. The payload is parsed
only after the signature is verified (with ``orjson``); duplicate claims there resolve to the last
one, which RFC 7519 §4 allows, and ``NaN`` or ``Infinity`` anywhere refuses it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import orjson
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from freshid_guard.errors import InvalidToken

PublicKey = (
    ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey | ed448.Ed448PublicKey
)

FORBIDDEN_HEADERS = frozenset({"jwk", "jku", "x5u", "x5c", "crit"})
DEFAULT_MAX_TOKEN_LENGTH = 16_384
_MIN_RSA_BITS = 2048


# --- algorithms ---------------------------------------------------------------------------------

SignatureCheck = Callable[[bytes, bytes], bool]
"""``check(signing_input, signature)``: whether the signature is valid (one key, one algorithm)."""


@dataclass(frozen=True)
class _Algorithm:
    kty: str
    bind: Callable[[PublicKey], SignatureCheck | None]
    """The check for one key, or ``None`` when the key cannot be used with the algorithm. Binding
    once per key keeps the key-type and curve tests, and the lookups, off the per-token path."""


def _ecdsa(
    curve: type[ec.EllipticCurve],
    size: int,
    digest: hashes.HashAlgorithm,
    hash_function: Callable[[bytes], Any],
) -> _Algorithm:
    # The digest is taken with ``hashlib`` and handed over as prehashed: ``cryptography`` would
    # look the hash up and build a hashing context on every call, ~2 µs of a ~90 µs verification
    # that the guard makes for every new token. The signature covers the same digest either way.
    scheme = ec.ECDSA(Prehashed(digest))

    def bind(key: PublicKey) -> SignatureCheck | None:
        if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, curve):
            return None
        verify = key.verify

        def check(signing_input: bytes, signature: bytes) -> bool:
            # RFC 7518 §3.4: the signature is R || S, each exactly ``size`` octets.
            if len(signature) != 2 * size:
                return False
            try:
                verify(
                    der_signature(signature, size), hash_function(signing_input).digest(), scheme
                )
            except InvalidSignature:
                return False
            return True

        return check

    return _Algorithm("EC", bind)


def _der_integer(value: bytes) -> bytes:
    """A big-endian unsigned integer as a DER INTEGER (X.690 §8.3): no leading zero octets,
    except one before a high bit, which would otherwise read as a sign."""
    value = value.lstrip(b"\x00") or b"\x00"
    if value[0] & 0x80:
        value = b"\x00" + value
    return b"\x02" + bytes((len(value),)) + value  # at most 67 octets: short length form


def _der_sequence(body: bytes) -> bytes:
    # X.690 §8.1.3: the short length form below 128 octets, else one length octet (ES512: 138).
    length = bytes((len(body),)) if len(body) < 0x80 else bytes((0x81, len(body)))
    return b"\x30" + length + body


def _der_framing(size: int, r_high: bool, s_high: bool) -> tuple[bytes, bytes]:
    """The DER octets before R and between R and S when neither starts with a zero octet: they
    depend only on the size and on each integer's high bit (which needs a zero octet before it)."""
    r, s = (b"\x80" if r_high else b"\x01") * size, (b"\x80" if s_high else b"\x01") * size
    encoded = _der_sequence(_der_integer(r) + _der_integer(s))
    before_r = encoded[: encoded.index(r)]
    return before_r, encoded[len(before_r) + size : -size]


_DER_FRAMING = {
    (size, r_high, s_high): _der_framing(size, r_high, s_high)
    for size in (32, 48, 66)
    for r_high in (False, True)
    for s_high in (False, True)
}


def der_signature(signature: bytes, size: int) -> bytes:
    """The DER ``Ecdsa-Sig-Value`` (RFC 3279 §2.2.3) that ``cryptography`` verifies, from a JWS
    ECDSA signature, R || S of ``size`` octets each (RFC 7518 §3.4): what
    ``encode_dss_signature(int(R), int(S))`` returns, for a third of its cost (no round trip
    through Python ints; ``tests/guard`` compares the two)."""
    if len(signature) != 2 * size:
        raise ValueError("an ECDSA signature is R || S, each exactly `size` octets")
    r, s = signature[:size], signature[size:]
    if r[0] and s[0]:  # 255 signatures in 256: the framing is known, only R and S are copied
        framing = _DER_FRAMING.get((size, r[0] > 0x7F, s[0] > 0x7F))
        if framing is not None:
            return framing[0] + r + framing[1] + s
    return _der_sequence(_der_integer(r) + _der_integer(s))


def _rsa(digest: hashes.HashAlgorithm, pss: bool) -> _Algorithm:
    pad: padding.AsymmetricPadding = (
        padding.PSS(mgf=padding.MGF1(digest), salt_length=digest.digest_size)
        if pss
        else padding.PKCS1v15()
    )

    def bind(key: PublicKey) -> SignatureCheck | None:
        if not isinstance(key, rsa.RSAPublicKey):
            return None
        rsa_key = key

        def check(signing_input: bytes, signature: bytes) -> bool:
            try:
                rsa_key.verify(signature, signing_input, pad, digest)
            except (InvalidSignature, ValueError):
                return False
            return True

        return check

    return _Algorithm("RSA", bind)


def _eddsa(key: PublicKey) -> SignatureCheck | None:
    if not isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        return None
    verify = key.verify

    def check(signing_input: bytes, signature: bytes) -> bool:
        try:
            verify(signature, signing_input)
        except InvalidSignature:
            return False
        return True

    return check


ALGORITHMS: Mapping[str, _Algorithm] = {
    "ES256": _ecdsa(ec.SECP256R1, 32, hashes.SHA256(), hashlib.sha256),
    "ES384": _ecdsa(ec.SECP384R1, 48, hashes.SHA384(), hashlib.sha384),
    "ES512": _ecdsa(ec.SECP521R1, 66, hashes.SHA512(), hashlib.sha512),
    "RS256": _rsa(hashes.SHA256(), pss=False),
    "RS384": _rsa(hashes.SHA384(), pss=False),
    "RS512": _rsa(hashes.SHA512(), pss=False),
    "PS256": _rsa(hashes.SHA256(), pss=True),
    "PS384": _rsa(hashes.SHA384(), pss=True),
    "PS512": _rsa(hashes.SHA512(), pss=True),
    "EdDSA": _Algorithm("OKP", _eddsa),
}
"""Every algorithm the guard can verify. ``none`` and ``HS*`` are deliberately absent."""


def check_algorithms(algorithms: frozenset[str]) -> frozenset[str]:
    """Validate a configured allow-list: non-empty and asymmetric algorithms only."""
    if not algorithms:
        raise ValueError("the algorithm allow-list is empty")
    unsupported = sorted(algorithms - ALGORITHMS.keys())
    if unsupported:
        raise ValueError(
            f"algorithm {unsupported[0]!r} cannot be allowed (supported: {', '.join(ALGORITHMS)})"
        )
    return frozenset(algorithms)


# --- compact serialization ----------------------------------------------------------------------

# base64url → standard base64 in one ``bytes.translate``: ``-``/``_`` become ``+``/``/``, the rest
# of the alphabet stays, and every other byte (``+``, ``/``, ``=``, ``.``, whitespace...) becomes
# ``!``, which strict ``a2b_base64`` refuses. Decoding thus also checks the alphabet: no regex pass.
_URLSAFE_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_TO_STANDARD = bytes.maketrans(
    bytes(b for b in range(256) if b not in _URLSAFE_ALPHABET) + b"-_",
    b"!" * (256 - len(_URLSAFE_ALPHABET)) + b"+/",
)
# Padding to add by ``len % 4``; a length of 4k + 1 cannot be base64 and ``a2b_base64`` says so.
_PADDING = (b"", b"", b"==", b"=")


def b64url_bytes(segment: bytes) -> bytes:
    """Decode unpadded base64url (RFC 7515 §2) strictly; raises :class:`InvalidToken`."""
    try:
        return binascii.a2b_base64(
            segment.translate(_TO_STANDARD) + _PADDING[len(segment) & 3], strict_mode=True
        )
    except binascii.Error:
        raise InvalidToken("the token is not valid base64url") from None


def b64url_decode(segment: str) -> bytes:
    """:func:`b64url_bytes` for text; raises :class:`InvalidToken`."""
    try:
        return b64url_bytes(segment.encode("ascii"))
    except UnicodeEncodeError:
        raise InvalidToken("the token is not valid base64url") from None


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate member {key!r}")
        result[key] = value
    return result


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_DECODER = json.JSONDecoder(object_pairs_hook=_no_duplicates, parse_constant=_no_constants)


def json_object(data: bytes, what: str) -> dict[str, Any]:
    """Parse UTF-8 JSON that must be an object without duplicate members."""
    try:
        value = _DECODER.decode(data.decode("utf-8"))
    except (ValueError, RecursionError):
        raise InvalidToken(f"the token's {what} is not a JSON object") from None
    if not isinstance(value, dict):
        raise InvalidToken(f"the token's {what} is not a JSON object")
    return value


def payload_object(data: bytes) -> dict[str, Any]:
    """Parse a *verified* payload: a UTF-8 JSON object. Duplicate members resolve to the last one,
    as RFC 7519 §4 permits (the issuer signed it; the header, read before any check, is strict).

    ``orjson`` reads it: a token payload in ~2 µs where ``json`` takes ~3-5, on a path every new
    token takes. It is stricter than ``json`` (no ``NaN`` or ``Infinity``, no lone surrogates),
    which only turns payloads no FreshID issuer writes into refusals; integers beyond 64 bits
    come back as floats, which the NumericDate checks refuse as out of range."""
    try:
        value = orjson.loads(data)
    except (orjson.JSONDecodeError, RecursionError):
        raise InvalidToken("the token's payload is not a JSON object") from None
    if value.__class__ is not dict:
        raise InvalidToken("the token's payload is not a JSON object")
    return cast(dict[str, Any], value)


def split_compact(
    token: str, max_length: int = DEFAULT_MAX_TOKEN_LENGTH
) -> tuple[bytes, bytes, bytes, bytes]:
    """Split a compact JWS (RFC 7515 §7.1) into its header segment, its signing input
    (``header.payload``, the bytes the signature covers), its payload segment and its signature
    segment: all non-empty, nothing decoded or trusted yet.

    The segments' alphabet is checked when each is decoded (:func:`b64url_bytes`); a fourth dot
    lands inside the payload segment, whose decoding refuses it.
    """
    if not isinstance(token, str) or len(token) > max_length:
        raise InvalidToken("the token is not a compact JWS")
    try:
        raw = token.encode("ascii")
    except UnicodeEncodeError:
        raise InvalidToken("the token is not a compact JWS") from None
    signing_input, dot, signature = raw.rpartition(b".")
    header, dot, payload = signing_input.partition(b".") if dot else (b"", b"", b"")
    if not (dot and header and payload and signature):
        raise InvalidToken("the token is not a compact JWS")
    return header, signing_input, payload, signature


# --- keys ---------------------------------------------------------------------------------------

_EC_CURVES: Mapping[str, tuple[ec.EllipticCurve, int]] = {
    "P-256": (ec.SECP256R1(), 32),
    "P-384": (ec.SECP384R1(), 48),
    "P-521": (ec.SECP521R1(), 66),
}


_EC_ALG_CURVES: Mapping[str, str] = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}


@dataclass(frozen=True)
class JWK:
    """A public verification key from a JWK set."""

    kid: str
    kty: str
    alg: str | None
    key: PublicKey

    _checks: dict[str, SignatureCheck | None] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    """Signature checks bound to this key, by algorithm, made on first use."""

    def accepts(self, alg: str) -> bool:
        """RFC 7517 §4.4 / RFC 8725 §3.1: the key's own ``alg`` and type must fit the token's."""
        algorithm = ALGORITHMS.get(alg)
        if algorithm is None or algorithm.kty != self.kty:
            return False
        return self.alg is None or self.alg == alg

    def signature_check(self, alg: str) -> SignatureCheck | None:
        """The check of ``alg`` signatures by this key, or ``None`` when the key may not be used
        with ``alg`` (:meth:`accepts`, and the key's curve for ``ES*``)."""
        try:
            return self._checks[alg]
        except KeyError:
            check = ALGORITHMS[alg].bind(self.key) if self.accepts(alg) else None
            self._checks[alg] = check
            return check


def _coordinate(jwk: Mapping[str, Any], name: str, size: int | None = None) -> bytes:
    value = jwk.get(name)
    if not isinstance(value, str) or not value or not re.fullmatch(r"[A-Za-z0-9_-]+", value):
        raise ValueError(f"member {name!r} is missing or not base64url")
    data = b64url_decode(value)
    if size is not None and len(data) != size:
        raise ValueError(f"member {name!r} has the wrong length")
    return data


def _public_key(jwk: Mapping[str, Any]) -> tuple[str, PublicKey]:
    kty = jwk.get("kty")
    if kty == "EC":
        crv = jwk.get("crv")
        if not isinstance(crv, str) or crv not in _EC_CURVES:
            raise ValueError("unsupported EC curve")
        curve, size = _EC_CURVES[crv]
        x = int.from_bytes(_coordinate(jwk, "x", size), "big")
        y = int.from_bytes(_coordinate(jwk, "y", size), "big")
        return "EC", ec.EllipticCurvePublicNumbers(x, y, curve).public_key()
    if kty == "RSA":
        n = int.from_bytes(_coordinate(jwk, "n"), "big")
        e = int.from_bytes(_coordinate(jwk, "e"), "big")
        if n.bit_length() < _MIN_RSA_BITS:
            raise ValueError("RSA key shorter than 2048 bits")
        return "RSA", rsa.RSAPublicNumbers(e, n).public_key()
    if kty == "OKP":
        crv = jwk.get("crv")
        if crv == "Ed25519":
            return "OKP", ed25519.Ed25519PublicKey.from_public_bytes(_coordinate(jwk, "x", 32))
        if crv == "Ed448":
            return "OKP", ed448.Ed448PublicKey.from_public_bytes(_coordinate(jwk, "x", 57))
        raise ValueError("unsupported OKP curve")
    raise ValueError("unsupported key type")


def parse_jwk(jwk: object) -> JWK | None:
    """One JWK, or ``None`` when it is not a usable public signature key (wrong ``use`` or
    ``key_ops``, unknown type, malformed, no ``kid``, an ``alg`` the guard cannot verify)."""
    if not isinstance(jwk, Mapping):
        return None
    kid = jwk.get("kid")
    if not isinstance(kid, str) or not kid:
        return None
    if "use" in jwk and jwk["use"] != "sig":
        return None
    ops = jwk.get("key_ops")
    if ops is not None and (not isinstance(ops, list) or "verify" not in ops):
        return None
    alg = jwk.get("alg")
    if alg is not None and (not isinstance(alg, str) or alg not in ALGORITHMS):
        return None
    try:
        kty, key = _public_key(jwk)
    except (ValueError, TypeError, UnsupportedAlgorithm, InvalidToken):
        return None
    if alg is not None and ALGORITHMS[alg].kty != kty:
        return None
    if alg is not None and alg in _EC_ALG_CURVES and jwk.get("crv") != _EC_ALG_CURVES[alg]:
        return None  # RFC 7518 §3.4: each ES algorithm has its own curve
    return JWK(kid=kid, kty=kty, alg=alg, key=key)


class KeySet(Mapping[str, JWK]):
    """An immutable set of verification keys by ``kid``.

    A ``kid`` that appears twice is dropped altogether: it could not name one key. ``fingerprint``
    changes whenever the usable keys change, so caches built on the set know when to forget.
    """

    def __init__(self, keys: Mapping[str, JWK], fingerprint: str) -> None:
        self._keys = dict(keys)
        self.fingerprint = fingerprint

    @classmethod
    def from_jwks(cls, document: object) -> KeySet:
        """Parse a JWK Set document (RFC 7517 §5); raises :class:`ValueError` if it is not one."""
        if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
            raise ValueError("not a JWK set: expected an object with a 'keys' array")
        found: dict[str, JWK] = {}
        duplicated: set[str] = set()
        sources: dict[str, Any] = {}
        for raw in document["keys"]:
            jwk = parse_jwk(raw)
            if jwk is None:
                continue
            if jwk.kid in found:
                duplicated.add(jwk.kid)
                continue
            found[jwk.kid] = jwk
            sources[jwk.kid] = {k: v for k, v in raw.items() if k not in {"d", "p", "q"}}
        for kid in duplicated:
            del found[kid]
            del sources[kid]
        canonical = json.dumps(sources, sort_keys=True, separators=(",", ":"), default=str)
        return cls(found, hashlib.sha256(canonical.encode("utf-8")).hexdigest())

    @classmethod
    def empty(cls) -> KeySet:
        return cls({}, "empty")

    def __getitem__(self, kid: str) -> JWK:
        return self._keys[kid]

    def find(self, kid: str) -> JWK | None:
        """The key named ``kid``, or ``None`` (``Mapping.get`` without its two Python-level calls:
        this runs for every token verified)."""
        return self._keys.get(kid)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"KeySet(kids={sorted(self._keys)!r})"
