"""Time as a dependency.

Every freshness decision compares a proof's age with a threshold, so the core never reads the wall
clock itself: it is handed a :class:`Clock`. Tests pass a :class:`FrozenClock` and travel in time
instead of sleeping.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> int:
        """Seconds since the epoch, as an integer (JWT NumericDate precision)."""
        ...


class SystemClock:
    def now(self) -> int:
        return int(time.time())


class FrozenClock:
    """A clock that only moves when told to."""

    def __init__(self, start: int = 1_700_000_000) -> None:
        self._now = start

    def now(self) -> int:
        return self._now

    def advance(self, seconds: int) -> None:
        self._now += seconds

    def set(self, when: int) -> None:
        self._now = when


class OffsetClock:
    """The system clock shifted by an adjustable offset.

    End-to-end tests use it to sign in "in the past" and then come back to the present, so the
    proof is old while the tokens the relying party checks carry real, current times.
    """

    def __init__(self, offset: int = 0) -> None:
        self.offset = offset

    def now(self) -> int:
        return int(time.time()) + self.offset
