"""Sending email over SMTP (RFC 5321), with STARTTLS (RFC 3207) or implicit TLS (RFC 8314 §3.3).

:class:`MailSender` is what the rest of FreshID depends on; :class:`SmtpSender` is the real one and
:class:`freshid.mail.outbox.DevOutbox` the development one. ``smtplib`` blocks, so each message is
sent in a worker thread (``anyio.to_thread.run_sync``) and never stalls the event loop.

Security rules:

- ``starttls`` fails if the server does not offer STARTTLS; it never falls back to plain text
  (RFC 8314 §4.1 / RFC 3207 §4.1 downgrade protection). Certificates and host names are verified
  with the system trust store unless an ``ssl_context`` is given (e.g. for a private CA).
- Credentials are refused with ``security="none"``: an SMTP password must not cross the network
  in clear text.
- Nothing secret is logged: not the password (hidden from ``repr`` too), not the message body
  (it holds sign-in codes), not the recipients; only the Message-ID and the server address.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Literal, Protocol, get_args

import anyio

logger = logging.getLogger("freshid.mail")

SmtpSecurity = Literal["none", "starttls", "tls"]


class MailDeliveryFailed(Exception):
    """The SMTP server could not be reached or refused the message. The message says which
    server and the error's class, never the message content or credentials."""


class MailSender(Protocol):
    async def send(self, message: EmailMessage) -> None: ...


@dataclass(frozen=True)
class SmtpSender:
    host: str
    port: int
    security: SmtpSecurity = "starttls"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 10.0
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.security not in get_args(SmtpSecurity):
            raise ValueError(f"smtp security must be one of {get_args(SmtpSecurity)}")
        if self.username and self.security == "none":
            raise ValueError("refusing to send SMTP credentials without TLS (security='none')")
        if not 0 < self.port < 65536:
            raise ValueError("smtp port must be between 1 and 65535")

    async def send(self, message: EmailMessage) -> None:
        if message["From"] is None or message["To"] is None:
            raise ValueError("message needs From and To headers")
        await anyio.to_thread.run_sync(self._send_sync, message)

    def _context(self) -> ssl.SSLContext:
        return self.ssl_context or ssl.create_default_context()

    def _send_sync(self, message: EmailMessage) -> None:
        server = f"{self.host}:{self.port}"
        try:
            client: smtplib.SMTP
            if self.security == "tls":
                client = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=self.timeout, context=self._context()
                )
            else:
                client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            with client:
                if self.security == "starttls":
                    # Raises SMTPNotSupportedError when the server does not offer it: no
                    # silent downgrade to plain text.
                    client.starttls(context=self._context())
                if self.username:
                    client.login(self.username, self.password or "")
                client.send_message(message)
        except (smtplib.SMTPException, OSError) as exc:
            logger.warning("mail delivery via %s failed: %s", server, type(exc).__name__)
            raise MailDeliveryFailed(
                f"mail delivery via {server} failed: {type(exc).__name__}"
            ) from exc
        logger.info("mail %s sent via %s", message["Message-ID"], server)
