"""How old a proof is, and whether it is young enough: pure arithmetic, no I/O, no clock.

``auth_time`` (OpenID Connect Core 1.0 §2) is when the user last actively proved who they are.
Everything here takes ``now`` as an argument so that views pass the injectable clock and tests
can move time without sleeping.
"""

from __future__ import annotations

__all__ = [
    "CLOCK_SKEW_SECONDS",
    "format_duration",
    "needs_step_up",
    "proof_age_seconds",
    "proof_age_text",
]

CLOCK_SKEW_SECONDS = 60
"""How far in the future an ``auth_time`` may be before we stop believing it (clock drift)."""

_UNITS = (("day", 86_400), ("hour", 3_600), ("minute", 60), ("second", 1))


def proof_age_seconds(auth_time: float, now: float) -> int:
    """Whole seconds since ``auth_time``; never negative, so a provider clock slightly ahead of
    ours reads as "0 seconds ago" rather than as a proof from the future."""
    return max(0, int(now - auth_time))


def format_duration(seconds: int) -> str:
    """English for a duration, largest unit first, zero units left out: ``2 minutes 5 seconds``.

    People read "3 minutes 5 seconds" faster than "185 seconds"; that is the whole point of the
    console showing the age of the proof.
    """
    remaining = max(0, seconds)
    parts: list[str] = []
    for name, size in _UNITS:
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count} {name}" + ("" if count == 1 else "s"))
    return " ".join(parts) if parts else "0 seconds"


def proof_age_text(auth_time: float, now: float) -> str:
    """The home page's sentence, e.g. ``You last proved it's you 2 minutes 5 seconds ago``."""
    return f"You last proved it's you {format_duration(proof_age_seconds(auth_time, now))} ago"


def needs_step_up(
    auth_time: float | None, now: float, max_age: int, *, skew: int = CLOCK_SKEW_SECONDS
) -> bool:
    """True when the proof is too old (or unknown, or implausibly in the future) for ``max_age``.

    Same rule as OpenID Connect Core §3.1.2.1 for ``max_age``: re-authenticate when the elapsed
    time is *greater than* ``max_age``, so a proof exactly ``max_age`` seconds old still counts.
    A missing ``auth_time`` can prove nothing and therefore always needs a step-up.
    """
    if auth_time is None:
        return True
    if auth_time > now + skew:
        return True
    return now - auth_time > max_age
