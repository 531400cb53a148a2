"""The `bua` Typer application object, its sub-command groups, the global options and the one-line
errors of every command (docs/ERRORS.md).

Command modules (flows/cli_*.py) add their commands to these objects; flows/cli.py imports them
all. Heavy imports (prefect, polars pipelines) happen inside the commands so `bua --help` is fast.

Errors: whatever a command raises reaches :class:`BuaGroup`, which prints ONE line
``error: <what and where>: <what is wrong>; <what to do>`` on stderr and exits 1 (an environment or
input fault) or 2 (a bad argument or option: click's usage errors, :func:`fail`'s default). The
global ``--debug`` (or ``BUA_DEBUG=1``) shows the traceback instead. :func:`explain` is the one
place that turns a known exception into its line (secrets redacted); an unknown one says it is
unexpected and how to see the traceback. Commands validate their arguments before anything slow
starts (no Prefect server, no database connection for a bad date).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import sys
from collections.abc import Iterator
from typing import Any

import typer
from typer.core import TyperGroup

try:  # Typer 0.2x vendors click as typer._click: its exceptions are not click's
    from typer._click import exceptions as cx
    from typer._click.core import Context
except ImportError:  # pragma: no cover - an older Typer on click itself
    import click.exceptions as cx  # type: ignore[no-redef]
    from click import Context  # type: ignore[assignment]

from tasks.redact import redact
from tasks.settings import Settings, load_settings

EXIT_FAULT = 1  # the environment or the input (database, files, meter store, S3, settings)
EXIT_USAGE = 2  # the command line (click's own usage errors use 2 as well)
# exits a command asks for itself (typer.Exit after its own message, Ctrl-C's Abort): not errors here
PASS_THROUGH = tuple(
    {typer.Exit, typer.Abort, *(getattr(cx, n) for n in ("Exit", "Abort") if hasattr(cx, n))}
)


def explain(exc: BaseException, database_url: str | None = None) -> tuple[str, int]:
    """The one-line message (without ``error:``) and exit code for an exception a command raised."""
    from tasks.adapters.db import redact_url
    from tasks.redact import redact

    def clean(text: str) -> str:
        line = (text.strip().splitlines() or [type(exc).__name__])[0]
        if database_url:
            line = line.replace(database_url, redact_url(database_url))
        return redact(line)  # any other credential form (tasks.redact)

    where = redact_url(database_url) if database_url else "the database"
    text = clean(str(exc))
    name = type(exc).__name__
    chain = [exc]
    while chain[-1].__cause__ is not None and len(chain) < 5:
        chain.append(chain[-1].__cause__)
    names = {type(e).__name__ for e in chain}
    message = (
        _database_message(text, name, names, where, database_url)
        or _local_message(exc, text, name)
        or _service_message(text, names)
    )
    if message is not None:
        return message, EXIT_FAULT
    if name in ("PreCheckFailed", "BillingIngestError", "SourceError"):
        return text, EXIT_FAULT
    return f"unexpected {name}: {text} (run `bua --debug …` for the traceback)", EXIT_FAULT


def _database_message(
    text: str, name: str, names: set[str], where: str, database_url: str | None
) -> str | None:
    """The line for a missing table, an unusable database URL or an unreachable database."""
    low = text.lower()
    init_hint = "run `bua db init` (with the same BUA_DATABASE_URL / --database-url) to create the schema"
    if "lacks table" in low:  # tasks.adapters.db.require_tables: names the database and the tables
        return f"{text.split(';')[0]}: {init_hint}"
    missing = re.search(
        r"no such table:?\s*([\w.]+)|table\s+'([\w.]+)'\s+doesn't exist|relation\s+\"([\w.]+)\"\s+does not exist",
        text,
        flags=re.I,
    )
    if missing:
        table = next(g for g in missing.groups() if g).rsplit(".", 1)[-1]  # MariaDB says db.table
        return f"{where} has no table {table}: {init_hint}"
    if (
        "NoSuchModuleError" in text
        or "NoSuchModuleError" in names
        or "ArgumentError" in names
        or "Could not parse" in text
    ):
        return (
            f"database URL {where} is not usable ({text.split(': ')[-1]}); give a SQLAlchemy URL such as "
            "sqlite:///.bua/bua.db, mysql+pymysql://user@host:3306/db or postgresql+psycopg://user@host/db "
            "in BUA_DATABASE_URL or --database-url"
        )
    if name == "DatabaseError" or names & {"OperationalError", "InterfaceError"}:
        if low.startswith("cannot connect") and (database_url or "").startswith("sqlite"):
            return f"{text}; check BUA_DATABASE_URL / --database-url (a SQLite file in a folder bua can create and write)"
        if low.startswith("cannot connect"):
            return f"{text}; check BUA_DATABASE_URL / --database-url and that the database server is running"
        return f"database {where}: {text}"
    return None


def _local_message(exc: BaseException, text: str, name: str) -> str | None:
    """The line for a meter store fault, a bad BUA_* setting or a file the system refused."""
    if name == "MeterStoreError":
        return f"meter store: {text}; check BUA_METER_STORE / --meter-store"
    if name == "ValidationError" and hasattr(exc, "errors"):  # pydantic: a BUA_* setting
        try:
            first = exc.errors()[0]  # type: ignore[attr-defined]
            key = ".".join(str(p) for p in first.get("loc", ()))
            secret = re.search(r"url|secret|key|password|token|webhook", key)  # never echo a secret
            got = "" if secret else f" (got {first.get('input')!r})"
            return (
                f"setting {key}: {first.get('msg')}{got}; fix BUA_{key.upper()} or --{key.replace('_', '-')}"
            )
        except Exception:  # noqa: BLE001 - fall through to the generic line
            pass
    if isinstance(exc, OSError) and exc.filename:
        what = exc.strerror or text
        return f"{what}: {exc.filename}"
    return None


def _service_message(text: str, names: set[str]) -> str | None:
    """The line for S3 (credentials, reachability, a refused request) or the Prefect API."""
    if names & {"NoCredentialsError", "PartialCredentialsError"}:
        return f"S3: no AWS credentials ({text}); set BUA_AWS_ACCESS_KEY_ID/BUA_AWS_SECRET_ACCESS_KEY or an AWS profile"
    if names & {"EndpointConnectionError", "ConnectTimeoutError"}:
        return f"S3 unreachable: {text}; check BUA_S3_ENDPOINT_URL and the network"
    if names & {"ClientError", "NoSuchBucket"}:
        return f"S3: {text}"
    if "ephemeral Prefect API server" in text or "PREFECT_API_URL" in text:
        return (
            f"Prefect: {text.rstrip('.')}; start a server (`prefect server start`) and set PREFECT_API_URL, or retry "
            "when the machine is less busy"
        )
    return None


class _DropPrefectErrors:
    """Console filter: Prefect's own ERROR records (a failed run's traceback) stay off the console,
    where the command prints one ``error:`` line; the Prefect API and UI still get them."""

    def filter(self, record: Any) -> bool:
        return not (record.name.startswith("prefect") and (record.levelno >= 40 or record.exc_info))


@contextlib.contextmanager
def quiet_prefect_errors(ctx: Context | None = None) -> Iterator[None]:
    """While a command runs a flow: Prefect's tracebacks off every console handler (root's, where
    Prefect 3.9 puts its console handler, and Prefect's loggers'); ``--debug`` keeps them."""
    import logging

    if ctx is not None and _is_debug(ctx):
        yield
        return
    names = ["", "prefect", *(n for n in logging.root.manager.loggerDict if n.startswith("prefect."))]
    handlers = {
        h
        for n in names
        for h in getattr(logging.getLogger(n), "handlers", [])
        if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)
    }
    drop = _DropPrefectErrors()
    for h in handlers:
        h.addFilter(drop)
    try:
        yield
    finally:
        for h in handlers:
            h.removeFilter(drop)


def _is_debug(ctx: Context) -> bool:
    root = ctx.find_root()
    return bool(root.params.get("debug")) or os.environ.get("BUA_DEBUG", "") not in ("", "0", "false")


def _say(message: str, code: int) -> None:
    typer.secho(f"error: {redact(message)}", fg=typer.colors.RED, err=True)
    sys.exit(code)


class BuaGroup(TyperGroup):
    """The root command: every error of every sub-command ends here as one ``error:`` line."""

    def make_context(
        self, info_name: str | None, args: list[str], parent: Context | None = None, **extra: Any
    ) -> Context:
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except cx.UsageError as exc:  # a bad global option: one line too (help stays help)
            if type(exc).__name__ == "NoArgsIsHelpError" or "--debug" in args:
                raise
            _say(_usage_line(exc), exc.exit_code)
            raise  # unreachable

    def invoke(self, ctx: Context) -> Any:
        try:
            return super().invoke(ctx)
        except PASS_THROUGH:
            raise
        except cx.UsageError as exc:
            if type(exc).__name__ == "NoArgsIsHelpError" or _is_debug(ctx):
                raise
            _say(_usage_line(exc), exc.exit_code)
        except cx.ClickException as exc:
            if _is_debug(ctx):
                raise
            _say(exc.format_message(), exc.exit_code)
        except Exception as exc:
            if _is_debug(ctx):
                raise
            settings = ctx.obj if isinstance(ctx.obj, Settings) else None
            message, code = explain(exc, settings.db_url if settings else None)
            _say(message, code)


def _usage_line(exc: cx.UsageError) -> str:
    where = exc.ctx.command_path if exc.ctx is not None else "bua"
    return f"{exc.format_message().strip().splitlines()[0]} (see `{where} --help`)"


app = typer.Typer(
    cls=BuaGroup,
    name="bua",
    help="Bottom-up accrual of unbilled energy: month-end accrual, meter data ingest, companion flows.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals may hold secrets
)
db_app = typer.Typer(help="The billing database.", no_args_is_help=True)
ingest_app = typer.Typer(help="Load meter data and billing records.", no_args_is_help=True)
meter_app = typer.Typer(help="What the meter store holds.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(ingest_app, name="ingest")
app.add_typer(meter_app, name="meter")


@app.callback()
def main(
    ctx: typer.Context,
    database_url: str | None = typer.Option(
        None, envvar=None, help="SQLAlchemy URL (default BUA_DATABASE_URL)"
    ),
    meter_store: str | None = typer.Option(None, help="meter store path or s3:// (default BUA_METER_STORE)"),
    output_url: str | None = typer.Option(None, help="output path or s3:// (default BUA_OUTPUT_URL)"),
    shards: int | None = typer.Option(None, help="number of shards (default BUA_SHARDS)"),
    debug: bool = typer.Option(
        False, "--debug", envvar="BUA_DEBUG", help="on an error, show the traceback instead of one line"
    ),
) -> None:
    """Global options override the BUA_* environment, which overrides the embedded defaults."""
    # Prefect's local server must not phone home from a finance system (set before prefect loads).
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    ctx.obj = load_settings(
        database_url=database_url, meter_store=meter_store, output_url=output_url, shards=shards
    )


def settings_from(ctx: typer.Context, **overrides: object) -> Settings:
    """The settings of this invocation, with command-specific overrides applied."""
    base: Settings = ctx.find_root().obj or load_settings()
    extra = {k: v for k, v in overrides.items() if v is not None}
    return base.model_copy(update=extra) if extra else base


def fail(message: str, code: int = 2) -> None:
    """Print a clear error (no traceback, credentials redacted) and exit non-zero."""
    typer.secho(f"error: {redact(message)}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def parse_date_option(value: str | None, option: str) -> dt.date | None:
    """A YYYY-MM-DD option value as a date (None stays None); a clear error otherwise."""
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        fail(f"{option} {value!r} is not a date (YYYY-MM-DD)")
        raise  # unreachable: fail exits


def parse_time_option(value: str | None, option: str) -> dt.datetime | None:
    """An ISO date-time option value (``2026-11-01T06:00``, ``…+10:00``, ``…Z``) as a datetime."""
    if value is None:
        return None
    try:
        return dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        fail(f"{option} {value!r} is not a date-time (YYYY-MM-DDTHH:MM, optionally with +10:00 or Z)")
        raise  # unreachable: fail exits


def require_database(settings: Settings, tables: tuple[str, ...] | list[str]) -> None:
    """Before anything slow starts: the database answers and has ``tables`` (else one line naming
    the database, the missing tables and `bua db init`)."""
    from tasks.adapters.db import require_tables

    require_tables(settings.db_url, tables)
