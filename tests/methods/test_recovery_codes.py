"""Recovery codes: 80-bit look-up secrets, stored as digests, matched leniently, used once."""

from __future__ import annotations

import base64
import re

import pytest

from freshid.freshness.levels import ACR_1FA
from freshid.methods import recovery_codes
from freshid.methods.base import Factor, MethodFailed

FORMAT = re.compile(r"[A-Z2-7]{4}(-[A-Z2-7]{4}){3}")


def test_generate_ten_distinct_80_bit_codes() -> None:
    codes = recovery_codes.generate()
    assert len(codes) == 10 == len(set(codes))
    for code in codes:
        assert FORMAT.fullmatch(code), code
        assert len(base64.b32decode(code.replace("-", ""))) == 10


def test_generate_count() -> None:
    assert len(recovery_codes.generate(3)) == 3
    with pytest.raises(ValueError):
        recovery_codes.generate(0)


def test_normalise_ignores_case_spaces_dashes_and_lookalikes() -> None:
    assert recovery_codes.normalise(" k7qh-2mxp  r4ta\tzz2b ") == "K7QH2MXPR4TAZZ2B"
    assert recovery_codes.normalise("0OI1-B8") == "OOIIBB"


def test_digest_is_sha256_base64url_of_the_normalised_code() -> None:
    code = recovery_codes.generate(1)[0]
    digest = recovery_codes.digest(code)
    assert digest == recovery_codes.digest(code.lower().replace("-", " "))
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", digest)
    assert code.replace("-", "") not in digest


def test_match_returns_the_stored_digest() -> None:
    codes = recovery_codes.generate()
    stored = [recovery_codes.digest(code) for code in codes]
    typed = codes[4].lower().replace("-", " ")
    assert recovery_codes.match(typed, stored) == stored[4]


def test_used_code_no_longer_matches() -> None:
    codes = recovery_codes.generate()
    stored = [recovery_codes.digest(code) for code in codes]
    used = recovery_codes.match(codes[0], stored)
    remaining = [d for d in stored if d != used]
    with pytest.raises(MethodFailed) as failed:
        recovery_codes.match(codes[0], remaining)
    assert failed.value.reason == "invalid_code"


@pytest.mark.parametrize("code", ["", "ABCD", "ABCD-EFGH-IJKL-MNOP-Q", "ABCD-EFGH-IJKL-MNO!"])
def test_malformed_codes(code: str) -> None:
    stored = [recovery_codes.digest(c) for c in recovery_codes.generate()]
    with pytest.raises(MethodFailed) as failed:
        recovery_codes.match(code, stored)
    assert failed.value.reason == "invalid_code"


def test_wrong_code() -> None:
    stored = [recovery_codes.digest(c) for c in recovery_codes.generate()]
    with pytest.raises(MethodFailed):
        recovery_codes.match(recovery_codes.generate(1)[0], stored)


def test_completed_method() -> None:
    done = recovery_codes.completed(42)
    assert done.method == "recovery_code"
    assert done.amr == ("otp",)
    assert done.acr == ACR_1FA
    assert done.completed_at == 42
    assert done.factors == frozenset({Factor.POSSESSION})
