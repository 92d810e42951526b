"""Settings, read once from flags and ``DOSSIER_*`` environment variables.

This is the one place that reads them: everything else is handed a :class:`Settings`
(or one of its values) by its caller. Nothing is read at import.

| variable | field | meaning | default |
|---|---|---|---|
| ``DOSSIER_DATA_DIR`` | ``data_dir`` (``default_data_dir``: without ``--data-dir``) | directory of the embedded stores | ``./dossier-data`` |
| ``DOSSIER_STORE`` | ``store`` | ``postgresql://user@host:port/db`` for the deployment store | SQLite file in the data dir |
| ``DOSSIER_KEYSTORE`` | ``keystore`` | where applicant keys live (``postgresql://...``) | ``keys.sqlite3`` in the data dir, or the store's database |
| ``DOSSIER_RULES`` | ``rules_path`` | a rules file replacing the packaged one, or adding to it (``extends: packaged``; see docs/rules.md) | packaged ``ledger/domain/rulesets/rulesets.yaml`` |
| ``DOSSIER_CALENDAR_OVERRIDES`` | ``overrides_path`` | a province's holiday / make-up-day overrides | packaged ``calendar-overrides.yaml`` |
| ``DOSSIER_KAFKA_BOOTSTRAP`` | ``kafka_bootstrap`` | Kafka bootstrap servers ``host:port[,host:port]`` | none |
| ``DOSSIER_KAFKA_PARTITIONS`` | ``kafka_partitions`` | partitions of the keyed topics: a positive integer, checked where used (``ledger.kafka.configured_partitions``) | 12 |
| ``DOSSIER_KAFKA_CLIENT`` | ``kafka_client`` | Kafka client library of the producers (the relay, the sink's dead letters): ``confluent`` or ``kafka-python`` | ``confluent`` |
| ``DOSSIER_SIGNING_KEY`` | ``signing_key`` | the digest signing key file (``ledger.signing.key_path``) | ``signing.key`` in the data dir |
| ``DOSSIER_SQLITE_MMAP`` | ``sqlite_mmap`` | bytes of the SQLite ledger a reader of its own maps: a number, checked where used (``ledger.log_reader.mmap_bytes``) | 1 GiB |
| ``DOSSIER_DUCKDB_MEMORY`` | ``duckdb_memory`` | DuckDB's memory limit for the writer of the analysts' file (``dossier sink``, ``dossier process``); a value DuckDB refuses names the variable (``analytics.connection``) | ``256MB`` |
| ``DOSSIER_DUCKDB_CHECKPOINT`` | ``duckdb_checkpoint`` | that writer's write-ahead log size between checkpoints (as above) | ``256MB`` |
| ``DOSSIER_PROGRESS`` | ``progress`` | progress of long commands: ``bar``, ``plain`` or ``off``; anything else is ignored (``cli.progress``) | a bar on a terminal, else plain lines |

An empty variable counts as unset, except ``DOSSIER_SQLITE_MMAP``, ``DOSSIER_DUCKDB_MEMORY``
and ``DOSSIER_DUCKDB_CHECKPOINT``, whose empty value is refused where used, naming the
variable. The values checked where used are kept as given, so that a bad one stops only
the commands that use it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

DEFAULT_DATA_DIR = Path("dossier-data")


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    store: str | None = None
    keystore: str | None = None
    rules_path: str | None = None
    overrides_path: str | None = None
    kafka_bootstrap: str | None = None
    kafka_partitions: str | None = None
    kafka_client: str | None = None
    signing_key: str | None = None
    sqlite_mmap: str | None = None
    duckdb_memory: str | None = None
    duckdb_checkpoint: str | None = None
    progress: str | None = None
    default_data_dir: Path = DEFAULT_DATA_DIR
    """The data directory a command has without ``--data-dir``."""

    @classmethod
    def from_env(
        cls, data_dir: str | os.PathLike[str] | None = None, **overrides: object
    ) -> Settings:
        env = os.environ
        default_data_dir = Path(env.get("DOSSIER_DATA_DIR") or DEFAULT_DATA_DIR)
        settings = cls(
            data_dir=Path(data_dir) if data_dir else default_data_dir,
            store=env.get("DOSSIER_STORE") or None,
            keystore=env.get("DOSSIER_KEYSTORE") or None,
            rules_path=env.get("DOSSIER_RULES") or None,
            overrides_path=env.get("DOSSIER_CALENDAR_OVERRIDES") or None,
            kafka_bootstrap=env.get("DOSSIER_KAFKA_BOOTSTRAP") or None,
            kafka_partitions=env.get("DOSSIER_KAFKA_PARTITIONS") or None,
            kafka_client=env.get("DOSSIER_KAFKA_CLIENT") or None,
            signing_key=env.get("DOSSIER_SIGNING_KEY") or None,
            sqlite_mmap=env.get("DOSSIER_SQLITE_MMAP"),
            duckdb_memory=env.get("DOSSIER_DUCKDB_MEMORY"),
            duckdb_checkpoint=env.get("DOSSIER_DUCKDB_CHECKPOINT"),
            progress=env.get("DOSSIER_PROGRESS") or None,
            default_data_dir=default_data_dir,
        )
        given = {k: v for k, v in overrides.items() if v is not None}
        return replace(settings, **given) if given else settings

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "ledger.sqlite3"

    @property
    def uses_postgres(self) -> bool:
        return bool(self.store and self.store.startswith(("postgres://", "postgresql://")))
