"""bua_monthly's machinery on the fake pipeline: caching, resume after a failure, the run_date lock."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from tests.flows.conftest import output_digests, run_monthly
from tests.flows.fake_pipeline import PER_SHARD, PHASES

pytestmark = pytest.mark.usefixtures("harness")


def phase_of(task_run_name: str) -> str:
    return task_run_name.split("[", 1)[0]


def test_first_run_completes_every_phase_and_second_run_is_all_cache_hits(fake_settings):
    first = run_monthly(fake_settings)
    assert first.error is None, first.error
    phases = first.states
    # every phase once, every per-shard phase once per shard, all computed
    assert len(phases) == len(PHASES) + len(PER_SHARD) * (fake_settings.shards - 1)
    assert set(phases.values()) == {"Completed"}
    before = output_digests(fake_settings)
    assert any(k.startswith("export/csv/2026-11-01/") for k in before)

    second = run_monthly(fake_settings)
    assert second.error is None, second.error
    again = second.states
    assert again.keys() == phases.keys()
    assert set(again.values()) == {"Cached"}
    assert output_digests(fake_settings) == before
    assert second.result["fingerprints"] == first.result["fingerprints"]


# Each phase fails once, before it ever completed: a failure at phase k lets everything not
# downstream of k finish, so each chain follows dependencies (every phase appears in one chain).
CHAINS = [
    ["extract", "windows", "basic_estimates", "rating", "exceptions", "prepare", "export"],
    ["profiles_partial", "profiles_combine", "segments", "scalars", "interval_estimates"],
    ["read_pairs", "gas_shape"],
]


def test_chains_cover_every_phase():
    assert sorted(p for chain in CHAINS for p in chain) == sorted(PHASES)


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory: pytest.TempPathFactory):
    """An uninterrupted run of the fake pipeline (the byte reference)."""
    from tests.flows.conftest import make_settings
    from tests.flows.fake_pipeline import make_source

    settings = make_settings(tmp_path_factory.mktemp("clean"))
    make_source(settings)
    assert run_monthly(settings).error is None
    return settings


@pytest.mark.parametrize("chain", CHAINS, ids=lambda c: f"{c[0]}..{c[-1]}")
def test_failure_in_each_phase_resumes_only_the_failed_work_and_ends_byte_identical(
    chain, fake_settings, clean_run
):
    done: set[str] = set()  # task runs that completed in an earlier run of the same run_date
    for phase in chain:
        out = run_monthly(fake_settings.model_copy(update={"fail_phase": phase}))
        assert out.error is not None and f"injected failure in phase {phase}" in str(out.error), phase
        for name, state in out.states.items():
            if name in done:
                assert state == "Cached", (phase, name, state)  # finished work is never redone
            elif phase_of(name) == phase:
                assert state == "Failed", (phase, name, state)
            else:
                assert state in ("Completed", "NotReady"), (phase, name, state)
        done |= {n for n, s in out.states.items() if s == "Completed"}

    final = run_monthly(fake_settings)
    assert final.error is None, final.error
    recomputed = {n for n, s in final.states.items() if s == "Completed"}
    assert recomputed and not recomputed & done
    assert {phase_of(n) for n in recomputed} >= {chain[-1]}  # the last failed phase, and what waited on it
    assert all(s == "Cached" for n, s in final.states.items() if n not in recomputed)
    assert output_digests(fake_settings) == output_digests(clean_run)


def test_failure_in_one_shard_reruns_only_that_shard_and_what_depends_on_it(fake_settings, clean_run):

    failed = run_monthly(fake_settings.model_copy(update={"fail_phase": "scalars:2"}))
    assert failed.error is not None and "scalars[2]" in str(failed.error)
    assert failed.states["scalars[2]"] == "Failed"
    assert failed.states["scalars[1]"] == "Completed"
    assert failed.states["interval_estimates[1]"] == "Completed"  # other shards went on
    assert failed.states["interval_estimates[2]"] in ("NotReady", "Pending")

    resumed = run_monthly(fake_settings)
    assert resumed.error is None, resumed.error
    computed = {n for n, s in resumed.states.items() if s == "Completed"}
    assert computed == {
        "scalars[2]",
        "interval_estimates[2]",
        "rating[2]",
        "exceptions",
        "prepare",
        "export",
    }
    assert resumed.states["scalars[0]"] == "Cached"
    assert output_digests(fake_settings) == output_digests(clean_run)


def test_changed_meter_data_in_one_shard_recomputes_that_shard_only(fake_settings):
    import polars as pl

    from tasks.adapters import storage

    assert run_monthly(fake_settings).error is None
    url = Path(fake_settings.meter_store) / "interval" / "shard=001" / "month=2026-10" / "data.parquet"
    df = pl.read_parquet(url)
    storage.write_parquet_atomic(df.with_columns(pl.col("kwh") * 2), str(url), fake_settings)

    out = run_monthly(fake_settings)
    assert out.error is None, out.error
    computed = {n for n, s in out.states.items() if s == "Completed"}
    assert "profiles_partial[1]" in computed and "scalars[1]" in computed
    assert "profiles_partial[0]" not in computed and "read_pairs[1]" not in computed
    assert out.states["extract"] == "Cached"


def test_second_run_of_the_same_run_date_refuses_while_one_is_running(fake_settings):
    from flows.glue import run_date_lock

    day = dt.date(2026, 11, 1)
    with run_date_lock(day, timeout_seconds=0):
        blocked = run_monthly(fake_settings, run_date=day)
        other_day = run_monthly(fake_settings, run_date=dt.date(2026, 10, 1))
    assert blocked.error is not None
    assert "run_date 2026-11-01 is already being accrued" in str(blocked.error)
    assert other_day.error is None, other_day.error
    # the lock is released: the same date now runs
    assert run_monthly(fake_settings, run_date=day).error is None


def test_bua_run_records_the_run_with_a_deterministic_run_id(fake_settings):
    import sqlalchemy as sa

    from tasks.adapters.db import engine_for

    first = run_monthly(fake_settings)
    second = run_monthly(fake_settings)
    assert first.result["run_id"] == second.result["run_id"]
    with engine_for(fake_settings.database_url).connect() as conn:
        rows = conn.execute(sa.text("SELECT run_id, status, code_version FROM bua_run")).all()
    assert len(rows) == 1
    assert rows[0][0] == first.result["run_id"] and rows[0][1] == "COMPLETED"
