"""The phase graph (tasks/pipeline/graph.py): dependencies derived from reads and writes, tasks per
shard, malformed graphs refused, and phases that are plain functions of small frames."""

from __future__ import annotations

import dataclasses
import datetime as dt

import polars as pl
import pytest

from tasks.pipeline.datasets import Dataset, PhaseContext
from tasks.pipeline.graph import PHASES, REGISTRY, GraphError, Phase, phase_named, tasks, upstream
from tasks.pipeline.spec import resolve_run
from tasks.settings import Settings

R = dt.date(2026, 11, 1)


def test_dependencies_are_the_writers_of_what_a_phase_reads():
    deps = upstream(PHASES)
    assert deps["extract"] == ()  # reads only a source
    assert deps["windows"] == ("extract",)
    assert deps["rating"] == ("extract", "windows", "basic_estimates", "interval_estimates", "engine_lines")
    assert deps["engine_lines"] == ("windows",)
    assert deps["gas_shape"] == ("extract", "segments", "read_pairs")
    # every basic_estimates shard waits for the run-once gas_shape (all shards' class medians) and
    # balance_points (all shards' pooled balance points of the weather model)
    assert deps["balance_points"] == ("extract", "segments", "gas_shape")
    assert deps["basic_estimates"] == (
        "extract", "windows", "segments", "read_pairs", "gas_shape", "balance_points"
    )  # fmt: skip
    assert deps["report"] == ("prepare", "validation", "comparison")
    # validation reads no output of prepare: it may run beside the accrual's last phases
    assert "prepare" not in deps["validation"] and "export" not in deps["validation"]
    # every dataset is written by one phase at most, and every phase's reads exist
    written = [d for p in PHASES for d in p.writes]
    assert len(written) == len(set(written))
    assert all(d in REGISTRY for p in PHASES for d in (*p.reads, *p.writes))


def test_tasks_wait_for_their_own_shard_or_for_every_shard():
    graph = tasks(PHASES, shards=2)
    assert len(graph) == 15 + 5 * 2  # 15 run-once phases, 5 per shard
    assert graph[("basic_estimates", 0)].count(("balance_points", None)) == 1
    # read_pairs is one task writing every shard's file: shard 1 of basic_estimates waits for it
    assert ("read_pairs", None) in graph[("basic_estimates", 1)]
    assert sorted(graph[("rating", 1)]) == sorted(
        [("extract", None), ("windows", None), ("basic_estimates", 1), ("interval_estimates", 1),
         ("engine_lines", None)]
    )  # fmt: skip
    assert ("rating", 0) in graph[("exceptions", None)] and ("rating", 1) in graph[("exceptions", None)]
    assert graph[("profiles_combine", None)] == [("profiles_partial", 0), ("profiles_partial", 1)]


def test_malformed_graphs_are_refused():
    extract, windows = phase_named("extract"), phase_named("windows")
    twice = dataclasses.replace(windows, name="windows2")
    with pytest.raises(GraphError, match="'windows' is written by both windows and windows2"):
        upstream([extract, windows, twice])
    with pytest.raises(GraphError, match="reads 'windows' before windows writes it"):
        upstream([extract, phase_named("profiles_partial"), windows])
    with pytest.raises(GraphError, match="unknown dataset 'nope'"):
        upstream([dataclasses.replace(extract, reads=("nope",))])


def test_a_new_phase_is_one_function_and_one_declaration(monkeypatch: pytest.MonkeyPatch):
    """The exercise of issue 13: a no-op audit phase after the exceptions. Its dependencies, its
    place among the tasks and its call come from the declaration alone."""

    def audit(ctx: PhaseContext, bua_exception: pl.DataFrame) -> dict[str, pl.DataFrame]:
        return {"audit_note": bua_exception.group_by("code").len().sort("code")}

    monkeypatch.setitem(REGISTRY, "audit_note", Dataset("audit_note", "audit"))
    graph = [*PHASES, Phase("audit", audit, ("bua_exception",), ("audit_note",))]
    assert upstream(graph)["audit"] == ("exceptions",)
    assert tasks(graph, 4)[("audit", None)] == [("exceptions", None)]
    exc = pl.DataFrame({"account_id": [1, 2, 2], "meter_register_id": [None, 5, 6],
                        "code": ["NO_PLAN", "NO_HISTORY", "NO_HISTORY"], "detail": ["a", "b", "c"]})  # fmt: skip
    out = audit(context(), exc)["audit_note"]
    assert out.rows() == [("NO_HISTORY", 2), ("NO_PLAN", 1)]


def context(shard: int | None = None) -> PhaseContext:
    settings = Settings(shards=2, grace_days=7)
    return PhaseContext(resolve_run(settings, R), settings, shard)


def test_windows_phase_on_five_rows():
    """An account billed to 30 Sep monthly (due 31 Oct + 7 days grace, on or after R: not due) and a
    never-billed account opened 15 Oct: unbilled 1 … 31 Oct (31 days) and 15 … 31 Oct (17 days)."""
    accounts = pl.DataFrame(
        {
            "account_id": [1, 2], "account_number": ["A1", "A2"], "customer_class": ["RES", "RES"],
            "journal_segment": ["RESIDENTIAL"] * 2, "service_type": ["ELECTRICITY"] * 2,
            "billing_cycle_months": [1, 1], "open_date": [dt.date(2020, 1, 1), dt.date(2026, 10, 15)],
            "close_date": [None, None], "nmi": ["4102000001", "4102000002"],
            "site_start": [dt.date(2020, 1, 1), dt.date(2026, 10, 15)], "site_end": [None, None],
            "jurisdiction": ["NSW", "NSW"], "network": ["AUSGRID", "AUSGRID"], "shard": [0, 1],
        },
        schema_overrides={"close_date": pl.Date, "site_end": pl.Date},
    )  # fmt: skip
    invoices = pl.DataFrame(
        {
            "invoice_id": [10], "account_id": [1], "issue_date": [dt.date(2026, 10, 3)],
            "period_start": [dt.date(2026, 9, 1)], "period_end": [dt.date(2026, 9, 30)], "status": ["ISSUED"],
            "due_date": [dt.date(2026, 10, 17)], "paid_date": [dt.date(2026, 10, 10)],
            "net_amount": [100.0], "gst_amount": [10.0],
        }
    )  # fmt: skip
    registers = pl.DataFrame({"account_id": [1, 2], "meter_register_id": [7, 8]})
    out = phase_named("windows").fn(context(), accounts=accounts, invoices=invoices, registers=registers)
    w = out["windows"].select("account_id", "unbilled_from", "unbilled_to", "unbilled_days").rows()
    assert w == [
        (1, dt.date(2026, 10, 1), dt.date(2026, 10, 31), 31),
        (2, dt.date(2026, 10, 15), dt.date(2026, 10, 31), 17),
    ]
    assert out["windows_exceptions"].height == 0


def test_a_run_once_phase_writes_every_shards_file_of_a_per_shard_dataset(tmp_path):
    """read_pairs runs once and writes one file per shard (a per-shard dataset): each shard's reader
    gets exactly its frame; a list of the wrong length is refused, naming the dataset."""
    from tasks.pipeline.datasets import Datasets

    settings = Settings(shards=2, output_url=str(tmp_path / "out"))
    io = Datasets(resolve_run(settings, R), settings, REGISTRY)
    shard0 = pl.DataFrame({"meter_register_id": [1, 3], "start": [dt.date(2026, 1, 5)] * 2})
    shard1 = pl.DataFrame({"meter_register_id": [2], "start": [dt.date(2026, 2, 7)]})
    written = io.save("read_pairs", [shard0, shard1])
    assert [p.split("/")[-2:] for p in written] == [
        ["shard=000", "read_pairs.parquet"],
        ["shard=001", "read_pairs.parquet"],
    ]
    assert io.load("read_pairs", 0).equals(shard0) and io.load("read_pairs", 1).equals(shard1)
    assert [f.height for f in io.load("read_pairs")] == [2, 1]  # every shard, in order
    with pytest.raises(ValueError, match="read_pairs: a run-once phase must give one frame per shard"):
        io.save("read_pairs", [shard0])
