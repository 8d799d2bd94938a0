"""TOTP against RFC 6238 Appendix B, and FreshID's drift and replay rules (RFC 6238 §5.2)."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from freshid.freshness.levels import ACR_1FA
from freshid.methods import totp
from freshid.methods.base import Factor, MethodFailed

# RFC 6238 Appendix B: the SHA-1 seed is the ASCII string "12345678901234567890".
RFC_SECRET = base64.b32encode(b"12345678901234567890").decode().rstrip("=")
RFC_VECTORS = [
    (59, "94287082"),
    (1111111109, "07081804"),
    (1111111111, "14050471"),
    (1234567890, "89005924"),
    (2000000000, "69279037"),
    (20000000000, "65353130"),
]


@pytest.mark.parametrize(("now", "expected"), RFC_VECTORS)
def test_rfc6238_appendix_b_sha1(now: int, expected: str) -> None:
    assert totp.code_at(RFC_SECRET, totp.step_at(now), digits=8) == expected


def test_rfc4226_appendix_d_hotp() -> None:
    expected = ["755224", "287082", "359152", "969429", "338314", "254676"]
    assert [totp.code_at(RFC_SECRET, counter) for counter in range(6)] == expected


def test_new_secret_is_160_bit_base32_without_padding() -> None:
    secret = totp.new_secret()
    assert len(secret) == 32 and "=" not in secret
    assert len(base64.b32decode(secret)) == 20
    assert totp.new_secret() != secret


def test_secret_is_read_leniently() -> None:
    lowered = " ".join([RFC_SECRET[:8].lower(), RFC_SECRET[8:]])
    assert totp.code_at(lowered, 1) == totp.code_at(RFC_SECRET, 1)
    with pytest.raises(ValueError):
        totp.code_at("not base32!", 1)


def test_provisioning_uri_is_encoded() -> None:
    uri = totp.provisioning_uri(RFC_SECRET, "ana+test@example.com", "Acme: Console/EU")
    parts = urlsplit(uri)
    assert parts.scheme == "otpauth" and parts.netloc == "totp"
    label = parts.path.removeprefix("/")
    issuer, account = label.split(":")
    assert unquote(issuer) == "Acme: Console/EU"
    assert unquote(account) == "ana+test@example.com"
    assert " " not in uri and "+" not in uri  # spaces are %20, never "+"
    query = parse_qs(parts.query)
    assert query == {
        "secret": [RFC_SECRET],
        "issuer": ["Acme: Console/EU"],
        "algorithm": ["SHA1"],
        "digits": ["6"],
        "period": ["30"],
    }


def test_qr_is_a_base64_svg_data_uri() -> None:
    uri = totp.provisioning_uri(totp.new_secret(), "ana@example.com", "FreshID")
    data = totp.qr_svg_data_uri(uri)
    prefix = "data:image/svg+xml;base64,"
    assert data.startswith(prefix)
    svg = base64.b64decode(data.removeprefix(prefix)).decode()
    assert svg.startswith("<svg") and "<title>" in svg


NOW = 1_700_000_000
STEP = totp.step_at(NOW)


def test_current_code_is_accepted_and_returns_its_step() -> None:
    secret = totp.new_secret()
    assert totp.verify(secret, totp.code_at(secret, STEP), NOW, None) == STEP


@pytest.mark.parametrize("offset", [-1, 1])
def test_one_step_of_drift_either_way(offset: int) -> None:
    secret = totp.new_secret()
    code = totp.code_at(secret, STEP + offset)
    assert totp.verify(secret, code, NOW, None) == STEP + offset


@pytest.mark.parametrize("offset", [-2, 2])
def test_two_steps_of_drift_are_refused(offset: int) -> None:
    secret = totp.new_secret()
    code = totp.code_at(secret, STEP + offset)
    if code in {totp.code_at(secret, STEP + d) for d in (-1, 0, 1)}:
        pytest.skip("rare collision")
    with pytest.raises(MethodFailed) as failed:
        totp.verify(secret, code, NOW, None)
    assert failed.value.reason == "invalid_code"


def test_same_code_cannot_be_used_twice() -> None:
    secret = totp.new_secret()
    code = totp.code_at(secret, STEP)
    used = totp.verify(secret, code, NOW, None)
    with pytest.raises(MethodFailed) as failed:
        totp.verify(secret, code, NOW + 5, used)
    assert failed.value.reason == "replayed_code"


def test_older_neighbouring_code_is_refused_after_a_newer_one() -> None:
    secret = totp.new_secret()
    used = totp.verify(secret, totp.code_at(secret, STEP + 1), NOW, None)
    with pytest.raises(MethodFailed) as failed:
        totp.verify(secret, totp.code_at(secret, STEP), NOW, used)
    assert failed.value.reason == "replayed_code"


def test_next_step_is_accepted_after_the_previous_one() -> None:
    secret = totp.new_secret()
    used = totp.verify(secret, totp.code_at(secret, STEP), NOW, None)
    later = NOW + totp.PERIOD
    assert totp.verify(secret, totp.code_at(secret, STEP + 1), later, used) == STEP + 1


@pytest.mark.parametrize(
    "code", ["", "12345", "1234567", "12a456", "١٢٣٤٥٦", "12345\u00b2", "-12345"]
)
def test_malformed_codes(code: str) -> None:
    with pytest.raises(MethodFailed) as failed:
        totp.verify(totp.new_secret(), code, NOW, None)
    assert failed.value.reason == "invalid_code"


def test_spaces_are_ignored() -> None:
    secret = totp.new_secret()
    code = totp.code_at(secret, STEP)
    assert totp.verify(secret, f" {code[:3]} {code[3:]} ", NOW, None) == STEP


@given(st.text(max_size=12))
def test_arbitrary_input_fails_cleanly(code: str) -> None:
    try:
        totp.verify(RFC_SECRET, code, NOW, None)
    except MethodFailed as failed:
        assert failed.reason in {"invalid_code", "replayed_code"}


def test_completed_method() -> None:
    done = totp.completed(NOW)
    assert done.method == "totp" == totp.INFO.name
    assert done.amr == ("otp",)
    assert done.acr == ACR_1FA
    assert done.completed_at == NOW
    assert done.factors == frozenset({Factor.POSSESSION})
    assert not done.phishing_resistant


def test_attempt_cap_constants() -> None:
    assert totp.MAX_ATTEMPTS == 5 and totp.ATTEMPT_WINDOW == 300
