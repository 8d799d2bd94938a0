"""Statements compiled once per dialect and run on the driver's own cursor: the hot paths.

The token endpoint runs about seven statements per request. Through SQLAlchemy Core each costs
tens of microseconds of Python before the driver sees it (statement construction, cache-key
generation, execution context, result processing), which made SQLAlchemy most of a refresh
grant's CPU (docs/benchmarks.md). A :class:`Prepared` statement is still written with SQLAlchemy
— so the SQL is generated per dialect from the same table definitions as everywhere else — but
it is compiled once per dialect and then executed with the DB-API cursor of the caller's
connection, inside the caller's transaction. psycopg 3 also prepares it server-side after a few
uses (its ``prepare_threshold``).

The price is that no SQLAlchemy type processing happens: parameters must already be driver
values (``str``, ``int``, ``None``; JSON as text via :func:`json_param`), and results come back
as the driver returns them (SQLite: booleans as 0/1 and JSON as text; use :func:`json_value` and
``bool()``). Keep these statements to simple columns for that reason.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection


@dataclass(frozen=True)
class _Compiled:
    sql: str
    positions: tuple[str, ...] | None
    """Bind names in order for positional paramstyles (SQLite ``?``); None for named ones."""
    columns: tuple[str, ...]
    constants: Mapping[str, Any]
    """Values the statement itself fixes (``WHERE id = 1`` compiles to a bind parameter)."""


class Prepared:
    """One statement with named :func:`sqlalchemy.bindparam` parameters."""

    def __init__(self, statement: sa.Executable) -> None:
        self._statement = statement
        self._by_dialect: dict[str, _Compiled] = {}

    def _compile(self, conn: Connection) -> _Compiled:
        dialect = conn.dialect
        found = self._by_dialect.get(dialect.name)
        if found is None:
            compiled = self._statement.compile(dialect=dialect)  # type: ignore[attr-defined]
            positions = tuple(compiled.positiontup) if compiled.positional else None
            columns = tuple(str(c[0]) for c in getattr(compiled, "_result_columns", ()))
            constants = {k: v for k, v in compiled.params.items() if v is not None}
            found = _Compiled(compiled.string, positions, columns, constants)
            self._by_dialect[dialect.name] = found
        return found

    def _arguments(self, compiled: _Compiled, params: Mapping[str, Any]) -> Any:
        if compiled.constants:
            params = {**compiled.constants, **params}
        if compiled.positions is None:
            return params
        return tuple(params[name] for name in compiled.positions)

    def _run(self, conn: Connection, params: Mapping[str, Any]) -> tuple[Any, _Compiled]:
        compiled = self._compile(conn)
        # The SQLAlchemy connection has begun its transaction (Database.write/read call
        # begin()), so the driver connection is inside it: these statements commit or roll
        # back with everything else the caller does.
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        cursor.execute(compiled.sql, self._arguments(compiled, params))
        return cursor, compiled

    def first(self, conn: Connection, **params: Any) -> dict[str, Any] | None:
        """The first row as a dict keyed by the selected columns' names, or None."""
        cursor, compiled = self._run(conn, params)
        try:
            row = cursor.fetchone()
        finally:
            cursor.close()
        return None if row is None else dict(zip(compiled.columns, row, strict=True))

    def all(self, conn: Connection, **params: Any) -> list[dict[str, Any]]:
        cursor, compiled = self._run(conn, params)
        try:
            rows = cursor.fetchall()
        finally:
            cursor.close()
        return [dict(zip(compiled.columns, row, strict=True)) for row in rows]

    def execute(self, conn: Connection, **params: Any) -> int:
        """Run an INSERT, UPDATE or DELETE; returns the number of rows it touched."""
        cursor, _ = self._run(conn, params)
        try:
            return int(cursor.rowcount)
        finally:
            cursor.close()

    def execute_many(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run the statement once per row of parameters (psycopg pipelines them: one round trip
        for all, where it can)."""
        compiled = self._compile(conn)
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.executemany(compiled.sql, [self._arguments(compiled, row) for row in rows])
        finally:
            cursor.close()


def insert(table: sa.Table, columns: Sequence[str]) -> Prepared:
    """``INSERT INTO table (columns...)`` with one bind parameter per column, of the same name."""
    return Prepared(table.insert().values({name: sa.bindparam(name) for name in columns}))


def json_param(value: Any) -> str:
    """A value for a JSON column, as the text every driver accepts (PostgreSQL casts it)."""
    return json.dumps(value, separators=(",", ":"))


def json_value(value: Any) -> Any:
    """A JSON column as read from the driver: text on SQLite, already decoded on PostgreSQL."""
    return json.loads(value) if isinstance(value, str | bytes) else value
