"""RFC 9068 verification and the usual JWT attacks, all refused as ``invalid_token``."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from freshid_guard import InvalidToken, KeySet, TokenVerifier, UnknownKey, VerifiedTokenCache
from freshid_guard.jose import b64url_encode

from tests.guard.issuer import NOW, REMOVE, FakeIssuer, b64, b64json


@pytest.fixture
def issuer() -> FakeIssuer:
    return FakeIssuer()


@pytest.fixture
def keys(issuer: FakeIssuer) -> KeySet:
    return KeySet.from_jwks(issuer.jwks())


@pytest.fixture
def verifier(issuer: FakeIssuer) -> TokenVerifier:
    return TokenVerifier(issuer.issuer)


def test_a_good_token(issuer: FakeIssuer, keys: KeySet, verifier: TokenVerifier) -> None:
    details = [{"type": "urn:freshid:action", "action": "account.delete"}]
    raw = issuer.token(jti="j1", authorization_details=details, aud=["other", issuer.issuer])
    token = verifier.verify(raw, keys, NOW)
    assert (token.sub, token.client_id, token.jti, token.sid) == (
        "user-1",
        "rp-1",
        "j1",
        "session-1",
    )
    assert token.scope == frozenset({"openid", "email"})
    assert (token.auth_time, token.iat, token.exp) == (NOW - 60, NOW, NOW + 600)
    assert token.acr == "urn:freshid:acr:1fa" and token.amr == ("pwd",)
    assert token.bound_actions == frozenset({"account.delete"})
    assert token.claims["jti"] == "j1"


def test_application_at_jwt_typ_and_float_dates(
    issuer: FakeIssuer, keys: KeySet, verifier: TokenVerifier
) -> None:
    raw = issuer.sign(
        issuer.claims(exp=NOW + 10.5, auth_time=NOW - 1.9),
        issuer.header(typ="application/AT+JWT"),
    )
    token = verifier.verify(raw, keys, NOW)
    assert (token.exp, token.auth_time) == (NOW + 10, NOW - 2)  # truncated: never younger


def test_configured_audience(issuer: FakeIssuer, keys: KeySet) -> None:
    verifier = TokenVerifier(issuer.issuer, audience="https://api.example")
    verifier.verify(issuer.token(aud="https://api.example"), keys, NOW)
    with pytest.raises(InvalidToken, match="audience"):
        verifier.verify(issuer.token(), keys, NOW)


def _forged(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    return f"{b64json(header)}.{b64json(claims)}.{b64(signature) or 'AA'}"


ATTACKS: dict[str, Any] = {
    "alg none": lambda i: f"{b64json({'alg': 'none', 'typ': 'at+jwt'})}.{b64json(i.claims())}.",
    "alg none with signature": lambda i: _forged(
        {"alg": "none", "typ": "at+jwt", "kid": i.kid}, i.claims(), b"x"
    ),
    "alg None": lambda i: _forged({"alg": "None", "typ": "at+jwt", "kid": i.kid}, i.claims(), b"x"),
    "HS256 with the public key": lambda i: i.sign_hs256(i.claims(), i.public_pem()),
    "HS256 with the JWK": lambda i: i.sign_hs256(i.claims(), json.dumps(i.public_jwk()).encode()),
    "RS256 not allowed": lambda i: i.sign(i.claims(), i.header(alg="RS256")),
    "ES384 not allowed": lambda i: i.sign(i.claims(), i.header(alg="ES384")),
    "alg missing": lambda i: i.sign(i.claims(), i.header(alg=REMOVE)),
    "alg not a string": lambda i: i.sign(i.claims(), i.header(alg=["ES256"])),
    "kid missing": lambda i: i.sign(i.claims(), i.header(kid=REMOVE)),
    "kid path traversal": lambda i: i.sign(i.claims(), i.header(kid="../../../../etc/passwd")),
    "kid sql": lambda i: i.sign(i.claims(), i.header(kid="k1' OR '1'='1")),
    "kid not a string": lambda i: i.sign(i.claims(), i.header(kid=1)),
    "kid huge": lambda i: i.sign(i.claims(), i.header(kid="k" * 1000)),
    "jku header": lambda i: i.sign(i.claims(), i.header(jku="https://evil.example/jwks")),
    "jwk header": lambda i: i.sign(i.claims(), i.header(jwk=i.public_jwk())),
    "x5u header": lambda i: i.sign(i.claims(), i.header(x5u="https://evil.example/cert")),
    "x5c header": lambda i: i.sign(i.claims(), i.header(x5c=["MIIB"])),
    "crit header": lambda i: i.sign(i.claims(), i.header(crit=["exp"])),
    "signed by another key": lambda i: i.sign(
        i.claims(), key=ec.generate_private_key(ec.SECP256R1())
    ),
    "signature of another token": lambda i: (
        i.token(sub="user-2").rsplit(".", 1)[0] + "." + i.token().rsplit(".", 1)[1]
    ),
    "payload swapped": lambda i: ".".join(
        [i.token().split(".")[0], b64json(i.claims(sub="admin")), i.token().split(".")[2]]
    ),
    "DER signature": lambda i: _der(i),
    "typ JWT": lambda i: i.sign(i.claims(), i.header(typ="JWT")),
    "typ missing": lambda i: i.sign(i.claims(), i.header(typ=REMOVE)),
    "typ id token": lambda i: i.sign(i.claims(), i.header(typ="id_token+jwt")),
    "expired": lambda i: i.token(exp=NOW - 31),
    "expired at the leeway": lambda i: i.token(exp=NOW - 30),
    "exp missing": lambda i: i.token(exp=REMOVE),
    "exp string": lambda i: i.token(exp=str(NOW + 100)),
    "exp bool": lambda i: i.token(exp=True),
    "exp infinite": lambda i: _raw_claims(i, '"exp": 1e400'),
    "exp NaN": lambda i: _raw_claims(i, '"exp": NaN'),
    "nbf in the future": lambda i: i.token(nbf=NOW + 100),
    "iat in the future": lambda i: i.token(iat=NOW + 100, auth_time=NOW),
    "iat missing": lambda i: i.token(iat=REMOVE),
    "wrong issuer": lambda i: i.token(iss="https://evil.example"),
    "issuer with a trailing slash": lambda i: i.token(iss=i.issuer + "/"),
    "issuer missing": lambda i: i.token(iss=REMOVE),
    "wrong audience": lambda i: i.token(aud="https://other.example"),
    "audience list without us": lambda i: i.token(aud=["a", "b"]),
    "audience list with a non-string": lambda i: i.token(aud=[i.issuer, 3]),
    "audience missing": lambda i: i.token(aud=REMOVE),
    "auth_time missing": lambda i: i.token(auth_time=REMOVE),
    "auth_time null": lambda i: i.token(auth_time=None),
    "auth_time string": lambda i: i.token(auth_time="yesterday"),
    "auth_time in the future": lambda i: i.token(auth_time=NOW + 100),
    "auth_time after iat": lambda i: i.token(iat=NOW - 100, auth_time=NOW - 10),
    "sub missing": lambda i: i.token(sub=REMOVE),
    "sub number": lambda i: i.token(sub=42),
    "client_id missing": lambda i: i.token(client_id=REMOVE),
    "jti missing": lambda i: i.token(jti=REMOVE),
    "jti huge": lambda i: i.token(jti="j" * 300),
    "amr string": lambda i: i.token(amr="pwd"),
    "amr numbers": lambda i: i.token(amr=[1]),
    "acr number": lambda i: i.token(acr=3),
    "scope list": lambda i: i.token(scope=["openid"]),
    "authorization_details object": lambda i: i.token(authorization_details={"type": "x"}),
    "authorization_details without type": lambda i: i.token(authorization_details=[{"a": 1}]),
    "duplicate header member": lambda i: _raw_header(i, '"alg": "none"'),
    "payload not an object": lambda i: _sign_raw(i, b"[1, 2]"),
    "payload not JSON": lambda i: _sign_raw(i, b"hello"),
    "payload not UTF-8": lambda i: _sign_raw(i, b'{"sub": "\xff"}'),
    "two segments": lambda i: ".".join(i.token().split(".")[:2]),
    "four segments": lambda i: i.token() + ".AA",
    "padding": lambda i: i.token().replace(".", "=.", 1),
    "whitespace": lambda i: " " + i.token(),
    "too long": lambda i: i.token(pad="x" * 20000),
    "empty": lambda i: "",
}


def _sign_raw(issuer: FakeIssuer, payload: bytes) -> str:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    signing_input = f"{b64json(issuer.header())}.{b64url_encode(payload)}"
    der = issuer.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    return f"{signing_input}.{b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def _raw_claims(issuer: FakeIssuer, extra_member: str) -> str:
    body = json.dumps(issuer.claims())[:-1] + ", " + extra_member + "}"
    return _sign_raw(issuer, body.encode())


def _raw_header(issuer: FakeIssuer, extra_member: str) -> str:
    header = json.dumps(issuer.header())[:-1] + ", " + extra_member + "}"
    return f"{b64(header.encode())}.{b64json(issuer.claims())}.{issuer.token().split('.')[2]}"


def test_a_duplicate_claim_resolves_to_the_last_one_as_rfc_7519_allows(
    issuer: FakeIssuer, keys: KeySet, verifier: TokenVerifier
) -> None:
    # The payload is read only after its signature verified: the issuer wrote it.
    assert verifier.verify(_raw_claims(issuer, '"sub": "other"'), keys, NOW).sub == "other"


def _der(issuer: FakeIssuer) -> str:
    from cryptography.hazmat.primitives import hashes

    signing_input = f"{b64json(issuer.header())}.{b64json(issuer.claims())}"
    der = issuer.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
    return f"{signing_input}.{b64(der)}"


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_attacks_are_refused(
    attack: str, issuer: FakeIssuer, keys: KeySet, verifier: TokenVerifier
) -> None:
    raw = ATTACKS[attack](issuer)
    with pytest.raises(InvalidToken):
        verifier.verify(raw, keys, NOW)


def test_an_unknown_kid_is_reported_for_a_refetch(
    issuer: FakeIssuer, keys: KeySet, verifier: TokenVerifier
) -> None:
    with pytest.raises(UnknownKey) as refused:
        verifier.verify(issuer.sign(issuer.claims(), issuer.header(kid="k2")), keys, NOW)
    assert refused.value.kid == "k2" and refused.value.error == "invalid_token"


def test_a_jwk_pins_its_algorithm_and_type(issuer: FakeIssuer) -> None:
    jwk = issuer.public_jwk()
    verifier = TokenVerifier(issuer.issuer, algorithms=frozenset({"ES256", "ES384"}))
    # An ES256 key advertised for ES384 cannot verify ES256 tokens.
    keys = KeySet.from_jwks({"keys": [{**jwk, "alg": "ES384"}]})
    assert len(keys) == 0  # P-256 key with alg ES384: not a usable key
    keys = KeySet.from_jwks({"keys": [{**jwk, "alg": "RS256"}]})
    assert len(keys) == 0
    keys = KeySet.from_jwks({"keys": [{k: v for k, v in jwk.items() if k != "alg"}]})
    verifier.verify(issuer.token(), keys, NOW)
    # A token claiming ES384 with a P-256 key is refused by the curve check.
    with pytest.raises(InvalidToken):
        verifier.verify(issuer.sign(issuer.claims(), issuer.header(alg="ES384")), keys, NOW)


def test_forbidden_algorithms_cannot_even_be_configured() -> None:
    for algorithms in ({"none"}, {"HS256"}, {"ES256", "HS512"}, set()):
        with pytest.raises(ValueError):
            TokenVerifier("https://id", algorithms=frozenset(algorithms))


def test_jwks_parsing_skips_unusable_keys(issuer: FakeIssuer) -> None:
    good = issuer.public_jwk()
    rsa_small = rsa.generate_private_key(65537, 1024).public_key().public_numbers()
    ed = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    document = {
        "keys": [
            good,
            {**good, "kid": "enc", "use": "enc"},
            {**good, "kid": "ops", "key_ops": ["encrypt"]},
            {**good, "kid": "off-curve", "y": good["x"]},
            {**good, "kid": "short", "x": "AAAA"},
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
            {
                "kty": "RSA",
                "kid": "rsa1024",
                "n": b64(rsa_small.n.to_bytes(128, "big")),
                "e": "AQAB",
            },
            {"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": b64(ed)},
            {**good, "kid": "dup"},
            {**good, "kid": "dup"},
            {**good, "kid": 5},
            "garbage",
            {**good, "kid": "unknown-alg", "alg": "HS256"},
        ]
    }
    keys = KeySet.from_jwks(document)
    assert sorted(keys) == ["ed", "k1"]
    bad: object
    for bad in (None, [], {"keys": "x"}, {"nokeys": []}):
        with pytest.raises(ValueError):
            KeySet.from_jwks(bad)


def test_the_fingerprint_follows_the_keys(issuer: FakeIssuer) -> None:
    a = KeySet.from_jwks(issuer.jwks())
    assert KeySet.from_jwks(issuer.jwks()).fingerprint == a.fingerprint
    issuer.rotate("k2")
    assert KeySet.from_jwks(issuer.jwks()).fingerprint != a.fingerprint


def test_the_cache_honours_exp_size_and_key_changes(
    issuer: FakeIssuer, keys: KeySet, verifier: TokenVerifier
) -> None:
    cache = VerifiedTokenCache(maxsize=2)
    tokens = [issuer.token() for _ in range(3)]
    for raw in tokens:
        cache.put(raw, verifier.verify(raw, keys, NOW), keys.fingerprint)
    assert cache.get(tokens[0], NOW) is None  # evicted (oldest first)
    assert cache.get(tokens[1], NOW) is not None
    assert cache.get(tokens[1], NOW + 600) is None  # expired
    assert cache.get(tokens[2], NOW) is not None
    cache.clear_if_keys_changed(keys.fingerprint)
    assert len(cache) == 1
    cache.clear_if_keys_changed("another set")
    assert len(cache) == 0
