"""The composition root: the only place that opens stores and connections."""

from __future__ import annotations

from urllib.parse import parse_qs, unquote, urlparse

from ledger.application import POSTGRES_RECORDER, SQLITE_RECORDER, DossierLedger
from ledger.domain.rules import RuleBook, load_rules
from ledger.postgres_store import PostgresKeyStore
from ledger.settings import Settings
from ledger.sqlite_store import SQLiteKeyStore


def postgres_env(url: str) -> dict[str, str]:
    """eventsourcing's POSTGRES_* settings from a ``postgresql://`` URL."""
    u = urlparse(url)
    if not u.path.strip("/"):
        raise ValueError(f"DOSSIER_STORE {url!r}: no database name")
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "APPLICATION_RECORDER_TOPIC": POSTGRES_RECORDER,
        "POSTGRES_DBNAME": unquote(u.path.strip("/")),
        "POSTGRES_HOST": u.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(u.port or 5432),
        "POSTGRES_USER": unquote(u.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(u.password or ""),
        "POSTGRES_CONNECT_TIMEOUT": "5",
        "POSTGRES_LOCK_TIMEOUT": "10",
        "POSTGRES_POOL_SIZE": "4",
    }
    schema = url_schema(url)
    if schema:
        env["POSTGRES_SCHEMA"] = schema
    return env


def url_schema(url: str) -> str | None:
    """The ``schema`` query parameter of a ``postgresql://`` URL, if any."""
    values = parse_qs(urlparse(url).query).get("schema")
    return values[0] if values else None


def conninfo(url: str) -> str:
    """A psycopg connection string (the ``schema`` query parameter removed)."""
    u = urlparse(url)
    return u._replace(query="").geturl()


def open_rules(settings: Settings) -> RuleBook:
    return load_rules(settings.rules_path, settings.overrides_path)


def open_ledger(settings: Settings, *, rules: RuleBook | None = None) -> DossierLedger:
    """Build the ledger for the configured store (SQLite file, or PostgreSQL)."""
    rules = rules or open_rules(settings)
    if settings.uses_postgres:
        env = postgres_env(settings.store or "")
        keystore_url = settings.keystore or settings.store or ""
        keys = PostgresKeyStore(conninfo(keystore_url), schema=url_schema(keystore_url))
    else:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "APPLICATION_RECORDER_TOPIC": SQLITE_RECORDER,
            "SQLITE_DBNAME": str(settings.sqlite_path),
            "SQLITE_LOCK_TIMEOUT": "30",
        }
        keys = SQLiteKeyStore(settings.data_dir / "keys.sqlite3")
    return DossierLedger(env, rules=rules, keys=keys, sqlite_mmap=settings.sqlite_mmap)
