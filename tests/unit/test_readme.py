"""The README is the contract for newcomers: every command is documented, and the
test command in its Quickstart is the one CI runs."""

from __future__ import annotations

import re
from pathlib import Path

import click

from cli.main import main

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def command_paths(group: click.Group, prefix: str = "dossier") -> list[str]:
    out = []
    for name, cmd in sorted(group.commands.items()):
        path = f"{prefix} {name}"
        out.append(path)
        if isinstance(cmd, click.Group):
            out.extend(command_paths(cmd, path))
    return out


def test_every_command_is_in_the_readme() -> None:
    missing = [p for p in command_paths(main) if f"`{p}" not in README and f"{p} " not in README]
    assert not missing, f"README does not document: {missing}"


def test_ci_runs_the_readme_test_command() -> None:
    blocks = re.findall(r"```sh\n(.*?)\n```", README, flags=re.S)
    test_cmd = next(b for b in blocks if "pytest" in b)
    assert test_cmd.strip() in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_quickstart_runs_the_main_job_on_the_embedded_default() -> None:
    blocks = re.findall(r"```sh\n(.*?)\n```", README, flags=re.S)
    main_job = blocks[0]
    for step in ("pip install", "dossier demo"):
        assert step in main_job
