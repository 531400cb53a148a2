"""bua_monthly on the real engine and a tiny generated portfolio: the same bytes as the sequential
``run_accrual``, all cache hits on a re-run, resume after a failed shard, and Dask."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from tasks.settings import Settings
from tests.flows.conftest import output_digests, run_monthly

pytestmark = pytest.mark.usefixtures("harness")

R = dt.date(2026, 11, 1)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 120-account portfolio generated, loaded into SQLite and ingested into a meter store, once."""
    from tasks.db import init_db
    from tasks.generate import generate
    from tasks.ingest import ingest_nem12, ingest_nem13
    from tasks.load import load_portfolio

    portfolio = tmp_path_factory.mktemp("portfolio")
    generate(portfolio, accounts=120, seed=23, months=13)
    base = tmp_path_factory.mktemp("loaded")
    s = Settings(database_url=f"sqlite:///{base}/bua.db", meter_store=str(base / "ms"), shards=4)
    init_db(s.database_url)
    load_portfolio(s.database_url, portfolio)
    ingest_nem12([str(portfolio / "nem12")], s)
    if any((portfolio / "nem13").iterdir()):
        ingest_nem13([str(portfolio / "nem13")], s)
    return base


def copy_of(loaded: Path, root: Path, **overrides: object) -> Settings:
    shutil.copytree(loaded, root)
    base: dict[str, object] = {
        "database_url": f"sqlite:///{root}/bua.db",
        "meter_store": str(root / "ms"),
        "output_url": str(root / "out"),
        "shards": 4,
        "max_workers": 2,
        "task_retries": 1,
        "task_retry_delay_seconds": 0.01,
    }
    return Settings(**{**base, **overrides})


# Not byte-deterministic in the engine yet (DESIGN.md "Orchestration needs" 7): compared as frames.
KNOWN_NONDETERMINISTIC = "/profiles/"


def assert_same_outputs(a: Settings, b: Settings) -> None:
    """Every output file byte-identical (known-nondeterministic partials: equal to 1e-12), same rows."""
    import numpy as np
    import polars as pl

    da, db = output_digests(a), output_digests(b)
    assert da.keys() == db.keys()
    assert any(k.startswith("export/csv/2026-11-01/invoice_line_item_monthly") for k in da)
    for name in da:
        if KNOWN_NONDETERMINISTIC in name:
            fa, fb = (pl.read_parquet(Path(s.output_url) / name) for s in (a, b))
            floats = [c for c, t in fa.schema.items() if t.is_float() or isinstance(t, pl.Array | pl.List)]
            assert fa.drop(floats).equals(fb.drop(floats)), name
            for c in floats:
                x, y = (
                    f[c].explode().to_numpy() if f[c].dtype.is_nested() else f[c].to_numpy() for f in (fa, fb)
                )
                assert np.allclose(x, y, rtol=1e-12, atol=1e-12, equal_nan=True), (name, c)
        else:
            assert da[name] == db[name], name
    assert output_rows(a) == output_rows(b)


def output_rows(settings: Settings) -> dict[str, list[tuple]]:
    import sqlalchemy as sa

    from sql.schema import OUTPUT_TABLES
    from tasks.db import engine_for

    with engine_for(settings.database_url).connect() as conn:
        return {
            t: sorted(map(tuple, conn.execute(sa.text(f"SELECT * FROM {t}")).all()), key=repr)
            for t in OUTPUT_TABLES
            if t != "bua_run"
        }


def test_flow_writes_the_same_bytes_as_run_accrual_and_a_rerun_is_all_cache_hits(loaded, tmp_path):
    from tasks.accrual import run_accrual

    sequential = copy_of(loaded, tmp_path / "seq")
    run_accrual(sequential, R)
    flow = copy_of(loaded, tmp_path / "flow")
    first = run_monthly(flow, run_date=R)
    assert first.error is None, first.error
    assert {s for n, s in first.states.items() if n != "source-fingerprint"} == {"Completed"}
    assert_same_outputs(flow, sequential)
    digests = output_digests(flow)

    second = run_monthly(flow, run_date=R)
    assert second.error is None, second.error
    assert {s for n, s in second.states.items() if n != "source-fingerprint"} == {"Cached"}
    assert output_digests(flow) == digests


def test_failed_shard_resumes_alone_and_ends_identical(loaded, tmp_path):
    clean = copy_of(loaded, tmp_path / "clean")
    assert run_monthly(clean, run_date=R).error is None

    s = copy_of(loaded, tmp_path / "resume")
    failed = run_monthly(s.model_copy(update={"fail_phase": "rating:1"}), run_date=R)
    assert failed.error is not None and "rating[1]" in str(failed.error)
    assert failed.states["rating[1]"] == "Failed" and failed.states["rating[0]"] == "Completed"

    resumed = run_monthly(s, run_date=R)
    assert resumed.error is None, resumed.error
    assert {n for n, st in resumed.states.items() if st == "Completed" and n != "source-fingerprint"} == {
        "rating[1]",
        "exceptions",
        "prepare",
        "export",
    }
    assert_same_outputs(s, clean)


def test_dask_local_cluster_with_two_worker_processes_gives_identical_outputs(loaded, tmp_path):
    threads = copy_of(loaded, tmp_path / "threads")
    assert run_monthly(threads, run_date=R).error is None
    dask = copy_of(loaded, tmp_path / "dask", task_runner="dask", max_workers=2)
    out = run_monthly(dask, run_date=R)
    assert out.error is None, out.error
    assert {s for n, s in out.states.items() if n != "source-fingerprint"} == {"Completed"}
    assert_same_outputs(dask, threads)
