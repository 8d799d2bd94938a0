"""Schema migrations with Alembic, safe to start from several nodes at once.

On PostgreSQL the upgrade holds a transaction-level advisory lock, so two ``freshid serve`` nodes
starting together do not both try to create the schema.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from freshid.storage.database import Database

_LOCK_KEY = 0x46524553  # "FRES"


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    return cfg


def upgrade(db: Database) -> None:
    cfg = _config()
    with db.write() as conn:
        if not db.sqlite:
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_LOCK_KEY})")
        cfg.attributes["connection"] = conn
        # "heads": features may add independent migration branches; all of them apply.
        command.upgrade(cfg, "heads")


def is_current(db: Database) -> bool:
    heads = set(ScriptDirectory.from_config(_config()).get_heads())
    with db.read() as conn:
        return set(MigrationContext.configure(conn).get_current_heads()) == heads
