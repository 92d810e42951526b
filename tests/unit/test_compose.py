"""docker-compose.yml, checked without Docker: KRaft Kafka, real commands, known variables."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
import yaml

from cli.main import main

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
SERVICES: dict = COMPOSE["services"]
SOURCES = [p for p in (ROOT / "ledger").rglob("settings.py")]
"""Where every ``DOSSIER_*`` variable is read (``ledger.settings.Settings``, and nowhere else)."""


def resolve(args: list[str]) -> list[str]:
    """Parse ``dossier ...`` with click as the real command would (without invoking it);
    return the command path. Unknown commands or options raise click.UsageError."""
    assert args[0] == "dossier", args
    cmd: click.Command = main
    ctx: click.Context | None = None
    rest = args[1:]
    path = ["dossier"]
    while True:
        ctx = cmd.make_context(path[-1], list(rest), parent=ctx)
        if not isinstance(cmd, click.Group):
            return path
        remaining = [*getattr(ctx, "_protected_args", []), *ctx.args]
        name, sub, rest = cmd.resolve_command(ctx, remaining)
        assert sub is not None, f"no subcommand in {args}"
        cmd = sub
        path.append(name or sub.name)


def _command(service: dict) -> list[str]:
    command = service.get("command") or []
    return command if isinstance(command, list) else command.split()


def test_kafka_is_the_official_image_in_kraft_mode():
    kafka = SERVICES["kafka"]
    env = kafka["environment"]
    assert kafka["image"].startswith("apache/kafka:")
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:9093"
    assert "CONTROLLER://:9093" in env["KAFKA_LISTENERS"]
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] == "CONTROLLER"
    assert not any("zookeeper" in name for name in SERVICES)
    assert not any("ZOOKEEPER" in key for key in env)


def test_services_reach_kafka_at_its_advertised_listener():
    advertised = SERVICES["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    listeners = {u.split("://")[1] for u in advertised.split(",")}
    for name, service in SERVICES.items():
        bootstrap = (service.get("environment") or {}).get("DOSSIER_KAFKA_BOOTSTRAP")
        if bootstrap:
            assert set(bootstrap.split(",")) <= listeners, name


def test_the_deployment_has_every_part():
    commands = {name: _command(s) for name, s in SERVICES.items() if "command" in s}
    assert commands["kafka-init"][:3] == ["dossier", "kafka", "init"]
    assert commands["relay"][:2] == ["dossier", "relay"]
    assert "--once" not in commands["relay"]
    assert commands["worker"] == ["dossier", "project", "--source", "kafka"]
    assert commands["sink"][:2] == ["dossier", "sink"]
    assert SERVICES["postgres"]["image"].startswith("postgres:")
    assert SERVICES["worker"]["deploy"]["replicas"] >= 2
    assert "container_name" not in SERVICES["worker"]  # --scale needs unnamed containers
    assert "ports" not in SERVICES["worker"]
    assert SERVICES["kafka-init"]["restart"] == "no"
    for name in ("relay", "worker", "sink"):
        deps = SERVICES[name]["depends_on"]
        assert deps["kafka-init"]["condition"] == "service_completed_successfully", name
    env = SERVICES["relay"]["environment"]
    assert env["DOSSIER_STORE"].startswith("postgresql://")
    assert {"DOSSIER_STORE", "DOSSIER_KAFKA_BOOTSTRAP", "DOSSIER_DATA_DIR"} <= env.keys()


@pytest.mark.parametrize(
    "service", sorted(n for n, s in SERVICES.items() if _command(s)[:1] == ["dossier"])
)
def test_every_command_is_a_real_dossier_subcommand(service: str):
    path = resolve(_command(SERVICES[service]))

    assert len(path) >= 2


def test_resolve_refuses_unknown_commands_and_options():
    with pytest.raises(click.UsageError):
        resolve(["dossier", "relay", "--no-such-flag"])
    with pytest.raises(click.UsageError):
        resolve(["dossier", "no-such-command"])
    with pytest.raises(click.UsageError):
        resolve(["dossier", "kafka", "init", "--partitions", "zero"])


def test_every_dossier_variable_in_the_file_is_read_by_the_code():
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    names = set(re.findall(r"\bDOSSIER_[A-Z0-9_]+", text))
    code = "\n".join(p.read_text(encoding="utf-8") for p in SOURCES)

    assert {"DOSSIER_STORE", "DOSSIER_KAFKA_BOOTSTRAP", "DOSSIER_DATA_DIR"} <= names
    unread = sorted(n for n in names if not re.search(rf"[\"']{n}[\"']", code))
    assert unread == []


def test_the_broker_never_auto_creates_topics():
    """Topics come from `dossier kafka init` only: an auto-created dossier.events would get
    the broker's default partition count, not the configured one."""
    env = SERVICES["kafka"]["environment"]
    assert str(env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"]).lower() == "false"
    assert _command(SERVICES["kafka-init"])[:3] == ["dossier", "kafka", "init"]
