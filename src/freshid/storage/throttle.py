"""Sign-in throttling that an attacker cannot turn against the account's owner (OWASP ASVS 5.0
V6.3: anti-automation; OWASP Authentication Cheat Sheet "Account lockout").

Three counters per window: one account from one address (tight), one address across accounts
(wide), and one account from addresses that never signed in to it (wide). The last one is what
stops a distributed guess against one account, and because addresses that have succeeded before are
exempt from it, an attacker elsewhere cannot lock the owner out.

Attempts are *reserved* before the password is checked (an atomic increment that returns the new
count), so parallel guesses cannot slip past a limit while their hashes are being computed. A
success gives the reservation back.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from freshid.storage.tables import known_addresses, login_failures
from freshid.tokens.secrets import digest


@dataclass(frozen=True)
class Limits:
    window: int
    per_account_ip: int
    per_ip: int
    per_account: int


def _buckets(email: str, ip: str) -> tuple[str, str, str]:
    return (f"ai:{digest(email + chr(0) + ip)}", f"i:{digest(ip)}", f"a:{digest(email)}")


def _increment(conn: Connection, bucket: str, now: int, window: int) -> int:
    dialect = sqlite if conn.dialect.name == "sqlite" else postgresql
    stmt = dialect.insert(login_failures).values(bucket=bucket, window_start=now, failures=1)
    expired = stmt.excluded.window_start - login_failures.c.window_start >= window
    stmt = stmt.on_conflict_do_update(
        index_elements=[login_failures.c.bucket],
        set_={
            "failures": sa.case((expired, 1), else_=login_failures.c.failures + 1),
            "window_start": sa.case(
                (expired, stmt.excluded.window_start), else_=login_failures.c.window_start
            ),
        },
    ).returning(login_failures.c.failures)
    return int(conn.execute(stmt).scalar_one())


def _known(conn: Connection, user_id: str | None, ip: str) -> bool:
    if user_id is None:
        return False
    return (
        conn.execute(
            sa.select(known_addresses.c.user_id).where(
                known_addresses.c.user_id == user_id, known_addresses.c.address_digest == digest(ip)
            )
        ).first()
        is not None
    )


def reserve_attempt(
    conn: Connection, email: str, ip: str, user_id: str | None, now: int, limits: Limits
) -> bool:
    """Count one attempt; False when a limit is exceeded and the password must not be checked."""
    pair, by_ip, by_account = _buckets(email, ip)
    pair_n = _increment(conn, pair, now, limits.window)
    ip_n = _increment(conn, by_ip, now, limits.window)
    account_n = _increment(conn, by_account, now, limits.window)
    if pair_n > limits.per_account_ip or ip_n > limits.per_ip:
        return False
    return account_n <= limits.per_account or _known(conn, user_id, ip)


def succeeded(conn: Connection, email: str, ip: str, user_id: str, now: int) -> None:
    pair, by_ip, by_account = _buckets(email, ip)
    conn.execute(login_failures.delete().where(login_failures.c.bucket == pair))
    # One bucket at a time, in reserve_attempt's order (pair, address, account): a single
    # UPDATE ... IN (...) locks rows in index order, which could be the reverse of a concurrent
    # reservation's and deadlock on PostgreSQL (found by the soak: a correct password got a 503).
    for bucket in (by_ip, by_account):
        conn.execute(
            login_failures.update()
            .where(login_failures.c.bucket == bucket, login_failures.c.failures > 0)
            .values(failures=login_failures.c.failures - 1)
        )
    dialect = sqlite if conn.dialect.name == "sqlite" else postgresql
    stmt = dialect.insert(known_addresses).values(
        user_id=user_id, address_digest=digest(ip), last_success_at=now
    )
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[known_addresses.c.user_id, known_addresses.c.address_digest],
            set_={"last_success_at": now},
        )
    )


def hit(conn: Connection, kind: str, key: str, now: int, window: int) -> int:
    """Count one event of ``kind`` for ``key`` (e.g. codes sent to one address, second-factor
    attempts of one user); returns the count in the current window."""
    return _increment(conn, f"{kind}:{digest(key)}", now, window)


def clear(conn: Connection, kind: str, key: str) -> None:
    conn.execute(login_failures.delete().where(login_failures.c.bucket == f"{kind}:{digest(key)}"))
