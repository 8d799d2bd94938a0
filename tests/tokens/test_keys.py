"""Key identity and rotation: retired keys stay published exactly as long as their tokens live."""

from __future__ import annotations

import json

import pytest

from freshid.tokens import keys
from freshid.tokens.keys import KeyRing

T0 = 1_700_000_000


def test_kid_is_rfc7638_thumbprint() -> None:
    key = keys.generate(T0)
    jwk = key.public_jwk()
    assert jwk["kid"] == key.kid == keys.thumbprint(key.public_key)
    assert {jwk["kty"], jwk["crv"], jwk["alg"], jwk["use"]} == {"EC", "P-256", "ES256", "sig"}
    assert "d" not in jwk


def test_pem_round_trip() -> None:
    key = keys.generate(T0)
    again = keys.load(key.kid, key.alg, key.private_pem(), key.created_at, None)
    assert again.public_jwk() == key.public_jwk()


def test_rotation_publishes_retired_key_until_tokens_expire() -> None:
    old = keys.generate(T0)
    retired = keys.SigningKey(old.kid, old.alg, old.private_key, T0, retired_at=T0 + 100)
    new = keys.generate(T0 + 100)
    ttl, grace = 600, 60
    ring = KeyRing([retired, new], T0 + 100 + ttl + grace - 1, ttl, grace)
    assert ring.active.kid == new.kid
    assert {k["kid"] for k in ring.jwks["keys"]} == {old.kid, new.kid}
    assert ring.public_key(old.kid) is not None
    later = KeyRing([retired, new], T0 + 100 + ttl + grace, ttl, grace)
    assert [k["kid"] for k in later.jwks["keys"]] == [new.kid]
    assert later.public_key(old.kid) is None
    json.dumps(later.jwks)


def test_no_active_key_is_an_error() -> None:
    k = keys.generate(T0)
    with pytest.raises(LookupError):
        KeyRing([keys.SigningKey(k.kid, k.alg, k.private_key, T0, T0)], T0, 600, 0)
