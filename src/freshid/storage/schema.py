"""The whole schema: every module that defines tables on :data:`metadata`, imported once.

Alembic's autogenerate and the test suite's clean-up read :data:`metadata` from here, so a table
module added by a feature must be imported below.
"""

from __future__ import annotations

from freshid.storage import (
    tables_events,  # noqa: F401  (events feature tables)
    tables_federation,  # noqa: F401  (federation tables)
)
from freshid.storage.tables import metadata

__all__ = ["metadata"]
