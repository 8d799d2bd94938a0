"""The results as one Markdown table, and the machine they were measured on."""

from __future__ import annotations

import os
import platform
import resource
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path


@dataclass(frozen=True)
class Row:
    benchmark: str
    store: str
    freshid: str
    reference: str
    ratio: str
    notes: str


HEADER = ("benchmark", "store", "FreshID", "raw limit (same run)", "ratio", "notes")


def _escape(cell: str) -> str:
    return cell.replace("|", "\\|")


def table(rows: list[Row]) -> str:
    lines = [
        "| " + " | ".join(HEADER) + " |",
        "|" + "|".join(["---"] * len(HEADER)) + "|",
    ]
    for r in rows:
        cells = (r.benchmark, r.store, r.freshid, r.reference, r.ratio, r.notes)
        lines.append("| " + " | ".join(_escape(c) for c in cells) + " |")
    return "\n".join(lines)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "-"


def _installed(dist: str) -> bool:
    return _version(dist) != "-"


def machine() -> str:
    cores = len(os.sched_getaffinity(0))
    http = "httptools" if _installed("httptools") else "h11"
    loop = "uvloop" if _installed("uvloop") else "asyncio"
    libs = ", ".join(
        f"{name} {_version(name)}"
        for name in ("uvicorn", "starlette", "SQLAlchemy", "cryptography", "argon2-cffi", "httpx")
    )
    return (
        f"{cores} cores ({cpu_model()}), Python {platform.python_version()} "
        f"({sys.implementation.name}); server: uvicorn, 1 worker, {http} + {loop}; {libs}"
    )


def _cpu_jiffies() -> tuple[int, int]:
    """(busy, steal) jiffies of the whole machine since boot, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return user + nice + system + irq + softirq + steal, steal


class MachineLoad:
    """How busy the machine was during the run beyond this benchmark's own processes (the load
    generator and the servers it started; a PostgreSQL server's backends count as others)."""

    def __init__(self) -> None:
        self._wall = time.monotonic()
        self._busy, self._steal = _cpu_jiffies()
        self._own = self._own_seconds()

    @staticmethod
    def _own_seconds() -> float:
        me = resource.getrusage(resource.RUSAGE_SELF)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime

    def summary(self) -> str:
        wall = time.monotonic() - self._wall
        busy, steal = _cpu_jiffies()
        tick = os.sysconf("SC_CLK_TCK")
        total = (busy - self._busy) / tick / wall
        own = (self._own_seconds() - self._own) / wall
        stolen = (steal - self._steal) / tick / wall
        return (
            f"the machine was busy {total:.2f} cores on average, this benchmark's processes "
            f"{own:.2f}, everything else {max(total - own, 0.0):.2f} (steal {stolen:.2f})"
        )
