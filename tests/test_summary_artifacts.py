"""The console summary of `bua run`/`bua demo` (flows/summary.py) and the Prefect artifacts' content
(tasks/pipeline/artifacts.py): full figures at a 100k-portfolio magnitude on narrow and wide
consoles, months as 2026-10, kWh and MJ in their own columns, fuel subtotals and totals summed by
hand, the count of files as found, the time as measured."""

from __future__ import annotations

import datetime as dt
import io

import polars as pl
import pytest
from rich.console import Console

from tests.test_report import hand_summary

# hand_summary's figures × 221,280.26 puts the total accrual (140 × 221,280.26 = 30,979,236.40) at
# the 100k portfolio's magnitude (issue 12: "19,915,223…" was cut)
SCALE = 221_280.26


def big_summary() -> pl.DataFrame:
    cols = ("net_amount", "discount_net_propensity", "net_amount_less_discount", "volume")
    return hand_summary().with_columns(pl.col(c) * SCALE for c in cols)


def summary_text(width: int, terminal: bool, files: int = 7) -> str:
    from flows.summary import print_run_summary

    console = Console(file=io.StringIO(), width=width, color_system=None, force_terminal=terminal)
    print_run_summary(
        console,
        big_summary(),
        run_date="2026-11-01",
        run_id="run-1",
        status="COMPLETED",
        counts={"accrual_summary": 4},
        exceptions_by_code={"NO_PROFILE": 2, "NO_HISTORY": 5},
        elapsed_seconds=83.25,
        database="sqlite:///.bua/bua.db",
        csv_dir=".bua/out/export/csv/2026-11-01",
        csv_files=[f"f{i}.csv" for i in range(files)],
        report=".bua/out/report/2026-11-01/report.html",
    )
    return console.file.getvalue()  # type: ignore[attr-defined]


# by hand (× SCALE): total accrual 140 → 30,979,236.40; charges 150 → 33,192,039.00; discounts 10 →
# 2,212,802.60; electricity usage 350 kWh → 77,448,091; gas 1,000 MJ → 221,280,260; electricity
# accrual 36 + 54 + 20 = 110 → 24,340,828.60; gas 30 → 6,638,407.80; 2026-10 electricity 54 + 20 = 74
# → 16,374,739.24
FIGURES = (
    "30,979,236.40",
    "33,192,039.00",
    "2,212,802.60",
    "77,448,091",
    "221,280,260",
    "24,340,828.60",
    "6,638,407.80",
    "16,374,739.24",
)


@pytest.mark.parametrize(
    ("width", "terminal"), [(160, True), (100, True), (60, True), (80, False), (40, False)]
)
def test_console_summary_never_cuts_a_figure(width, terminal):
    text = summary_text(width, terminal)
    assert "…" not in text
    for figure in FIGURES:
        assert figure in text, (figure, width)
    assert "2026-10" in text and "202610" not in text
    assert "Usage (kWh)" in text and "Usage (MJ)" in text and "kWh|MJ" not in text
    assert "Electricity subtotal" in text and "Gas subtotal" in text and "Total" in text
    assert "(7 files)" in text and "took 83.2 s" in text
    assert "exceptions: 7 (NO_HISTORY 5, NO_PROFILE 2)" in text


def test_console_summary_wide_is_one_table_per_view():
    text = summary_text(160, True)
    assert text.count("by month") == 1 and ": usage" not in text
    # a narrow terminal gets usage and money as two tables, same labels
    narrow = summary_text(60, True)
    assert ": usage" in narrow and ": money" in narrow
    assert "(1 file)" in summary_text(160, True, files=1)


def test_fuel_first_subtotals_by_hand():
    from flows.summary import fuel_first

    t = fuel_first(hand_summary(), "month")
    assert t.select("Fuel", "Month", "Usage (kWh)", "Usage (MJ)", "Accrual ($)").rows() == [
        ("Electricity", "2026-09", 100.0, None, 36.0),
        ("Electricity", "2026-10", 250.0, None, 74.0),
        ("Electricity subtotal", "all", 350.0, None, 110.0),
        ("Gas", "2026-10", None, 1000.0, 30.0),
        ("Gas subtotal", "all", None, 1000.0, 30.0),
        ("Total", "", 350.0, 1000.0, 140.0),
    ]


def test_artifact_summary_rows_human_headers_subtotals_total():
    from tasks.pipeline.artifacts import exceptions_rows, summary_rows

    rows = summary_rows(hand_summary())
    assert list(rows[0]) == [
        "Month",
        "State",
        "Fuel",
        "Segment",
        "Usage (kWh)",
        "Usage (MJ)",
        "Charges ($)",
        "Discounts ($)",
        "Accrual ($)",
    ]
    assert [r["Month"] for r in rows] == [
        "2026-09",
        "2026-09",
        "2026-10",
        "2026-10",
        "2026-10",
        "2026-10",
        "Total",
    ]
    assert rows[1]["State"] == "subtotal" and rows[1]["Accrual ($)"] == "36.00"
    # 2026-10: NSW elec RES 54, VIC elec SME 20, VIC gas RES 30 → subtotal 104.00, 250 kWh, 1,000 MJ
    assert rows[5] == {
        "Month": "2026-10",
        "State": "subtotal",
        "Fuel": "subtotal",
        "Segment": "subtotal",
        "Usage (kWh)": "250",
        "Usage (MJ)": "1,000",
        "Charges ($)": "110.00",
        "Discounts ($)": "6.00",
        "Accrual ($)": "104.00",
    }
    assert rows[-1]["Accrual ($)"] == "140.00" and rows[-1]["Usage (MJ)"] == "1,000"
    exc = exceptions_rows({"NO_PROFILE": 2, "NO_HISTORY": 5})
    assert [(r["Code"], r["Count"]) for r in exc] == [
        ("NO_HISTORY", "5"),
        ("NO_PROFILE", "2"),
        ("Total", "7"),
    ]
    assert exceptions_rows({}) == []


def test_run_note_has_totals_checks_and_links():
    from tasks.pipeline.artifacts import run_note
    from tasks.pipeline.report import ReportRun

    run = ReportRun(
        "run-1", dt.date(2026, 11, 1), dt.date(2025, 11, 1), dt.date(2026, 10, 31), "", "seasonal", "v1"
    )
    prechecks = pl.DataFrame(
        {
            "check": ["a", "b"],
            "status": ["PASS", "WARN"],
            "figure": ["1", "2"],
            "threshold": ["", ""],
            "detail": ["", "x"],
        }
    )
    note = run_note(
        run,
        big_summary(),
        accounts=104_000,
        exceptions_by_code={"NO_HISTORY": 5},
        links=[("accrual_summary.csv", "file:///out/accrual_summary.csv")],
        report_link="file:///out/report.html",
        prechecks=prechecks,
    )
    assert note.startswith("# Month-end accrual as at 2026-11-01 — COMPLETED")
    assert "| Accrual ($) | 30,979,236.40 |" in note and "| Usage (kWh) | 77,448,091 |" in note
    assert "| Usage (MJ) | 221,280,260 |" in note and "| Accounts | 104,000 |" in note
    # by fuel with a total row: electricity 24,340,828.60, gas 6,638,407.80, total 30,979,236.40
    assert "| Electricity | 77,448,091 | – |" in note and "| Total | 77,448,091 | 221,280,260 |" in note
    assert "1 passed, 1 warned, 0 failed." in note and "| b | WARN | 2 |  | x |" in note
    assert "- [Accrual report](file:///out/report.html)" in note
    assert "- [accrual_summary.csv](file:///out/accrual_summary.csv)" in note
    no_checks = run_note(run, hand_summary(), accounts=4, exceptions_by_code={})
    assert "## Pre-run checks\n\nNot run for this run." in no_checks


def test_print_from_result_counts_the_files_found(tmp_path):
    """The old summary said "(5 files)" where 7 were written (the validation phase's two CSVs were
    not in the export phase's list): the count is now of the files in the folder."""
    from flows.summary import print_from_result
    from tasks.settings import Settings

    s = Settings(database_url=f"sqlite:///{tmp_path}/bua.db", output_url=str(tmp_path / "out"))
    csv = tmp_path / "out" / "export" / "csv" / "2026-11-01"
    csv.mkdir(parents=True)
    for name in ("a", "b", "c", "d", "e", "bua_backtest", "bua_trueup"):
        (csv / f"{name}.csv").write_text("x\n")
    (csv / "scenario=what-if").mkdir()
    (csv / "scenario=what-if" / "a.csv").write_text("x\n")  # a what-if's files are not the booked run's
    result = {
        "run_id": "r",
        "run_date": "2026-11-01",
        "status": "COMPLETED",
        "counts": {"accrual_summary": 4},
        "exceptions_by_code": {},
        "accrual_summary": hand_summary().to_dicts(),
        "exports": ["a", "b", "c", "d", "e"],
    }
    console = Console(file=io.StringIO(), width=160, color_system=None)
    print_from_result(console, result, s, 3.0)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert f"CSV: {csv}/ (7 files)" in text and "report:" not in text  # no report written: none named
    assert "| 140.00" not in text and "140.00" in text
