"""The ``dossier`` command: the group that gathers every room's commands.

Each module of :mod:`cli` fronts one room and lists its commands in ``COMMANDS``;
nothing imports this module (``pyproject.toml`` names :func:`main`). Options given
before the subcommand apply to it (``dossier --data-dir X status``); every command
also takes them after its name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from cli import analytics, audit, interchange, ledger, projections, relay, simulator, streams
from cli import system as system_commands
from cli import web as web_commands
from cli.options import click_error

ROOMS = (
    simulator,
    ledger,
    audit,
    relay,
    projections,
    analytics,
    streams,
    interchange,
    web_commands,
    system_commands,
)


class DossierGroup(click.Group):
    """A group that says a room's named failure in one line (see :func:`cli.options.click_error`)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as e:
            said = click_error(e)
            if said is None:
                raise
            raise said from None


@click.group(cls=DossierGroup)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Data directory for the subcommand (default: $DOSSIER_DATA_DIR or ./dossier-data).",
)
@click.version_option(package_name="dossier-ledger")
def main(data_dir: Path | None) -> None:
    """Administrative dossiers as immutable, verifiable events."""


for room in ROOMS:
    for command in room.COMMANDS:
        main.add_command(command)


if __name__ == "__main__":  # pragma: no cover
    main()
