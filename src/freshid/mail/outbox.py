"""A development outbox: instead of sending mail, keep the last few messages in memory so a local
page can show them (``make run`` uses it, so no SMTP server is needed to try FreshID).

It lives in one process's memory on purpose: it is for development only, never for production,
where several nodes must share everything protocol-relevant (see DESIGN.md, "Storage and scale").
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import getaddresses

KEEP = 50


@dataclass(frozen=True)
class OutboxMessage:
    message_id: str | None
    date: str | None
    sender: str | None
    to: str
    subject: str
    text: str
    html: str | None


def _header(message: EmailMessage, name: str) -> str | None:
    value = message[name]
    return None if value is None else str(value)


def _part(message: EmailMessage, subtype: str) -> str | None:
    body = message.get_body(preferencelist=(subtype,))
    if body is None or not isinstance(body, EmailMessage):
        return None
    content = body.get_content()
    return content if isinstance(content, str) else None


class DevOutbox:
    """A :class:`freshid.mail.sender.MailSender` that keeps the newest :data:`KEEP` messages."""

    def __init__(self, keep: int = KEEP) -> None:
        self._messages: deque[OutboxMessage] = deque(maxlen=keep)
        # The web layer may read while a worker thread appends; deque ops are atomic in CPython,
        # but a lock keeps snapshots consistent without relying on that.
        self._lock = threading.Lock()

    async def send(self, message: EmailMessage) -> None:
        self.add(message)

    def add(self, message: EmailMessage) -> OutboxMessage:
        entry = OutboxMessage(
            message_id=_header(message, "Message-ID"),
            date=_header(message, "Date"),
            sender=_header(message, "From"),
            to=str(message["To"] or ""),
            subject=str(message["Subject"] or ""),
            text=_part(message, "plain") or "",
            html=_part(message, "html"),
        )
        with self._lock:
            self._messages.append(entry)
        return entry

    def messages(self) -> list[OutboxMessage]:
        """Newest first."""
        with self._lock:
            return list(reversed(self._messages))

    def latest(self, to: str | None = None) -> OutboxMessage | None:
        """The newest message, or the newest one addressed to ``to`` (case-insensitive)."""
        for entry in self.messages():
            if to is None or to.casefold() in {
                address.casefold() for _, address in getaddresses([entry.to])
            }:
                return entry
        return None

    def clear(self) -> None:
        with self._lock:
            self._messages.clear()
