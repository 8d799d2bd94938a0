"""The console's sentences about time and proof: how old a proof is, what an action needs.

Display only. Whether a proof is good enough is decided by ``freshid_guard`` (see
:mod:`acme_console.gate`); these functions only put the guard's numbers and the catalog's
requirements into words, with ``now`` passed in so that tests can move time.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from freshid_guard import ActionPolicy

__all__ = [
    "age",
    "ago",
    "duration",
    "methods_text",
    "proof_method",
    "requirement",
    "sentence",
    "utc_text",
]

# RFC 8176 amr values, and FreshID's own "email", in the words a user knows.
_METHOD_NAMES: dict[str, str] = {
    "hwk": "passkey",
    "swk": "passkey",
    "otp": "authenticator code",
    "pwd": "password",
    "email": "emailed code",
    "fed": "another identity provider",
}
_ACR_NAMES: dict[str, str] = {
    "urn:freshid:acr:mfa": "two factors",
    "urn:freshid:acr:phr": "a phishing-resistant method",
}


def _plural(count: int, unit: str) -> str:
    return f"{count} {unit}" + ("" if count == 1 else "s")


def duration(seconds: int) -> str:
    """A requirement's window: ``30 seconds``, ``2 minutes``, ``1 hour 30 minutes``."""
    seconds = max(0, seconds)
    if seconds < 60:
        return _plural(seconds, "second")
    hours, rest = divmod(seconds // 60, 60)
    parts = ([_plural(hours, "hour")] if hours else []) + (
        [_plural(rest, "minute")] if rest else []
    )
    return " ".join(parts)


def age(seconds: int) -> str:
    """A proof's age, roughly, as people say it: ``40 seconds``, ``3 min``, ``1 h 5 min``."""
    seconds = max(0, seconds)
    if seconds < 60:
        return _plural(seconds, "second")
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return _plural(hours // 24, "day")


def ago(seconds: int) -> str:
    """``just now`` (under ten seconds), ``40 seconds ago``, ``3 min ago``."""
    return "just now" if seconds < 10 else f"{age(seconds)} ago"


def _names(amr: Iterable[str], *, strongest_first: bool = False) -> list[str]:
    names: list[str] = []
    for value in amr:
        name = _METHOD_NAMES.get(value)
        if name is not None and name not in names:
            names.append(name)
    if strongest_first:  # a passkey, then a code, then the rest
        order = list(_METHOD_NAMES.values())
        names.sort(key=order.index)
    return names


def methods_text(amr: Iterable[str]) -> str:
    """How a proof was made, from its ``amr`` (in its order): ``passkey``, ``password and
    authenticator code``."""
    names = _names(amr)
    return " and ".join(names) if names else "an unstated method"


def proof_method(amr: Iterable[str]) -> str:
    """``with your passkey``; empty when the ``amr`` names nothing we know."""
    names = _names(amr)
    return f"with your {' and '.join(names)}" if names else ""


def sentence(text: str) -> str:
    """Upper-case the first letter only (``|capitalize`` would lower-case "Acme")."""
    return text[:1].upper() + text[1:]


def _article(noun: str) -> str:
    return ("an " if noun[0] in "aeiou" else "a ") + noun


def requirement(policy: ActionPolicy) -> str:
    """What an action of the catalog needs, in one sentence.

    ``Needs a sign-in within 5 minutes``; ``Needs a passkey or authenticator code within
    2 minutes, just for this action``.
    """
    names = _names(policy.amr, strongest_first=True)
    what = _article(" or ".join(names)) if names else "a sign-in"
    text = f"Needs {what}"
    if policy.min_acr in _ACR_NAMES:
        text += f" with {_ACR_NAMES[policy.min_acr]}"
    text += f" within {duration(policy.max_age)}"
    if policy.bind:
        text += ", just for this action"
    return text


def utc_text(timestamp: int) -> str:
    """``2025-01-31 14:03:09 UTC``."""
    return datetime.fromtimestamp(timestamp, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
