"""`bua run` killed with ``kill -9`` as a real process (issue 17): at points through the month end the
killed run leaves no process behind, the next run takes its lock over within the lease, finishes
with the same bytes as an uninterrupted run, and the killed attempt is on record as FAILED. Two
operators (two processes, two Prefect homes and servers) never mix a month end."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import pytest

from tasks.settings import Settings
from tests.flows.conftest import R, output_digests, output_rows
from tests.portfolio import copy_of

LEASE = "3"  # seconds: a dead run's lock is free again after this


@pytest.fixture(scope="module")
def reference(loaded: Path, tmp_path_factory: pytest.TempPathFactory, harness: str) -> Settings:
    """An uninterrupted `bua run` (the byte reference)."""
    settings = copy_of(loaded, tmp_path_factory.mktemp("reference") / "run")
    done = bua_run(settings, harness).wait(300)
    assert done == 0
    return settings


def env_for(settings: Settings, api: str | None, mark: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BUA_", "PREFECT_API"))}
    env.update(
        BUA_DATABASE_URL=settings.db_url, BUA_METER_STORE=settings.meter_store, BUA_OUTPUT_URL=settings.output_url,
        BUA_SHARDS=str(settings.shards), BUA_RUN_LOCK_LEASE_SECONDS=LEASE, BUA_RUN_LOCK_WAIT_SECONDS="20",
        BUA_TEST_MARK=mark, PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_LOGGING_LEVEL="WARNING",
    )  # fmt: skip
    env.update(extra)
    if api:
        env["PREFECT_API_URL"] = api
    return env


def bua_run(settings: Settings, api: str | None, mark: str = "", **extra: str) -> subprocess.Popen[str]:
    exe = shutil.which("bua", path=str(Path(sys.executable).parent))
    assert exe
    env = env_for(settings, api, mark or uuid.uuid4().hex, **extra)
    return subprocess.Popen([exe, "run", "--run-date", R.isoformat()], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip


def marked(mark: str) -> list[psutil.Process]:
    """Live processes started for this test (they inherit BUA_TEST_MARK)."""
    out = []
    for p in psutil.process_iter(["pid"]):
        try:
            if p.environ().get("BUA_TEST_MARK") == mark and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return out


def manifests(settings: Settings) -> Path:
    return Path(settings.output_url) / "work" / R.isoformat()


def wait_for_manifest(
    settings: Settings, phase: str, proc: subprocess.Popen[str], timeout: float = 240
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(manifests(settings).glob(f"*/_manifests/{phase}.json")) or any(
            manifests(settings).glob(f"*/_manifests/{phase}.000.json")
        ):
            return
        if proc.poll() is not None:
            raise AssertionError(f"bua run ended before {phase}: {proc.stderr.read() if proc.stderr else ''}")
        time.sleep(0.05)
    raise AssertionError(f"no manifest of {phase} within {timeout} s")


def kill_and_check_nothing_is_left(proc: subprocess.Popen[str], mark: str) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    deadline = time.monotonic() + 15
    while marked(mark) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = [" ".join(p.cmdline()[:4]) for p in marked(mark)]
    assert not left, f"processes left behind by the killed run: {left}"


def attempts(settings: Settings) -> list[tuple[str, str | None]]:
    with sqlite3.connect(settings.db_url.removeprefix("sqlite:///")) as conn:
        return conn.execute(
            "SELECT status, detail FROM bua_run_attempt ORDER BY started_at, status"
        ).fetchall()


@pytest.mark.slow
@pytest.mark.parametrize(
    "phase",
    ["extract", "profiles_partial", "segments", "scalars", "interval_estimates", "rating", "exceptions",
     "prepare", "export", "validation", "report"],
)  # fmt: skip
def test_kill_9_then_rerun_takes_over_and_gives_the_same_bytes(
    phase: str, loaded: Path, tmp_path: Path, harness: str, reference: Settings
) -> None:
    settings = copy_of(loaded, tmp_path / "run")
    mark = uuid.uuid4().hex
    # notify held (it waits for prepare only, and is last in the graph's order): the run is surely
    # still running when `report`'s manifest appears, however quickly the rest of the run finishes —
    # since issue 11 it sometimes completed before the kill landed
    proc = bua_run(settings, harness, mark, BUA_TEST_DELAY="notify:120")
    wait_for_manifest(settings, phase, proc)
    kill_and_check_nothing_is_left(proc, mark)
    assert [s for s, _ in attempts(settings)] == ["RUNNING"]  # nobody could record its end

    # the rerun waits at most BUA_RUN_LOCK_WAIT_SECONDS (20) for the lock: it finishes only if the dead
    # run's lease (3 s) expired and was taken over within that bound; else it refuses with exit 1
    rerun = bua_run(settings, harness)
    out, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, out + err
    recorded = attempts(settings)
    assert [s for s, _ in recorded] == ["FAILED", "COMPLETED"], recorded
    assert recorded[0][1].startswith("lease expired (holder gone); taken over by attempt ")
    assert output_digests(settings) == output_digests(reference)
    assert output_rows(settings) == output_rows(reference)


@pytest.mark.slow
def test_kill_9_mid_csv_write_leaves_no_half_file_after_the_rerun(
    loaded: Path, tmp_path: Path, harness: str, reference: Settings
) -> None:
    """Killed while an export CSV is half written (storage's test hook holds the write with its
    temporary file in place): the temporary file is there after the kill, and gone after the rerun,
    which publishes exactly the reference's files."""
    settings = copy_of(loaded, tmp_path / "run")
    mark = uuid.uuid4().hex
    scratch = tmp_path / "scratch"  # the runs' local temporary folder (TMPDIR)
    scratch.mkdir()
    proc = bua_run(
        settings, harness, mark, BUA_TEST_PAUSE_BEFORE_RENAME="accrual_summary.csv:120", TMPDIR=str(scratch)
    )
    folder = Path(settings.output_url) / "export" / "csv" / R.isoformat()
    deadline = time.monotonic() + 240
    while not list(folder.glob(".accrual_summary.csv.*.tmp")) and time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.05)
    assert list(folder.glob(".accrual_summary.csv.*.tmp")), "the write was never held"
    kill_and_check_nothing_is_left(proc, mark)
    assert list(folder.glob(".accrual_summary.csv.*.tmp"))  # kill -9 ran no cleanup
    # nor of the export's spilled slices (the line items, the account summary: written before
    # accrual_summary.csv), in a scratch folder named after the killed process
    assert list(scratch.glob(f"bua-export-{proc.pid}-*/invoice_line_item_monthly/*.arrow"))

    rerun = bua_run(settings, harness, TMPDIR=str(scratch))
    out, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, out + err
    assert not list(folder.glob(".*.tmp"))
    assert not list(scratch.iterdir())  # the killed run's scratch swept, the rerun's own removed
    assert output_digests(settings) == output_digests(reference)


@pytest.mark.slow
def test_kill_9_of_a_run_on_its_own_temporary_prefect_server_leaves_no_server(
    loaded: Path, tmp_path: Path
) -> None:
    settings = copy_of(loaded, tmp_path / "run")
    mark = uuid.uuid4().hex
    proc = bua_run(settings, None, mark, PREFECT_HOME=str(tmp_path / "prefect-home"))
    wait_for_manifest(settings, "rating", proc, timeout=300)
    assert any("uvicorn" in " ".join(p.cmdline()) for p in marked(mark))  # the temporary server runs
    kill_and_check_nothing_is_left(proc, mark)


@pytest.fixture(scope="module")
def other_server(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A second Prefect server (its own PREFECT_HOME and database): another operator's."""
    import httpx

    from tests.conftest import free_port

    home, port = tmp_path_factory.mktemp("other-prefect"), free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
    }
    exe = str(Path(sys.executable).parent / "prefect")
    proc = subprocess.Popen([exe, "server", "start", "--host", "127.0.0.1", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    url = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.5)
    yield url
    proc.terminate()
    proc.wait(30)


@pytest.mark.slow
def test_two_operators_with_two_prefect_servers_never_mix_a_month_end(
    loaded: Path, tmp_path: Path, harness: str, other_server: str, reference: Settings
) -> None:
    """Two `bua run` of the same run date at once, each with its own Prefect server (two operators,
    or cron and a manual run): one refuses, and the outputs are a single run's."""
    settings = copy_of(loaded, tmp_path / "run")
    # whichever takes the lock holds it at least 20 s (its windows phase waits): the other surely overlaps
    runs = [
        bua_run(settings, api, BUA_RUN_LOCK_WAIT_SECONDS="0", BUA_TEST_DELAY="windows:20")
        for api in (harness, other_server)
    ]
    results = [(p.communicate(timeout=300), p.returncode) for p in runs]
    codes = sorted(code for _, code in results)
    assert codes == [0, 1], results
    refused = next(err for (out, err), code in results if code == 1)
    assert "error: run-2026-11-01 is held by attempt" in refused
    assert output_digests(settings) == output_digests(reference)
    assert output_rows(settings) == output_rows(reference)
    assert [s for s, _ in attempts(settings)] == ["COMPLETED"]


@pytest.mark.slow
def test_two_operators_on_mariadb_never_mix_a_month_end(
    tmp_path: Path, harness: str, other_server: str
) -> None:
    """The same on MariaDB (the lock lives in the billing database, whichever it is): a 60-account
    portfolio loaded into a fresh MariaDB database and, for the byte reference, into SQLite; two
    `bua run` at once through two Prefect servers on MariaDB — one refuses naming the holder, one
    attempt is on record, and the published files equal a single run's on SQLite."""
    import sqlalchemy as sa

    from tasks.adapters.db import engine_for
    from tasks.generate import generate
    from tests.dbservers import fresh_database, server_problem
    from tests.portfolio import load_generated

    problem = server_problem("mariadb")
    if problem:
        pytest.skip(problem)
    generate(tmp_path / "portfolio", accounts=60, seed=31, months=13)
    common = {"shards": 4, "max_workers": 2, "task_retries": 1, "task_retry_delay_seconds": 0.01}
    single = load_generated(tmp_path / "portfolio", Settings(
        database_url=f"sqlite:///{tmp_path}/ref.db", meter_store=str(tmp_path / "ref-ms"),
        output_url=str(tmp_path / "ref-out"), **common))  # fmt: skip
    assert bua_run(single, harness).wait(300) == 0
    with fresh_database("mariadb", tmp_path) as url:
        settings = load_generated(tmp_path / "portfolio", Settings(
            database_url=url, meter_store=str(tmp_path / "ms"), output_url=str(tmp_path / "out"), **common))  # fmt: skip
        runs = [
            bua_run(settings, api, BUA_RUN_LOCK_WAIT_SECONDS="0", BUA_TEST_DELAY="windows:20")
            for api in (harness, other_server)
        ]
        results = [(p.communicate(timeout=300), p.returncode) for p in runs]
        with engine_for(url).connect() as conn:
            statuses = conn.execute(sa.text("SELECT status FROM bua_run_attempt")).scalars().all()
    assert sorted(code for _, code in results) == [0, 1], results
    refused = next(err for (out, err), code in results if code == 1)
    assert "error: run-2026-11-01 is held by attempt" in refused
    assert statuses == ["COMPLETED"]
    published = {k: v for k, v in output_digests(settings).items() if not k.startswith("report/")}
    assert published == {k: v for k, v in output_digests(single).items() if not k.startswith("report/")}
    assert any(k.startswith("export/csv/") for k in published)
