"""The server keeps its start-up objects out of full garbage collections, and still collects the
cyclic garbage it makes afterwards."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from freshid import collector


class _Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the cyclic collector frees it


@pytest.fixture
def frozen() -> Iterator[None]:
    collector.freeze_startup_objects()
    yield
    gc.unfreeze()  # the rest of the test run collects as usual


def test_start_up_objects_are_frozen_and_later_garbage_is_still_collected(frozen: None) -> None:
    assert gc.get_freeze_count() > 10_000  # this process's modules, classes, functions...
    later = weakref.ref(_Node())
    assert later() is not None  # kept alive by its own cycle
    gc.collect()
    assert later() is None
