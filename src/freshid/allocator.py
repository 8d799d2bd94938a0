"""glibc malloc settings for the server process, so that its memory stays flat.

argon2id (:mod:`freshid.methods.password`) allocates and frees a 19 MiB block for every hash.
glibc serves the first one with ``mmap`` and, when it is freed, raises its mmap threshold to that
size (the "dynamic threshold", mallopt(3) ``M_MMAP_THRESHOLD``): from then on every allocation
under 19 MiB comes from the heaps instead, large response bodies included, and the heaps
fragment. Measured with ``python -m bench.soak --minutes 10``: RSS ~40 MiB higher and still
growing by ~1.3 MiB a minute after ten minutes. Pinning the threshold at 4 MiB keeps argon2's
block mapped and hands it back at every free — memory flat — but faulting 19 MiB of 4 KiB pages
in again made every hash ~20 ms slower (40 → 60 ms); with ``glibc.malloc.hugetlb=1`` glibc asks
for transparent huge pages for such blocks (``madvise``), and a hash costs what it did (measured
37-39 ms either way).

These are tunables, read when a process starts (https://sourceware.org/glibc/manual/latest/html_node/Memory-Allocation-Tunables.html),
so ``freshid serve`` executes itself again once with them in its environment. An operator who
sets ``GLIBC_TUNABLES`` keeps exactly what they set; other C libraries are left alone.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Mapping, Sequence

TUNABLES = "glibc.malloc.mmap_threshold=4194304:glibc.malloc.hugetlb=1"


def tuned_environment(environ: Mapping[str, str]) -> dict[str, str] | None:
    """The environment to run the server with, or ``None`` when this one will do."""
    if "GLIBC_TUNABLES" in environ:
        return None  # the operator's choice, or this process was already started with ours
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return None
    return {**environ, "GLIBC_TUNABLES": TUNABLES}


def restart_tuned(module_args: Sequence[str]) -> None:
    """Replace this process with ``python <module_args>`` under :data:`TUNABLES`, if it does not
    run with them yet (same PID, so supervisors and signals are unaffected); else return."""
    environ = tuned_environment(os.environ)
    if environ is not None:
        # Our own interpreter and arguments, no shell involved.
        os.execve(sys.executable, [sys.executable, *module_args], environ)  # noqa: S606
