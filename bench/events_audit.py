"""Events benchmark 2: audit chain verification rate against raw SHA-256.

``freshid.events.audit.verify`` reads every event in id order in batches of 5,000 and, per row,
rebuilds the canonical JSON, hashes it, and compares both links in constant time. Two references,
measured in the same run on the same rows:

- **raw SHA-256**: ``hashlib.sha256(canonical_bytes).hexdigest()`` over the very bytes the
  verifier hashes, pre-built — the floor set by the hash function alone;
- **canonical JSON + SHA-256, in memory**: the verifier's per-row work without the database —
  what is left for reading rows is the difference.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

import sqlalchemy as sa

from freshid.events import audit, chain
from freshid.storage.database import Database
from freshid.storage.tables import events


@dataclass(frozen=True)
class AuditResult:
    events: int
    verify_seconds: float
    ok: bool
    raw_sha256_rate: float
    """rows/s hashing pre-built canonical bytes"""
    in_memory_rate: float
    """rows/s canonical JSON + SHA-256 of rows already loaded"""
    mean_bytes: float


def measure(db: Database, sample: int = 200_000) -> AuditResult:
    started = time.perf_counter()
    report = audit.verify(db.read)
    verify_seconds = time.perf_counter() - started

    with db.read() as conn:
        rows = [
            dict(r._mapping)
            for r in conn.execute(sa.select(events).order_by(events.c.id).limit(sample))
        ]
    started = time.perf_counter()
    for m in rows:
        chain.row_hash(m)
    in_memory = len(rows) / (time.perf_counter() - started)

    blobs = [
        chain.canonical_json(
            {
                "id": m["id"],
                "type": m["type"],
                "occurred_at": m["occurred_at"],
                "user_id": m["user_id"],
                "session_id": m["session_id"],
                "client_id": m["client_id"],
                "data": m["data"],
                "prev_hash": m["prev_hash"],
            }
        )
        for m in rows
    ]
    sha = hashlib.sha256
    best = 0.0
    for _ in range(3):
        started = time.perf_counter()
        for b in blobs:
            sha(b).hexdigest()
        best = max(best, len(blobs) / (time.perf_counter() - started))
    return AuditResult(
        report.events,
        verify_seconds,
        report.ok,
        best,
        in_memory,
        sum(len(b) for b in blobs) / max(1, len(blobs)),
    )
