"""Emailed codes: issue, store digests, check every failure reason, compose the message."""

from __future__ import annotations

import dataclasses
import re
from email.message import EmailMessage

import pytest

from freshid.freshness.levels import ACR_1FA
from freshid.methods import email_code
from freshid.methods.base import Factor, MethodFailed
from freshid.methods.email_code import IssuedCode, StoredEmailCode

NOW = 1_700_000_000


def stored(issued: IssuedCode, **changes: object) -> StoredEmailCode:
    record = StoredEmailCode(
        id=issued.challenge_id,
        code_digest=issued.code_digest,
        link_digest=issued.link_digest,
        expires_at=issued.expires_at,
        attempts=1,
        used_at=None,
        superseded=False,
    )
    return dataclasses.replace(record, **changes)  # type: ignore[arg-type]


def reason(record: StoredEmailCode, code: str | None, now: int, link: str | None = None) -> str:
    with pytest.raises(MethodFailed) as failed:
        email_code.check(record, code, now, link_token=link)
    return failed.value.reason


def test_new_challenge() -> None:
    issued = email_code.new_challenge(NOW)
    assert re.fullmatch(r"\d{6}", issued.code)
    assert len(issued.link_token) >= 43  # 256 bits in base64url
    assert issued.expires_at == NOW + email_code.CODE_TTL == NOW + 600
    assert issued.code_digest == email_code.code_digest(issued.challenge_id, issued.code)
    assert issued.link_digest == email_code.link_digest(issued.link_token)
    assert issued.code not in issued.code_digest
    assert issued.code not in repr(issued) and issued.link_token not in repr(issued)


def test_codes_are_zero_padded_and_vary() -> None:
    codes = {email_code.new_challenge(NOW).code for _ in range(200)}
    assert len(codes) > 150
    assert all(len(code) == 6 for code in codes)


def test_right_code() -> None:
    issued = email_code.new_challenge(NOW)
    done = email_code.check(stored(issued), issued.code, NOW + 10)
    assert done.method == "email_code"
    assert done.amr == ("email",)
    assert done.acr == ACR_1FA
    assert done.completed_at == NOW + 10
    assert done.factors == frozenset({Factor.POSSESSION})


def test_code_with_spaces() -> None:
    issued = email_code.new_challenge(NOW)
    typed = f"{issued.code[:3]} {issued.code[3:]}"
    assert email_code.check(stored(issued), typed, NOW).method == "email_code"


def test_link_token() -> None:
    issued = email_code.new_challenge(NOW)
    done = email_code.check(stored(issued), None, NOW, link_token=issued.link_token)
    assert done.amr == ("email",)
    assert reason(stored(issued), None, NOW, link=issued.link_token + "x") == "invalid_code"


def test_wrong_and_malformed_codes() -> None:
    issued = email_code.new_challenge(NOW)
    wrong = f"{(int(issued.code) + 1) % 1_000_000:06d}"
    assert reason(stored(issued), wrong, NOW) == "invalid_code"
    fullwidth = "".join(chr(0xFF11 + i) for i in range(6))  # looks like 123456
    for malformed in ["", "12345", "1234567", "abcdef", fullwidth, None]:
        assert reason(stored(issued), malformed, NOW) == "invalid_code"


def test_code_from_another_flow_does_not_match() -> None:
    mine = email_code.new_challenge(NOW)
    other = email_code.new_challenge(NOW)
    assert reason(stored(mine), other.code, NOW) in {"invalid_code"}
    # Even the same six digits issued to another challenge have another digest.
    assert email_code.code_digest(mine.challenge_id, "123456") != email_code.code_digest(
        other.challenge_id, "123456"
    )


def test_expired() -> None:
    issued = email_code.new_challenge(NOW)
    assert email_code.check(stored(issued), issued.code, issued.expires_at - 1)
    assert reason(stored(issued), issued.code, issued.expires_at) == "expired"


def test_used() -> None:
    issued = email_code.new_challenge(NOW)
    assert reason(stored(issued, used_at=NOW), issued.code, NOW) == "used"


def test_superseded() -> None:
    issued = email_code.new_challenge(NOW)
    assert reason(stored(issued, superseded=True), issued.code, NOW) == "superseded"


def test_attempt_cap_counts_the_reserved_attempt() -> None:
    issued = email_code.new_challenge(NOW)
    fifth = stored(issued, attempts=email_code.MAX_ATTEMPTS)
    assert email_code.check(fifth, issued.code, NOW)
    sixth = stored(issued, attempts=email_code.MAX_ATTEMPTS + 1)
    assert reason(sixth, issued.code, NOW) == "too_many_attempts"


def test_state_is_checked_before_the_code() -> None:
    issued = email_code.new_challenge(NOW)
    dead = stored(issued, used_at=NOW, superseded=True, attempts=99)
    assert reason(dead, "000000", NOW + 10_000) == "used"


def _parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert isinstance(text, EmailMessage) and isinstance(html, EmailMessage)
    return str(text.get_content()), str(html.get_content())


def test_compose() -> None:
    link = "https://id.example.com/email/confirm?token=abc&flow=1"
    message = email_code.compose(
        "ana@example.com",
        "012345",
        link,
        "FreshID",
        "Acme <Console>",
        NOW,
        mail_from="FreshID <no-reply@example.com>",
    )
    assert message["Subject"] == "Your FreshID sign-in code: 012345"
    assert message["To"] == "ana@example.com"
    assert message["From"] == "FreshID <no-reply@example.com>"
    assert message["Date"] == "Tue, 14 Nov 2023 22:13:20 +0000"
    assert re.fullmatch(r"<[0-9a-f]{32}@id\.example\.com>", str(message["Message-ID"]))
    assert message.is_multipart() and message.get_content_type() == "multipart/alternative"
    text, html = _parts(message)
    assert "012345" in text and link in text and "10 minutes" in text and "confirm" in text
    assert "012345" in html and "10 minutes" in html
    assert 'href="https://id.example.com/email/confirm?token=abc&amp;flow=1"' in html
    assert "Acme &lt;Console&gt;" in html and "<Console>" not in html


def test_compose_refuses_header_injection() -> None:
    with pytest.raises(ValueError):
        email_code.compose("a@example.com\nBcc: x@evil.test", "1", "https://x", "P", "C", NOW)
