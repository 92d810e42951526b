"""What every command shares: global options before the subcommand, and the one mapping
from the rooms' named failures to what the command line says."""

from __future__ import annotations

import json
from pathlib import Path

import click
from click.testing import CliRunner

from cli import ledger as ledger_commands
from cli.main import ROOMS, main
from cli.options import click_error
from ledger.aggregate import DossierNotFound
from ledger.kafka import KafkaConfigError, TopicError
from simulator.factories import event_stream, write_jsonl


def _stored(data: Path, n: int = 6) -> None:
    events = data.parent / f"{data.name}.jsonl"
    write_jsonl(events, event_stream(n, seed=2))
    result = CliRunner().invoke(main, ["ingest", str(events), "--data-dir", str(data)])
    assert result.exit_code == 0, result.output


def test_data_dir_before_the_subcommand_applies_to_it(tmp_path: Path) -> None:
    _stored(tmp_path / "a")
    result = CliRunner().invoke(
        main, ["--data-dir", str(tmp_path / "a"), "status", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["events"] > 0


def test_the_subcommands_own_data_dir_wins(tmp_path: Path) -> None:
    _stored(tmp_path / "a")
    result = CliRunner().invoke(
        main,
        [
            "--data-dir",
            str(tmp_path / "elsewhere"),
            "status",
            "--data-dir",
            str(tmp_path / "a"),
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["events"] > 0


def test_a_command_module_runs_without_the_group(tmp_path: Path) -> None:
    """A room's commands can be tested alone: the module does not need cli.main."""
    _stored(tmp_path / "a")
    (status,) = [c for c in ledger_commands.COMMANDS if c.name == "status"]
    result = CliRunner().invoke(status, ["--data-dir", str(tmp_path / "a"), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["events"] > 0


def test_every_room_module_lists_its_commands_once() -> None:
    names = [c.name for room in ROOMS for c in room.COMMANDS]
    assert len(names) == len(set(names))
    assert set(names) == set(main.commands)


def test_named_failures_become_one_line_errors() -> None:
    said = click_error(DossierNotFound("D-1"))
    assert isinstance(said, click.ClickException) and not isinstance(said, click.UsageError)
    assert said.format_message() == "unknown dossier 'D-1'"
    assert isinstance(click_error(TopicError("dossier.events missing")), click.ClickException)
    assert isinstance(click_error(KafkaConfigError("no Kafka bootstrap servers")), click.UsageError)


def test_other_failures_keep_their_traceback() -> None:
    assert click_error(ZeroDivisionError("a bug")) is None


def test_an_unknown_dossier_is_one_line_and_exit_1(tmp_path: Path) -> None:
    _stored(tmp_path / "a")
    result = CliRunner().invoke(main, ["history", "NOPE", "--data-dir", str(tmp_path / "a")])
    assert result.exit_code == 1
    assert result.output.strip() == "Error: unknown dossier 'NOPE'"


def _commands(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for name, command in sorted(group.commands.items()):
        out.append((*path, name))
        if isinstance(command, click.Group):
            out += _commands(command, (*path, name))
    return out


def test_every_command_says_how_it_is_used() -> None:
    """``--help`` of every command and subcommand works (its options are declared right)."""
    runner = CliRunner()
    for path in _commands(main):
        result = runner.invoke(main, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage: " in result.output
