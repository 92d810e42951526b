"""``ledger.settings.Settings``: the one reader of the ``DOSSIER_*`` variables."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import ledger.settings
from ledger.kafka import KafkaConfigError, configured_partitions
from ledger.log_reader import MMAP_BYTES, mmap_bytes
from ledger.settings import Settings
from ledger.signing import key_path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = (
    "ledger",
    "projections",
    "streams",
    "analytics",
    "interchange",
    "simulator",
    "web",
    "system",
    "cli",
)
SETTINGS = ROOT / "ledger" / "settings.py"
HARNESS = ROOT / "system" / "harness"
"""Builds the environments of the child processes it starts: it passes variables on."""

VARIABLES = {
    "DOSSIER_DATA_DIR": ("data_dir", "/srv/d", Path("/srv/d")),
    "DOSSIER_STORE": ("store", "postgresql://u@h/db", "postgresql://u@h/db"),
    "DOSSIER_KEYSTORE": ("keystore", "postgresql://u@h/keys", "postgresql://u@h/keys"),
    "DOSSIER_RULES": ("rules_path", "r.yaml", "r.yaml"),
    "DOSSIER_CALENDAR_OVERRIDES": ("overrides_path", "c.yaml", "c.yaml"),
    "DOSSIER_KAFKA_BOOTSTRAP": ("kafka_bootstrap", "k:9092", "k:9092"),
    "DOSSIER_KAFKA_PARTITIONS": ("kafka_partitions", "5", "5"),
    "DOSSIER_KAFKA_CLIENT": ("kafka_client", "kafka-python", "kafka-python"),
    "DOSSIER_SIGNING_KEY": ("signing_key", "/keys/s.key", "/keys/s.key"),
    "DOSSIER_SQLITE_MMAP": ("sqlite_mmap", "4096", "4096"),
    "DOSSIER_DUCKDB_MEMORY": ("duckdb_memory", "1GB", "1GB"),
    "DOSSIER_DUCKDB_CHECKPOINT": ("duckdb_checkpoint", "64MB", "64MB"),
    "DOSSIER_PROGRESS": ("progress", "off", "off"),
}
"""variable: (field, a value to set, what the field holds then)."""


def _read_in(source: str) -> set[str]:
    """The ``DOSSIER_*`` names quoted in ``source``."""
    return set(re.findall(r"[\"'](DOSSIER_[A-Z0-9_]+)[\"']", source))


@pytest.fixture
def clean(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_these_are_the_variables_settings_reads() -> None:
    assert _read_in(SETTINGS.read_text(encoding="utf-8")) == set(VARIABLES)


def test_the_docstring_table_documents_every_variable_with_its_field() -> None:
    rows = {
        m.group(1): m.group(2)
        for m in re.finditer(
            r"^\| ``(DOSSIER_[A-Z0-9_]+)`` \| ``(\w+)``", ledger.settings.__doc__ or "", re.M
        )
    }
    assert rows == {name: field for name, (field, _, _) in VARIABLES.items()}


def test_each_variable_sets_its_field(clean: pytest.MonkeyPatch) -> None:
    for name, (field, value, held) in VARIABLES.items():
        clean.setenv(name, value)
        assert getattr(Settings.from_env(), field) == held, name
        clean.delenv(name)


def test_the_defaults(clean: pytest.MonkeyPatch, tmp_path: Path) -> None:
    settings = Settings.from_env()
    assert settings.data_dir == settings.default_data_dir == Path("dossier-data")
    for field, _, _ in VARIABLES.values():
        if field != "data_dir":
            assert getattr(settings, field) is None, field
    assert configured_partitions(settings) == 12
    assert mmap_bytes(settings.sqlite_mmap) == MMAP_BYTES
    assert key_path(Settings.from_env(tmp_path)) == tmp_path / "signing.key"


def test_data_dir_flag_default_and_overrides(clean: pytest.MonkeyPatch) -> None:
    clean.setenv("DOSSIER_DATA_DIR", "/srv/d")
    flagged = Settings.from_env("elsewhere", store="postgresql://u@h/db", progress=None)
    assert flagged.data_dir == Path("elsewhere")
    assert flagged.default_data_dir == Path("/srv/d")  # what the command has without the flag
    assert flagged.store == "postgresql://u@h/db"
    assert Settings.from_env().data_dir == Path("/srv/d")


def test_empty_means_unset_but_for_the_values_checked_where_used(
    clean: pytest.MonkeyPatch,
) -> None:
    for name in VARIABLES:
        clean.setenv(name, "")
    settings = Settings.from_env()
    assert settings.data_dir == Path("dossier-data")
    checked_where_used = {"sqlite_mmap", "duckdb_memory", "duckdb_checkpoint"}
    for field, _, _ in VARIABLES.values():
        if field != "data_dir":
            expected = "" if field in checked_where_used else None
            assert getattr(settings, field) == expected, field
    with pytest.raises(ValueError, match="DOSSIER_SQLITE_MMAP='': not a number of bytes"):
        mmap_bytes(settings.sqlite_mmap)


def test_bad_values_are_refused_where_used_naming_the_variable(
    clean: pytest.MonkeyPatch,
) -> None:
    clean.setenv("DOSSIER_KAFKA_PARTITIONS", "0")
    clean.setenv("DOSSIER_SQLITE_MMAP", "a lot")
    settings = Settings.from_env()  # nothing is checked yet: other commands still run
    with pytest.raises(
        KafkaConfigError, match="^DOSSIER_KAFKA_PARTITIONS must be a positive integer, got '0'$"
    ):
        configured_partitions(settings)
    with pytest.raises(ValueError, match="^DOSSIER_SQLITE_MMAP='a lot': not a number of bytes$"):
        mmap_bytes(settings.sqlite_mmap)


def test_the_signing_key_variable_names_the_key_file(
    clean: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean.setenv("DOSSIER_SIGNING_KEY", str(tmp_path / "k" / "s.key"))
    assert key_path(Settings.from_env(tmp_path / "data")) == tmp_path / "k" / "s.key"


def _reads_the_environment(tree: ast.AST) -> bool:
    """``os.environ``, ``os.getenv`` (or their bytes forms), or either imported from os."""
    names = {"environ", "environb", "getenv", "getenvb"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in names:
            if isinstance(node.value, ast.Name) and node.value.id == "os":
                return True
        if isinstance(node, ast.ImportFrom) and node.module == "os":
            if any(alias.name in names for alias in node.names):
                return True
    return False


def _names_a_dossier_variable(tree: ast.AST) -> bool:
    return any(
        isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and node.value.startswith("DOSSIER_")
        for node in ast.walk(tree)
    )


def _reads_a_dossier_variable(path: Path) -> bool:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return _reads_the_environment(tree) and _names_a_dossier_variable(tree)


def test_only_settings_reads_dossier_variables() -> None:
    """Every other module is handed the values (a ``Settings``, or one of its fields)."""
    sources = [p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))]
    assert SETTINGS in sources and len(sources) > 100
    readers = {
        p.relative_to(ROOT).as_posix()
        for p in sources
        if p != SETTINGS and HARNESS not in p.parents and _reads_a_dossier_variable(p)
    }
    assert readers == set()


def test_the_check_sees_a_reader() -> None:
    assert _reads_a_dossier_variable(SETTINGS)
    for source in (
        'import os\nx = os.environ.get("DOSSIER_X")\n',
        'import os\nx = os.getenv("DOSSIER_X", "1")\n',
        'from os import environ\nx = environ["DOSSIER_X"]\n',
    ):
        tree = ast.parse(source)
        assert _reads_the_environment(tree) and _names_a_dossier_variable(tree), source
    assert not _reads_the_environment(ast.parse('NAME = "DOSSIER_X"\n'))
