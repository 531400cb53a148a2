"""One-line errors of every command but `bua run`/`bua demo` (flows/cli_app.py, docs/ERRORS.md), run
as users run them: the `bua` console script in a subprocess. Each case: the exact `error:` line on
stderr and nothing else there, exit code 1 (a fault of the environment or the input) or 2 (a bad
argument), no Prefect server started, no secret printed; `--debug` shows the traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import free_port

BUA = shutil.which("bua", path=str(Path(sys.executable).parent)) or "bua"
PROC = "sqlite:////proc/bua-nope/bua.db"  # a folder nobody can create
CLOSED = free_port()  # nothing listens there
MYSQL_DOWN = f"mysql+pymysql://root:s3cret@127.0.0.1:{CLOSED}/bua"
URL_FORMS = (
    "give a SQLAlchemy URL such as sqlite:///.bua/bua.db, mysql+pymysql://user@host:3306/db or "
    "postgresql+psycopg://user@host/db in BUA_DATABASE_URL or --database-url"
)


def bua(
    args: list[str], tmp_path: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("BUA_")}
    e.update(
        BUA_DATABASE_URL=f"sqlite:///{tmp_path}/bua.db",
        BUA_METER_STORE=str(tmp_path / "ms"),
        BUA_OUTPUT_URL=str(tmp_path / "out"),
        PREFECT_HOME=str(tmp_path / "prefect"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        NO_COLOR="1",
        COLUMNS="200",
    )
    e.update(env or {})
    return subprocess.run([BUA, *args], env=e, capture_output=True, text=True, timeout=300, cwd=tmp_path)


CASES = [
    # (id, args, extra env, exit code, the exact line)
    (
        "bad-url-scheme",
        ["--database-url", "nosuch://x", "db", "init"],
        {},
        1,
        f"error: database URL nosuch://x is not usable (sqlalchemy.dialects:nosuch); {URL_FORMS}",
    ),
    (
        "unreachable-mariadb",
        ["--database-url", MYSQL_DOWN, "db", "init"],
        {},
        1,
        f"error: cannot connect to database mysql+pymysql://root:***@127.0.0.1:{CLOSED}/bua: OperationalError: "
        f"(pymysql.err.OperationalError) (2003, \"Can't connect to MySQL server on '127.0.0.1' ([Errno 111] "
        'Connection refused)"); check BUA_DATABASE_URL / --database-url and that the database server is running',
    ),
    (
        "sqlite-folder-impossible",
        ["--database-url", PROC, "db", "init"],
        {},
        1,
        f"error: cannot connect to database {PROC}: FileNotFoundError: [Errno 2] No such file or directory: "
        "'/proc/bua-nope'; check BUA_DATABASE_URL / --database-url (a SQLite file in a folder bua can create "
        "and write)",
    ),
    (
        "bad-setting-in-env",
        ["db", "init"],
        {"BUA_SHARDS": "abc"},
        1,
        "error: setting shards: Input should be a valid integer, unable to parse string as an integer "
        "(got 'abc'); fix BUA_SHARDS or --shards",
    ),
    (
        "bad-global-option",
        ["--shards", "abc", "db", "init"],
        {},
        2,
        "error: Invalid value for '--shards': Input should be a valid integer, unable to parse string as an "
        "integer (see `bua --help`)",
    ),
    (
        "no-such-command",
        ["nosuchcommand"],
        {},
        2,
        "error: No such command 'nosuchcommand'. (see `bua --help`)",
    ),
    (
        "meter-show-bad-nmi",
        ["meter", "show", "123"],
        {},
        2,
        "error: NMI '123' is not a NMI or MIRN (10 letters or digits, optionally an 11th checksum digit)",
    ),
    (
        "meter-show-bad-date",
        ["meter", "show", "4102000001", "--from", "2026-13-01"],
        {},
        2,
        "error: --from '2026-13-01' is not a date (YYYY-MM-DD)",
    ),
    (
        "meter-show-dates-reversed",
        ["meter", "show", "4102000001", "--from", "2026-10-05", "--to", "2026-10-01"],
        {},
        2,
        "error: --from 2026-10-05 is after --to 2026-10-01",
    ),
    (
        "meter-show-missing-store",
        ["--meter-store", "/no/such/store", "meter", "show", "4102000001"],
        {},
        1,
        "error: meter store /no/such/store holds no interval data (no such folder or prefix): check "
        "BUA_METER_STORE / --meter-store, or load NEM12 files with `bua ingest nem12`",
    ),
    (
        "meter-show-missing-argument",
        ["meter", "show"],
        {},
        2,
        "error: Missing argument 'nmi'. (see `bua meter show --help`)",
    ),
    (
        "generate-bad-end",
        ["generate", "--end", "2026-02-30"],
        {},
        2,
        "error: --end '2026-02-30' is not a date (YYYY-MM-DD)",
    ),
    (
        "generate-zero-accounts",
        ["generate", "--accounts", "0"],
        {},
        2,
        "error: Invalid value for '--accounts': Input should be greater than or equal to 1 (see `bua generate --help`)",
    ),
    (
        "generate-no-nem12-without-store",
        ["generate", "--accounts", "50", "--no-nem12", "--out", "portfolio"],
        {},
        2,
        "error: --no-nem12 and --shards need --store (else the interval data would go nowhere)",
    ),
    (
        "generate-load-unreachable-db",
        ["--database-url", MYSQL_DOWN, "generate", "--accounts", "50", "--load", "--out", "portfolio"],
        {},
        1,
        f"error: cannot connect to database mysql+pymysql://root:***@127.0.0.1:{CLOSED}/bua: OperationalError: "
        f"(pymysql.err.OperationalError) (2003, \"Can't connect to MySQL server on '127.0.0.1' ([Errno 111] "
        'Connection refused)"); check BUA_DATABASE_URL / --database-url and that the database server is running',
    ),
    (
        "aggregate-bad-day",
        ["aggregate", "--day", "2026-13-01"],
        {},
        2,
        "error: --day '2026-13-01' is not a date (YYYY-MM-DD)",
    ),
    (
        "aggregate-bad-max-rows",
        ["aggregate", "--day", "2026-10-01", "--max-rows-per-file", "0"],
        {},
        2,
        "error: --max-rows-per-file must be at least 1, got 0",
    ),
    (
        "alert-bad-window-end",
        ["alert", "--window-end", "garbage"],
        {},
        2,
        "error: --window-end 'garbage' is not a date-time (YYYY-MM-DDTHH:MM, optionally with +10:00 or Z)",
    ),
]


@pytest.mark.parametrize(("args", "env", "code", "line"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_one_line_error(tmp_path, args, env, code, line):
    r = bua(args, tmp_path, env)
    assert (r.returncode, r.stderr.strip()) == (code, line)
    assert r.stdout == ""
    assert "s3cret" not in r.stderr + r.stdout
    assert "Starting temporary server" not in r.stderr  # nothing of Prefect started
    assert not (tmp_path / "portfolio").exists()  # generate --load checks the database first


def test_generate_out_is_a_file(tmp_path):
    (tmp_path / "afile").write_text("x")
    r = bua(["generate", "--out", "afile"], tmp_path)
    assert (r.returncode, r.stderr.strip()) == (
        2,
        "error: --out afile is a file, not a folder: give a folder (it is created if missing)",
    )


@pytest.mark.parametrize(
    "command", [["aggregate", "--day", "2026-10-01"], ["alert"]], ids=["aggregate", "alert"]
)
def test_database_without_schema_says_run_db_init(db_url, tmp_path, command):
    """On SQLite, MariaDB and PostgreSQL: a database where `bua db init` never ran."""
    from flows.cli_companion import AGGREGATE_TABLES, ALERT_TABLES
    from tasks.adapters.db import redact_url

    tables = AGGREGATE_TABLES if command[0] == "aggregate" else ALERT_TABLES
    r = bua(["--database-url", db_url, *command], tmp_path)
    assert (r.returncode, r.stderr.strip()) == (
        1,
        f"error: database {redact_url(db_url)} lacks table(s) {', '.join(tables)}: run `bua db init` "
        "(with the same BUA_DATABASE_URL / --database-url) to create the schema",
    )
    assert "Starting temporary server" not in r.stderr


def test_explain_names_the_missing_table_on_each_database(db_url):
    """The line for a query on a table that is not there (as a command deep inside would meet it),
    from the real driver's error of each database."""
    import sqlalchemy as sa

    from flows.cli_app import explain
    from tasks.adapters.db import engine_for, redact_url

    with pytest.raises(Exception) as info, engine_for(db_url).connect() as conn:
        conn.execute(sa.text("SELECT * FROM bua_run"))
    message, code = explain(info.value, db_url)
    assert (message, code) == (
        f"{redact_url(db_url)} has no table bua_run: run `bua db init` (with the same BUA_DATABASE_URL / "
        "--database-url) to create the schema",
        1,
    )


def test_debug_shows_the_traceback(tmp_path):
    r = bua(["--debug", "--database-url", "nosuch://x", "db", "init"], tmp_path)
    assert r.returncode == 1 and "Traceback" in r.stderr and len(r.stderr.splitlines()) > 5
    r = bua(["--database-url", "nosuch://x", "db", "init"], tmp_path, {"BUA_DEBUG": "1"})
    assert r.returncode == 1 and "Traceback" in r.stderr


def test_help_is_still_help(tmp_path):
    r = bua([], tmp_path)
    assert r.returncode == 2 and "Usage: bua" in r.stdout + r.stderr and "error:" not in r.stderr
    r = bua(["db", "init", "--help"], tmp_path)
    assert r.returncode == 0 and "Create or migrate the schema" in r.stdout


def test_a_flow_failing_inside_prefect_prints_one_line_and_no_traceback(harness, tmp_path):
    """`bua aggregate` on an initialised but empty database: the aggregation flow's own pre-check
    (rows for the day) fails inside Prefect. Prefect logs the traceback to its API (the UI shows it);
    the console gets the one `error:` line only — and with --debug, Prefect's traceback too."""
    url = f"sqlite:///{tmp_path}/bua.db"
    assert bua(["--database-url", url, "db", "init"], tmp_path).returncode == 0
    env = {"PREFECT_API_URL": harness}
    r = bua(["--database-url", url, "aggregate", "--day", "2026-10-01"], tmp_path, env)
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert r.returncode == 1 and len(errors) == 1, r.stderr
    assert "pre-check" in errors[0] and "Traceback" not in r.stderr, r.stderr
    r = bua(["--debug", "--database-url", url, "aggregate", "--day", "2026-10-01"], tmp_path, env)
    assert r.returncode == 1 and "Traceback" in r.stderr
