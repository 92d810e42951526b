"""What every command shares: the common options, output helpers, and the one mapping
from the rooms' named failures to what the command line says.

Commands import this module and never :mod:`cli.main` (the group imports them), so
each command module imports on its own. The rooms' modules are imported inside the
functions that need them, so that ``dossier --help`` stays fast.
"""

from __future__ import annotations

import functools
import json
import signal
import threading
from collections.abc import Callable
from datetime import datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import click

if TYPE_CHECKING:
    from ledger.application import DossierLedger
    from ledger.settings import Settings

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]

DEFAULT_TZ = "Asia/Ho_Chi_Minh"
"""Local time of an instant given without an offset on the command line."""


def settings_for(data_dir: Path | None) -> Settings:
    """The command's settings: its own ``--data-dir``, else the one given before the
    subcommand (``dossier --data-dir X status``), else the environment's."""
    from ledger.settings import Settings

    if data_dir is None:
        ctx = click.get_current_context(silent=True)
        data_dir = ctx.find_root().params.get("data_dir") if ctx is not None else None
    return Settings.from_env(data_dir)


def data_dir_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--data-dir``, resolved into ``settings`` for the command."""

    @click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Data directory (default: $DOSSIER_DATA_DIR or ./dossier-data).",
    )
    @functools.wraps(fn)
    def wrapper(*args: Any, data_dir: Path | None, **kwargs: Any) -> Any:
        return fn(*args, settings=settings_for(data_dir), **kwargs)

    return wrapper


def format_option(*choices: str, default: str | None = None) -> Decorator:
    """``--format`` limited to ``choices`` (the first is the default), passed as ``fmt``."""
    allowed = choices or ("table", "csv", "json", "html")
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(list(allowed)),
        default=default or allowed[0],
        show_default=True,
        help="Output format.",
    )


bootstrap_option: Decorator = click.option(
    "--bootstrap",
    default=None,
    metavar="HOST:PORT[,HOST:PORT]",
    help="Kafka bootstrap servers (default: $DOSSIER_KAFKA_BOOTSTRAP).",
)
"""``--bootstrap``: pass it through :func:`kafka_bootstrap`."""


def db_option(help: str) -> Decorator:
    """``--db``: another analysts' DuckDB file than ``DATA_DIR/analytics.duckdb``."""
    return click.option(
        "--db",
        "db_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help=help,
    )


def dry_run_option(help: str) -> Decorator:
    """``--dry-run``: judge everything, write nothing."""
    return click.option("--dry-run", is_flag=True, help=help)


def rejects_option(help: str) -> Decorator:
    """``--rejects FILE``: where what was not stored goes, each with its reason."""
    return click.option(
        "--rejects", type=click.Path(dir_okay=False, path_type=Path), default=None, help=help
    )


def parse_instant(value: str, tz: str = DEFAULT_TZ, *, param: str = "--as-of") -> datetime:
    """An instant from the command line: ISO 8601 with an offset; a local date-time
    (the agency's time zone); or a date, meaning the end of that local day."""
    text = value.strip()
    try:
        if len(text) == 10:
            day = datetime.fromisoformat(text).date()
            return datetime.combine(day, time.max, ZoneInfo(tz))
        instant = datetime.fromisoformat(text.replace(" ", "T", 1))
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an instant (e.g. 2025-09-03T10:00:00+07:00, "
            "'2025-09-03 10:00' local time, or 2025-09-03 for the end of that day)",
            param_hint=param,
        ) from None
    return instant if instant.tzinfo else instant.replace(tzinfo=ZoneInfo(tz))


def instant_option(
    name: str, help: str, *, required: bool = False, dest: str | None = None
) -> Decorator:
    """An option taking an instant (see :func:`parse_instant`), passed as a datetime."""

    def convert(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
        return None if value is None else parse_instant(value, param=name)

    decls = [name] if dest is None else [name, dest]
    return click.option(*decls, callback=convert, default=None, required=required, help=help)


def kafka_bootstrap(given: str | None, settings: Settings) -> str:
    """``--bootstrap``, else ``DOSSIER_KAFKA_BOOTSTRAP``; a usage error naming both if neither."""
    from ledger.kafka import require_bootstrap

    return require_bootstrap(given or settings.kafka_bootstrap)


def open_ledger(settings: Settings) -> DossierLedger:
    from ledger.bootstrap import open_ledger as _open

    return _open(settings)


def stop_on_signals(stop: threading.Event | None = None) -> threading.Event:
    """SIGTERM and SIGINT set ``stop``: a long-running command ends between pages, cleanly."""
    stop = stop or threading.Event()

    def handler(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop


def echo_json(obj: Any) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False, indent=None, sort_keys=True))


def reject_summary(
    report: Any, rejects: Path | None, dry_run: bool, write: Callable[[Any, Any], None]
) -> dict[str, Any]:
    """Write a report's rejections to ``rejects`` (when there are any) with ``write``, and
    return the command's JSON summary naming that file (ingest and import alike)."""
    if report.errors:
        assert rejects is not None
        rejects.parent.mkdir(parents=True, exist_ok=True)
        with rejects.open("w", encoding="utf-8") as fout:
            write(report.errors, fout)
    return report.as_dict() | {
        "dry_run": dry_run,
        "rejects_file": str(rejects) if report.errors else None,
    }


def click_error(error: BaseException) -> click.ClickException | None:
    """The one mapping from the rooms' named failures to the command line's errors.

    A failure of the user's input or of the data directory (an unknown dossier, a
    malformed mapping or subscriptions file, a missing topic...) is said in one line
    (exit 1; a missing Kafka address is a usage error, exit 2). Anything else is a bug
    and keeps its traceback. Imported only when a command fails.
    """
    from analytics.snapshot import NoAnalytics
    from interchange.cases import LogError
    from interchange.mapping import MappingError
    from ledger.aggregate import DossierNotFound
    from ledger.audit import DigestError
    from ledger.kafka import KafkaConfigError, TopicError
    from ledger.relay import RelayError
    from ledger.signing import KeyExists, NoSigningKey, SignatureError
    from streams.subscriptions import SubscriptionError
    from system.demo import DemoFailed
    from web.site import NoLedger

    if isinstance(error, KafkaConfigError):
        return click.UsageError(str(error))
    named = (
        DossierNotFound,
        TopicError,
        RelayError,
        SignatureError,
        SubscriptionError,
        MappingError,
        LogError,
        DemoFailed,
        NoLedger,
        NoAnalytics,
        KeyExists,
        NoSigningKey,
        DigestError,
    )
    if isinstance(error, named):
        return click.ClickException(str(error))
    return None
