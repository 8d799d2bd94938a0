"""Real SMTP delivery to an in-process aiosmtpd server: plain, STARTTLS with AUTH, implicit TLS,
refused downgrade and refused credentials; then the development outbox."""

from __future__ import annotations

import datetime
import ipaddress
import logging
import re
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import anyio
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from freshid.mail import DevOutbox, MailDeliveryFailed, SmtpSender
from freshid.methods import email_code

NOW = 1_700_000_000
USER, PASSWORD = "freshid", "s3cret-smtp-password"


@dataclass
class Collector:
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        self.envelopes.append((str(envelope.mail_from), list(envelope.rcpt_tos)))
        return "250 OK"


def check_login(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
) -> AuthResult:
    ok = isinstance(data, LoginPassword) and data == (USER.encode(), PASSWORD.encode())
    return AuthResult(success=ok, handled=False)


@dataclass(frozen=True)
class Tls:
    server: ssl.SSLContext
    client: ssl.SSLContext


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    """A self-signed certificate for 127.0.0.1, trusted only by the client context."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory: Path = tmp_path_factory.mktemp("tls")
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    (directory / "cert.pem").write_bytes(cert_pem)
    (directory / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(directory / "cert.pem", directory / "key.pem")
    client = ssl.create_default_context(cadata=cert_pem.decode())
    return Tls(server, client)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def smtp_server() -> Iterator[Any]:
    """Start an aiosmtpd server with the given options; stops everything it started."""
    started: list[Controller] = []

    def start(**kwargs: Any) -> tuple[Collector, int]:
        collector = Collector()
        port = free_port()
        controller = Controller(collector, hostname="127.0.0.1", port=port, **kwargs)
        controller.start()
        started.append(controller)
        return collector, port

    yield start
    for controller in started:
        controller.stop()


def message(to: str = "ana@example.com") -> tuple[EmailMessage, str]:
    issued = email_code.new_challenge(NOW)
    link = f"https://id.example.com/email/confirm?token={issued.link_token}"
    composed = email_code.compose(
        to, issued.code, link, "FreshID", "Acme Console", NOW, mail_from="FreshID <id@example.com>"
    )
    return composed, issued.code


def code_in(received: EmailMessage) -> str:
    subject = re.search(r"sign-in code: (\d{6})$", str(received["Subject"]))
    body = received.get_body(("plain",))
    assert subject and isinstance(body, EmailMessage)
    assert subject.group(1) in body.get_content()
    return subject.group(1)


def freshid_log(caplog: pytest.LogCaptureFixture) -> str:
    """What FreshID itself logged (aiosmtpd's own debug log shows whole messages)."""
    return "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("freshid"))


def test_plain_delivery_carries_the_code(
    smtp_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    collector, port = smtp_server()
    sent, code = message()
    caplog.set_level(logging.DEBUG)
    anyio.run(SmtpSender("127.0.0.1", port, "none", timeout=5).send, sent)
    [received] = collector.messages
    assert code_in(received) == code
    assert collector.envelopes == [("id@example.com", ["ana@example.com"])]
    assert received.get_body(("html",)) is not None
    logged = freshid_log(caplog)
    assert "sent via" in logged
    assert code not in logged and "ana@example.com" not in logged


def test_starttls_with_login(smtp_server: Any, tls: Tls, caplog: pytest.LogCaptureFixture) -> None:
    collector, port = smtp_server(
        tls_context=tls.server,
        require_starttls=True,
        authenticator=check_login,
        auth_require_tls=True,
        auth_required=True,
    )
    sender = SmtpSender(
        "127.0.0.1", port, "starttls", USER, PASSWORD, timeout=5, ssl_context=tls.client
    )
    assert PASSWORD not in repr(sender)
    sent, code = message()
    caplog.set_level(logging.DEBUG)
    anyio.run(sender.send, sent)
    assert code_in(collector.messages[0]) == code
    assert PASSWORD not in freshid_log(caplog) and code not in freshid_log(caplog)


def test_implicit_tls(smtp_server: Any, tls: Tls) -> None:
    collector, port = smtp_server(ssl_context=tls.server)
    sent, code = message()
    anyio.run(SmtpSender("127.0.0.1", port, "tls", timeout=5, ssl_context=tls.client).send, sent)
    assert code_in(collector.messages[0]) == code


def test_untrusted_certificate_is_refused(smtp_server: Any, tls: Tls) -> None:
    collector, port = smtp_server(ssl_context=tls.server)
    sender = SmtpSender("127.0.0.1", port, "tls", timeout=5)  # system trust store only
    with pytest.raises(MailDeliveryFailed):
        anyio.run(sender.send, message()[0])
    assert collector.messages == []


def test_starttls_never_downgrades(smtp_server: Any) -> None:
    collector, port = smtp_server()  # offers no STARTTLS
    with pytest.raises(MailDeliveryFailed, match="SMTPNotSupportedError"):
        anyio.run(SmtpSender("127.0.0.1", port, "starttls", timeout=5).send, message()[0])
    assert collector.messages == []


def test_wrong_password(smtp_server: Any, tls: Tls) -> None:
    collector, port = smtp_server(
        tls_context=tls.server, authenticator=check_login, auth_required=True
    )
    sender = SmtpSender(
        "127.0.0.1", port, "starttls", USER, "wrong-password", timeout=5, ssl_context=tls.client
    )
    with pytest.raises(MailDeliveryFailed) as failed:
        anyio.run(sender.send, message()[0])
    assert "wrong-password" not in str(failed.value)
    assert collector.messages == []


def test_unreachable_server() -> None:
    sender = SmtpSender("127.0.0.1", free_port(), "none", timeout=2)
    with pytest.raises(MailDeliveryFailed, match=r"127\.0\.0\.1"):
        anyio.run(sender.send, message()[0])


def test_configuration_is_checked() -> None:
    with pytest.raises(ValueError, match="TLS"):
        SmtpSender("mail.example.com", 25, "none", "user", "password")
    with pytest.raises(ValueError):
        SmtpSender("mail.example.com", 25, "ssl")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        SmtpSender("mail.example.com", 0)


def test_message_needs_from_and_to() -> None:
    sent = email_code.compose("ana@example.com", "123456", "https://x.example", "P", "C", NOW)
    with pytest.raises(ValueError, match="From"):
        anyio.run(SmtpSender("127.0.0.1", 25, "none").send, sent)


# --- development outbox -----------------------------------------------------------------------


def test_outbox_keeps_the_newest_fifty() -> None:
    outbox = DevOutbox()
    codes = []
    for i in range(55):
        sent, code = message(f"user{i}@example.com")
        codes.append(code)
        anyio.run(outbox.send, sent)
    kept = outbox.messages()
    assert len(kept) == 50
    assert kept[0].to == "user54@example.com" and kept[-1].to == "user5@example.com"
    assert codes[54] in kept[0].subject and codes[54] in kept[0].text
    assert kept[0].html is not None and codes[54] in kept[0].html
    assert kept[0].sender == "FreshID <id@example.com>"


def test_outbox_latest_by_recipient() -> None:
    outbox = DevOutbox()
    first, _ = message("ana@example.com")
    second, code = message("bo@example.com")
    outbox.add(first)
    outbox.add(second)
    latest = outbox.latest("ANA@example.com")
    assert latest is not None and latest.to == "ana@example.com"
    assert outbox.latest("na@example.com") is None
    newest = outbox.latest()
    assert newest is not None and code in newest.subject
    outbox.clear()
    assert outbox.messages() == [] and outbox.latest() is None
