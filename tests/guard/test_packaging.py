"""The guard is its own distribution: it never imports the server, and importing it pulls in no
framework."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

GUARD = Path(__file__).resolve().parents[2] / "guard"
SOURCES = sorted((GUARD / "src" / "freshid_guard").rglob("*.py"))


def _imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_no_module_imports_the_server() -> None:
    assert SOURCES
    for path in SOURCES:
        offending = {n for n in _imported(path) if n == "freshid" or n.startswith("freshid.")}
        assert not offending, f"{path} imports {offending}"


def test_only_adapters_import_frameworks() -> None:
    frameworks = ("starlette", "fastapi", "flask", "django", "sqlalchemy")
    for path in SOURCES:
        roots = {n.split(".")[0] for n in _imported(path)}
        used = roots.intersection(frameworks)
        if used:
            assert path.parent.name == "adapters" or path.name == "replay_sql.py", (path, used)


def test_importing_the_guard_loads_neither_server_nor_framework() -> None:
    code = (
        "import sys, freshid_guard, freshid_guard.guard, freshid_guard.adapters.asgi\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'freshid', 'starlette', 'fastapi', 'flask', 'django', 'sqlalchemy', 'joserfc'})\n"
        "print(bad)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


def test_distribution_metadata() -> None:
    project = tomllib.loads((GUARD / "pyproject.toml").read_text())["project"]
    assert project["name"] == "freshid-guard"
    assert not any(d.startswith("freshid") for d in project["dependencies"])
    assert set(project["optional-dependencies"]) >= {"starlette", "flask", "django", "sql"}
    assert (GUARD / "src" / "freshid_guard" / "py.typed").exists()
