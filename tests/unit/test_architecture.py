"""The house: every module imports on its own, and imports run one way between the rooms.

The contracts live in ``pyproject.toml`` (``[tool.importlinter]``) and are checked by
``lint-imports``; the last test shows that a violation would be caught.
"""

from __future__ import annotations

import ast
import os
import pkgutil
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROOMS = (
    "cli",
    "system",
    "web",
    "interchange",
    "simulator",
    "analytics",
    "streams",
    "projections",
    "ledger",
)
LINT = Path(sys.executable).parent / "lint-imports"


def project_modules() -> list[str]:
    found = []
    for room in ROOMS:
        found.append(room)
        for info in pkgutil.walk_packages([str(ROOT / room)], prefix=f"{room}."):
            found.append(info.name)
    return sorted(found)


def test_the_walk_finds_every_room_and_module() -> None:
    modules = project_modules()
    assert {"cli.main", "ledger.domain.events", "streams.embedded", "system.demo"} <= set(modules)
    assert len(modules) > 100


def _import_alone(module: str) -> tuple[str, str] | None:
    run = subprocess.run(
        [sys.executable, "-c", f"import {module}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if run.returncode != 0:
        return module, (run.stderr.strip().splitlines() or ["?"])[-1]
    return None


def test_every_module_imports_on_its_own() -> None:
    """``python -c "import M"`` in a fresh interpreter, for every module of every room:
    no module needs another to be imported first (the CLI's import circle was one)."""
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        failures = [f for f in pool.map(_import_alone, project_modules()) if f]
    assert failures == []


def _lint(cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run(
        [str(LINT), "--no-cache", str(cwd / "pyproject.toml")],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def lint_available() -> None:
    if not LINT.exists():
        pytest.skip(f"lint-imports not installed next to {sys.executable}")


def test_the_import_contracts_hold(lint_available: None) -> None:
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "BROKEN" not in result.stdout


VIOLATIONS = (
    ("ledger/settings.py", "import cli.options", "Rooms import one way"),
    ("streams/pipeline.py", "import simulator", "No production room imports the simulator"),
    ("projections/state.py", "import click", "click only in cli"),
    ("ledger/domain/events.py", "import sqlite3", "ledger.domain imports no I/O library"),
    ("ledger/domain/hashchain.py", "import ledger.audit", "The ledger's pure core"),
    ("streams/outputs.py", "import streams.pipeline", "No import circle"),
)


def test_each_kind_of_violation_breaks_its_contract(tmp_path: Path, lint_available: None) -> None:
    """A copy of the rooms with imports against each rule: lint-imports fails and names
    every contract broken."""
    for room in ROOMS:
        shutil.copytree(
            ROOT / room, tmp_path / room, ignore=shutil.ignore_patterns("__pycache__", "*.gz")
        )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    for module, line, _ in VIOLATIONS:
        target = tmp_path / module
        text = target.read_text(encoding="utf-8")
        target.write_text(text + f"\n{line}  # noqa\n", encoding="utf-8")
    result = _lint(tmp_path)
    assert result.returncode != 0
    broken = result.stdout.split("Broken contracts", 1)[-1]
    for _, _, contract in VIOLATIONS:
        assert contract in broken, (contract, result.stdout[-3000:])


def _function_body_imports(path: Path) -> list[str]:
    """Project imports inside function bodies (not under ``if TYPE_CHECKING``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for fn in ast.walk(tree):
        if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(fn):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            if any(n.split(".")[0] in ROOMS for n in names):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_project_imports_sit_at_the_top_of_files_outside_the_command_line() -> None:
    """The top of a file shows what it depends on; only ``cli/`` imports the rooms lazily
    (for a fast ``dossier --help``)."""
    lazy = [
        line
        for room in ROOMS
        if room != "cli"
        for path in sorted((ROOT / room).rglob("*.py"))
        for line in _function_body_imports(path)
    ]
    assert lazy == []
