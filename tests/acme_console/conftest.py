"""Shared fixtures for the Acme Console tests.

``acme_console`` lives in ``examples/``; when the project is not installed (no editable install
yet), put that folder on ``sys.path`` so the tests import the package the way ``freshid demo``
does.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

if importlib.util.find_spec("acme_console") is None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
