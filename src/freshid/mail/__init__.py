"""Outgoing email: a :class:`MailSender` interface, real SMTP delivery and a development outbox."""

from freshid.mail.outbox import DevOutbox, OutboxMessage
from freshid.mail.sender import MailDeliveryFailed, MailSender, SmtpSecurity, SmtpSender

__all__ = [
    "DevOutbox",
    "MailDeliveryFailed",
    "MailSender",
    "OutboxMessage",
    "SmtpSecurity",
    "SmtpSender",
]
