"""Password authentication with argon2id (RFC 9106; OWASP Password Storage Cheat Sheet).

Parameters are explicit settings, never the library's defaults. Hashing runs off the event loop on
a pool of its own with ``concurrency`` threads, so a burst of sign-ins queues instead of exhausting
memory or CPU. Its own threads, not the shared worker threads, because glibc gives each thread
that allocates its own malloc arena and an arena keeps a freed 19 MiB argon2 buffer for reuse:
hashes spread over dozens of short-lived worker threads made the server's memory creep up for as
long as it ran (``bench/soak.py``), where a fixed pool holds at most ``concurrency`` such buffers.
Unknown accounts are checked against a dummy hash so their timing matches a wrong password (no user
enumeration).
RFC 8176 §2: ``amr`` is ``pwd``; a password alone is one factor.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, TypeVar

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from freshid.freshness.levels import ACR_1FA

if TYPE_CHECKING:
    from freshid.settings import Settings
from freshid.methods.base import CompletedMethod, Factor, MethodFailed, MethodInfo

INFO = MethodInfo("password", "Password", frozenset({Factor.KNOWLEDGE}), rank=10)
METHOD = INFO.name
AMR = ("pwd",)
ACR = ACR_1FA
MAX_PASSWORD_LENGTH = 1024
MIN_PASSWORD_LENGTH = 8
T = TypeVar("T")


class PasswordMethod:
    def __init__(self, memory_kib: int, time_cost: int, parallelism: int, concurrency: int) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_kib,
            parallelism=parallelism,
            hash_len=32,
            salt_len=16,
            type=Type.ID,
        )
        self._concurrency = concurrency
        self._pool: ThreadPoolExecutor | None = None  # started by the first hash off the loop
        self._dummy_hash = self._hasher.hash("freshid-dummy-password-for-timing")

    @classmethod
    def from_settings(cls, settings: Settings, concurrency: int | None = None) -> PasswordMethod:
        """The configured argon2id parameters; ``concurrency`` hashing threads (the setting's
        ``password_hash_concurrency`` unless given: one for a command that hashes a password)."""
        return cls(
            settings.argon2_memory_kib,
            settings.argon2_time_cost,
            settings.argon2_parallelism,
            settings.password_hash_concurrency if concurrency is None else concurrency,
        )

    def hash_sync(self, password: str) -> str:
        check_new_password(password)
        return self._hasher.hash(password)

    async def _off_loop(self, fn: Callable[..., T], *args: object) -> T:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._concurrency, thread_name_prefix="freshid-argon2")
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def close(self) -> None:
        """Stop the hashing threads (they are started again if needed)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False)

    async def hash(self, password: str) -> str:
        return await self._off_loop(self.hash_sync, password)

    def _verify_sync(self, stored_hash: str | None, password: str) -> bool:
        try:
            return bool(self._hasher.verify(stored_hash or self._dummy_hash, password)) and (
                stored_hash is not None
            )
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored_hash: str) -> bool:
        return bool(self._hasher.check_needs_rehash(stored_hash))

    async def verify(self, stored_hash: str | None, password: str, now: int) -> CompletedMethod:
        """Check ``password``; ``stored_hash`` is None for unknown users and those without one."""
        if not password or len(password) > MAX_PASSWORD_LENGTH:
            # Still spend the time, so the answer's timing says nothing.
            await self._off_loop(self._verify_sync, None, "x")
            raise MethodFailed("invalid_password")
        ok = await self._off_loop(self._verify_sync, stored_hash, password)
        if not ok:
            raise MethodFailed("unknown_user" if stored_hash is None else "invalid_password")
        return CompletedMethod(METHOD, AMR, ACR, now, factors=INFO.factors)


def check_new_password(password: str) -> None:
    """NIST SP 800-63B §5.1.1.2: at least 8 characters; allow long passphrases, but bound them."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"password must have at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValueError(f"password must have at most {MAX_PASSWORD_LENGTH} characters")
