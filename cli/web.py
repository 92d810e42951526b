"""``dossier serve``: the read-only web pages and JSON API."""

from __future__ import annotations

import click

from cli.options import data_dir_option
from ledger.settings import Settings


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@data_dir_option
def serve(host: str, port: int, settings: Settings) -> None:
    """Read-only web pages and JSON API: dossiers, dashboards, live alerts.

    Pages: / (dashboard), /agencies/AGENCY, /dossiers/CODE, /alerts (live);
    JSON under /api/ (documented at /api/openapi.json). Nothing here writes.

    Example: dossier serve --port 8080
    """
    import uvicorn

    from web.app import create_app

    app = create_app(settings)
    app.state.site.warm()
    click.echo(f"serving {settings.data_dir} on http://{host}:{port}/ (Ctrl-C to stop)", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=2)


COMMANDS: list[click.Command] = [serve]
