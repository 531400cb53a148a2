"""The run's HTML report (SPEC §6) in finance's language: human headers, months as 2026-10, kWh and
MJ apart, full figures with subtotals and totals (hand-summed), charts from Vega-Altair rendered to
inline SVG, pre-run checks, true-up with its "no earlier run" note, the what-if comparison, links
that work from a copy of the output tree or S3; self-contained, no customer identifiers, the same
bytes on a re-run."""

from __future__ import annotations

import datetime as dt
import re
import urllib.request
from pathlib import Path

import polars as pl
import pytest

from tasks.settings import Settings
from tests.engine import accrue
from tests.portfolio import generated_and_loaded

R = dt.date(2026, 11, 1)
RAW_NAMES = (
    "net_amount_less_discount",
    "discount_net_propensity",
    "year_mnth",
    "net_amount",
    "volume_actual",
)


@pytest.fixture(scope="module")
def engine_run(tmp_path_factory: pytest.TempPathFactory, harness: str) -> Settings:
    """A 120-account generated portfolio, loaded, ingested and accrued at 2026-10-01 and 2026-11-01
    by ``bua_monthly`` (the second run has a true-up against the first)."""
    base = generated_and_loaded(tmp_path_factory.mktemp("report"))
    s = Settings(
        database_url=f"sqlite:///{base}/bua.db",
        meter_store=str(base / "ms"),
        output_url=str(base / "out"),
        shards=4,
        slack_webhook_url=None,
    )
    accrue(s, dt.date(2026, 10, 1))
    accrue(s, R)
    return s


def customer_identifiers(database_url: str) -> list[str]:
    """Account numbers, NMIs/MIRNs and meter serial numbers of the portfolio."""
    import sqlalchemy as sa

    from tasks.adapters.db import engine_for

    with engine_for(database_url).connect() as conn:
        ids = [r[0] for r in conn.execute(sa.text("SELECT account_number FROM account"))]
        ids += [r[0] for r in conn.execute(sa.text("SELECT identifier FROM site"))]
        ids += [r[0] for r in conn.execute(sa.text("SELECT serial_number FROM meter"))]
    return [str(i) for i in ids if i]


def hand_summary() -> pl.DataFrame:
    """Four accrual_summary rows; every figure below is summed by hand from these."""
    return pl.DataFrame(
        {
            "ili_state": ["UNBILLED_NOT_DUE"] * 4,
            "discount_state": ["NONE"] * 4,
            "feature_type_name": ["USAGE"] * 4,
            "state": ["NSW", "NSW", "VIC", "VIC"],
            "fuel": ["ELECTRICITY", "ELECTRICITY", "GAS", "ELECTRICITY"],
            "segment": ["RESIDENTIAL", "RESIDENTIAL", "RESIDENTIAL", "SME"],
            "year_mnth": [202609, 202610, 202610, 202610],
            "time_class_name": ["ANYTIME"] * 4,
            "net_amount": [40.0, 60.0, 30.0, 20.0],
            "volume": [100.0, 200.0, 1000.0, 50.0],
            "days": [30, 31, 31, 31],
            "accounts": [1, 1, 1, 1],
            "discount_net": [4.0, 6.0, 0.0, 0.0],
            "discount_net_propensity": [4.0, 6.0, 0.0, 0.0],
            "net_amount_less_discount": [36.0, 54.0, 30.0, 20.0],
        }
    )


def hand_volumes() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "fuel": ["ELECTRICITY", "ELECTRICITY", "GAS"],
            "state": ["NSW", "VIC", "VIC"],
            "segment": ["RESIDENTIAL", "SME", "RESIDENTIAL"],
            "estimation_method": ["INTERVAL", "BASIC", "BASIC"],
            "accounts": [2, 1, 1],
            "volume_actual": [225.0, 0.0, 250.0],
            "volume_estimated": [75.0, 50.0, 750.0],
        }
    )


def run_facts(scenario: str = "") -> object:
    from tasks.pipeline.report import ReportRun

    return ReportRun("run-1", R, dt.date(2025, 11, 1), dt.date(2026, 10, 31), scenario, "seasonal", "v1")


def table_after(page: str, anchor: str, n: int = 0) -> list[list[str]]:
    """The cells of the n-th table after ``id="anchor"`` (rows of text)."""
    section = page[page.index(f'id="{anchor}"') :]
    table = re.findall(r"<table.*?</table>", section, flags=re.S)[n]
    return [re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row) for row in re.findall(r"<tr[^>]*>.*?</tr>", table)]


# ---------------------------------------------------------------- presentation (pure)


def test_accrual_by_month_and_segment_with_subtotals_and_units_apart():
    from tasks.pipeline import presentation as P

    t = P.with_totals(
        P.accrual_by(hand_summary(), ["month", "segment"]), ["Month", "Segment"], subtotal_by="Month"
    )
    assert t.columns == ["Month", "Segment", *P.FIGURES, "row"]
    rows = [list(r) for r in t.iter_rows()]
    # by hand: 2026-09 RESIDENTIAL elec 100 kWh, $40 − $4 = $36; 2026-10 RESIDENTIAL: 200 kWh (elec NSW)
    # and 1000 MJ (gas VIC), $60 + $30 = $90, discount 6, accrual 84; 2026-10 SME: 50 kWh, $20;
    # 2026-10 subtotal 250 kWh, 1000 MJ, $110, $6, $104; total 350 kWh, 1000 MJ, $150, $10, $140.
    assert rows == [
        ["2026-09", "RESIDENTIAL", 100.0, None, 40.0, 4.0, 36.0, "detail"],
        ["2026-09", "subtotal", 100.0, None, 40.0, 4.0, 36.0, "subtotal"],
        ["2026-10", "RESIDENTIAL", 200.0, 1000.0, 90.0, 6.0, 84.0, "detail"],
        ["2026-10", "SME", 50.0, None, 20.0, 0.0, 20.0, "detail"],
        ["2026-10", "subtotal", 250.0, 1000.0, 110.0, 6.0, 104.0, "subtotal"],
        ["Total", "", 350.0, 1000.0, 150.0, 10.0, 140.0, "total"],
    ]


def test_formats_are_full_figures():
    from tasks.pipeline import presentation as P

    assert P.money(19_915_223.456) == "19,915,223.46"
    assert P.money(-1234.5) == "-1,234.50" and P.money(-0.001) == "0.00" and P.money(None) == "–"
    assert P.quantity(144_712.6) == "144,713"
    assert pl.DataFrame({"m": [202610, 202501]}).select(P.month_label("m"))["m"].to_list() == [
        "2026-10",
        "2025-01",
    ]


def test_estimated_share_per_fuel_and_exceptions_table():
    from tasks.pipeline import presentation as P

    e = P.estimated_share(hand_volumes(), "ELECTRICITY")
    # RESIDENTIAL 75 / (225 + 75) = 25 %; SME 50 / 50 = 100 %; total 125 / (225 + 125) = 35.714 %
    assert e["Segment"].to_list() == ["RESIDENTIAL", "SME", "Total"]
    assert e["Actual (kWh)"].to_list() == [225.0, 0.0, 225.0]
    assert [round(x, 3) for x in e["Estimated share (%)"].to_list()] == [25.0, 100.0, 35.714]
    g = P.estimated_share(hand_volumes(), "GAS")
    assert "Actual (MJ)" in g.columns and g["Estimated share (%)"].to_list()[-1] == 75.0
    x = P.exceptions_table(pl.DataFrame({"code": ["STALE_UNBILLED", "NO_HISTORY"], "count": [1, 4]}))
    assert x.select("Code", "Count").rows() == [("NO_HISTORY", 4), ("STALE_UNBILLED", 1), ("Total", 5)]
    assert x["Meaning"][0].startswith("register without usable history")


def test_compare_runs_by_state_fuel_segment_month():
    from tasks.pipeline import presentation as P

    booked = hand_summary()
    # the what-if: NSW 2026-10 electricity +$10 (accrual 64) and 20 kWh more; VIC gas gone; a new QLD row
    whatif = pl.concat(
        [
            booked.filter(pl.col("fuel") != "GAS").with_columns(
                pl.when(pl.col("year_mnth") == 202610)
                .then(pl.col("net_amount_less_discount") + 10)
                .otherwise(pl.col("net_amount_less_discount"))
                .alias("net_amount_less_discount"),
                pl.when(pl.col("year_mnth") == 202610)
                .then(pl.col("volume") + 20)
                .otherwise(pl.col("volume")),
            ),
            booked.head(1).with_columns(
                pl.lit("QLD").alias("state"), pl.lit(5.0).alias("net_amount_less_discount")
            ),
        ]
    )
    c = P.compare_runs(whatif, booked)
    by_state = P.comparison_by(c, "state")
    # by hand: NSW booked 36 + 54 = 90, what-if 36 + 64 = 100 → +10 (+11.1 %); QLD 0 → 5; VIC booked
    # 30 + 20 = 50, what-if (gas gone, SME +10) 30 → −20 (−40 %); total 140 → 135, −5 (−3.57 %)
    assert by_state.select("State", "Booked accrual ($)", "What-if accrual ($)", "Difference ($)").rows() == [
        ("NSW", 90.0, 100.0, 10.0),
        ("QLD", 0.0, 5.0, 5.0),
        ("VIC", 50.0, 30.0, -20.0),
        ("Total", 140.0, 135.0, -5.0),
    ]
    assert round(by_state["Difference (%)"][-1], 2) == -3.57 and by_state["Difference (%)"][1] is None
    by_fuel = P.comparison_by(c, "fuel")
    # usage stays in its own unit: electricity kWh 350 → 350 + 20 (NSW) + 20 (SME) + 100 (QLD) = 490; gas 1000 MJ → 0
    gas = by_fuel.filter(pl.col("Fuel") == "Gas").row(0, named=True)
    assert (
        gas["Booked usage (MJ)"] == 1000.0
        and gas["What-if usage (MJ)"] == 0.0
        and gas["Booked usage (kWh)"] is None
    )
    elec = by_fuel.filter(pl.col("Fuel") == "Electricity").row(0, named=True)
    assert (elec["Booked usage (kWh)"], elec["What-if usage (kWh)"]) == (350.0, 490.0)
    assert P.comparison_by(c, "month")["Month"].to_list() == ["2026-09", "2026-10", "Total"]


# ---------------------------------------------------------------- render_report (pure)


def test_render_report_in_finance_language_with_hand_totals():
    from tasks.pipeline.report import render_report

    page = render_report(
        run_facts(),  # type: ignore[arg-type]
        hand_summary(),
        account_volumes=hand_volumes(),
        exceptions=pl.DataFrame({"code": ["NO_HISTORY"], "count": [4]}),
        links=[("accrual_summary.csv", "../../export/csv/2026-11-01/accrual_summary.csv")],
    )
    headers = set(re.findall(r"<th(?: [^>]*)?>(.*?)</th>", page))
    assert {
        "Month",
        "Segment",
        "Usage (kWh)",
        "Usage (MJ)",
        "Charges ($)",
        "Discounts ($)",
        "Accrual ($)",
    } <= headers
    for raw in RAW_NAMES:
        assert raw not in page
    assert "202610" not in page and "<td>2026-10</td>" in page
    ms = table_after(page, "month-segment")
    assert ms[-1] == ["Total", "", "350", "1,000", "150.00", "10.00", "140.00"]
    assert ["2026-10", "subtotal", "250", "1,000", "110.00", "6.00", "104.00"] in ms
    sf = table_after(page, "state-fuel")
    # accounts by hand from the volumes: NSW elec 2, VIC elec 1, VIC gas 1; VIC subtotal 2; total 4
    assert sf[1] == ["NSW", "Electricity", "2", "300", "–", "100.00", "10.00", "90.00"]
    assert ["VIC", "subtotal", "2", "50", "1,000", "50.00", "0.00", "50.00"] in sf
    assert sf[-1] == ["Total", "", "4", "350", "1,000", "150.00", "10.00", "140.00"]
    # headline: accrual 140.00, 350 kWh, 1,000 MJ, 4 accounts, 4 exceptions
    assert table_after(page, "month-segment", 0) and '<td class="n">140.00</td>' in page
    assert "Pre-run checks: not run for this run." in page
    assert "The validation phase did not run" in page
    # charts: month × segment, state × fuel, share, exceptions — inline SVG from vl-convert, no script
    assert page.count("<svg") == 4 and not re.search(r"<script|<img|<link|@import", page)
    assert 'href="../../export/csv/2026-11-01/accrual_summary.csv"' in page


def test_render_report_prechecks_backtest_trueup_note():
    from tasks.pipeline.report import render_report

    prechecks = pl.DataFrame(
        {
            "check": ["meter data fresh", "fx rates"],
            "status": ["PASS", "WARN"],
            "figure": ["98.5%", "1 missing"],
            "threshold": [">= 95%", "0"],
            "detail": ["", "NZD"],
        }
    )
    backtest = pl.DataFrame(
        {
            "backtest_date": [dt.date(2026, 10, 1)] * 3,
            "window_to": [dt.date(2026, 10, 31)] * 3,
            "fuel": ["ELECTRICITY", "ELECTRICITY", "GAS"],
            "method": ["INTERVAL", "ALL", "ALL"],
            "segment": ["RES|NSW|CONSUMPTION", "ALL", "ALL"],
            "unit": ["KWH", "KWH", "MJ"],
            "registers": [3, 3, 2],
            "register_days": [90, 90, 60],
            "actual_volume": [1000.0, 1000.0, 500.0],
            "estimated_volume": [1100.0, 1100.0, 400.0],
            "bias_pct": [10.0, 10.0, -20.0],
            "mape_pct": [12.0, 12.0, 25.0],
            "wape_pct": [11.0, 11.0, 20.0],
        }
    )
    page = render_report(
        run_facts(),  # type: ignore[arg-type]
        hand_summary(),
        prechecks=prechecks,
        backtest=backtest,
        trueup=pl.DataFrame(),
    )
    # WARN listed before PASS, status coloured
    checks = table_after(page, "prechecks")
    assert checks[0] == ["Check", "Status", "Figure", "Threshold", "Detail"]
    assert checks[1] == ["fx rates", "WARN", "1 missing", "0", "NZD"] and checks[2][1] == "PASS"
    assert '<td class="status-WARN">WARN</td>' in page and "1 passed, 1 warned, 0 failed" in page
    bt = table_after(page, "backtest")
    assert bt[0][:4] == ["Method", "Customer class", "State", "Register"]
    assert "Actual (kWh)" in bt[0] and bt[1][:4] == ["Interval", "Residential", "NSW", "Consumption"]
    assert "Actual (MJ)" in table_after(page, "backtest", 1)[0]
    assert "No earlier run before 2026-11-01 to true up" in page
    assert page.count("<svg") == 3  # month × segment, state × fuel, back-test


def test_render_what_if_banner_and_comparison():
    from tasks.pipeline import presentation as P
    from tasks.pipeline.report import render_report

    booked = hand_summary()
    whatif = booked.with_columns(pl.col("net_amount_less_discount") * 2)
    page = render_report(run_facts("seasonal-fix"), whatif, comparison=P.compare_runs(whatif, booked))  # type: ignore[arg-type]
    assert "NOT the booked" in page and "what-if “seasonal-fix”" in page
    by_state = table_after(page, "comparison")
    assert by_state[0][:5] == [
        "State",
        "Booked accrual ($)",
        "What-if accrual ($)",
        "Difference ($)",
        "Difference (%)",
    ]
    assert by_state[-1][:5] == ["Total", "140.00", "280.00", "140.00", "100.0"]
    assert [table_after(page, "comparison", i)[0][0] for i in range(4)] == [
        "State",
        "Fuel",
        "Segment",
        "Month",
    ]
    no_booked = render_report(run_facts("x"), whatif)  # type: ignore[arg-type]
    assert "No booked run of 2026-11-01 to compare with" in no_booked


def test_chart_ids_are_unique_per_chart():
    import altair as alt

    from tasks.pipeline.report import chart_svg

    # a clipped mark gives the SVG a clipPath id; two charts inline must not share it
    chart = alt.Chart(pl.DataFrame({"x": [1, 2], "y": [3, 4]})).mark_line(clip=True).encode(x="x:Q", y="y:Q")
    a, b = chart_svg(chart, "one"), chart_svg(chart, "two")
    ids_a, ids_b = set(re.findall(r'id="([^"]+)"', a)), set(re.findall(r'id="([^"]+)"', b))
    assert ids_a and not ids_a & ids_b
    for ref in re.findall(r"url\(#([^)]+)\)", a):
        assert ref in ids_a


# ---------------------------------------------------------------- the engine's report (I/O)


def test_engine_report_true_to_the_export_links_and_same_bytes_on_a_rerun(engine_run):
    from tasks.pipeline.report import report_url

    path = Path(report_url(engine_run, R))
    page = path.read_text()
    assert path == Path(engine_run.output_url) / "report" / "2026-11-01" / "report.html"
    assert not re.search(r"<script|<link|<img|src=|url\(http|@import", page)
    # the total accrual is the sum of accrual_summary.csv's net_amount_less_discount (read independently)
    csv_dir = Path(engine_run.output_url) / "export" / "csv" / "2026-11-01"
    csv = pl.read_csv(csv_dir / "accrual_summary.csv")
    expected = f"{csv['net_amount_less_discount'].sum():,.2f}"
    assert table_after(page, "month-segment")[-1][-1] == expected
    assert table_after(page, "state-fuel")[-1][-1] == expected
    for ident in customer_identifiers(engine_run.db_url):
        assert ident not in page
    # the phase links the run's CSV folder, relatively (a copy of the tree, or a bucket served as a
    # website, keeps it working)
    hrefs = re.findall(r'<a href="([^"]+)"', page)
    assert (
        hrefs == ["../../export/csv/2026-11-01/"] and (path.parent / hrefs[0]).resolve() == csv_dir.resolve()
    )
    # write_report links each CSV found there, relatively
    from tasks.pipeline.report import ReportRun, read_report_frames, write_report

    run = ReportRun("run-x", R, dt.date(2025, 11, 1), dt.date(2026, 10, 31))
    other = Settings(database_url=engine_run.db_url, output_url=engine_run.output_url)
    copy = Path(write_report(other, run, read_report_frames(other.db_url, R)))
    hrefs = re.findall(r'<a href="([^"]+)"', copy.read_text())
    assert sorted(Path(h).name for h in hrefs) == sorted(p.name for p in csv_dir.glob("*.csv"))
    for h in hrefs:
        assert not h.startswith(("/", "file:", "http")) and (copy.parent / h).resolve().is_file()
    path.write_bytes(page.encode())  # the phase's page back (the rerun below must not change it)
    # the true-up against 2026-10-01 is there (the first run's report says there was no earlier run)
    assert "The accrual of the previous run (2026-10-01)" in page
    first = (Path(engine_run.output_url) / "report" / "2026-10-01" / "report.html").read_text()
    assert "No earlier run before 2026-10-01 to true up" in first

    before = path.read_bytes()
    accrue(engine_run, R, refresh=True)
    assert path.read_bytes() == before


def test_report_on_s3_with_presigned_links(engine_run, s3_bucket):
    """The report written to S3 (moto's server); its pre-signed links fetch the CSVs over HTTP."""
    from tasks.adapters import storage
    from tasks.pipeline.report import ReportRun, read_report_frames, report_url, write_report

    s3 = Settings(database_url=engine_run.db_url, output_url=f"{s3_bucket}/bua", shards=4)
    local = Path(engine_run.output_url) / "export" / "csv" / "2026-11-01"
    for f in sorted(local.glob("*.csv")):
        storage.write_bytes_atomic(f.read_bytes(), f"{s3_bucket}/bua/export/csv/2026-11-01/{f.name}", s3)
    run = ReportRun("run-s3", R, dt.date(2025, 11, 1), dt.date(2026, 10, 31))
    url = write_report(s3, run, read_report_frames(s3.db_url, R), presign_seconds=3600)
    assert url == report_url(s3, R) == f"{s3_bucket}/bua/report/2026-11-01/report.html"
    page = storage.read_bytes(url, s3).decode()
    hrefs = re.findall(r'<a href="([^"]+)"', page)
    assert len(hrefs) == len(list(local.glob("*.csv"))) and all("X-Amz-Signature" in h for h in hrefs)
    for h in hrefs:
        name = h.split("?")[0].rsplit("/", 1)[-1]
        with urllib.request.urlopen(h.replace("&amp;", "&")) as r:  # noqa: S310 - moto's local server
            assert r.read() == (local / name).read_bytes()
    # without pre-signing: relative links, the same as locally
    write_report(s3, run, read_report_frames(s3.db_url, R))
    page = storage.read_bytes(url, s3).decode()
    assert 'href="../../export/csv/2026-11-01/accrual_summary.csv"' in page


def test_same_page_whatever_order_the_rows_come_in():
    """A re-run found the exceptions chart's bars in another order (polars' group_by order varies):
    the page is the same bytes whatever the order of the input rows."""
    from tasks.pipeline.report import render_report

    exc = pl.DataFrame({"code": ["NO_HISTORY", "NO_PROFILE", "STALE_UNBILLED"], "count": [113, 10, 2]})
    pages = {
        render_report(
            run_facts(),  # type: ignore[arg-type]
            hand_summary().sample(fraction=1.0, shuffle=True, seed=seed),
            account_volumes=hand_volumes().sample(fraction=1.0, shuffle=True, seed=seed),
            exceptions=exc.sample(fraction=1.0, shuffle=True, seed=seed),
        )
        for seed in range(4)
    }
    assert len(pages) == 1


def test_validation_tables_put_totals_last_whatever_the_row_order():
    from tasks.pipeline.report import backtest_table, trueup_tables

    bt = pl.DataFrame(
        {
            "fuel": ["ELECTRICITY"] * 3,
            "method": ["ALL", "INTERVAL", "INTERVAL"],
            "segment": ["ALL", "ALL", "RES|NSW|CONSUMPTION"],
            "registers": [3, 3, 3],
            "register_days": [9, 9, 9],
            "actual_volume": [1.0, 1.0, 1.0],
            "estimated_volume": [1.0, 1.0, 1.0],
            "bias_pct": [0.0, 0.0, 0.0],
            "mape_pct": [0.0, 0.0, 0.0],
            "wape_pct": [0.0, 0.0, 0.0],
        }
    )
    assert backtest_table(bt, "ELECTRICITY")["row"].to_list() == ["detail", "subtotal", "total"]
    tu = pl.DataFrame(
        {
            "fuel": ["ALL", "GAS", "GAS"],
            "segment": ["ALL", "ALL", "SME"],
            **{c: [1, 1, 1] for c in ("accounts", "accounts_billed", "covered_days")},
            **{
                c: [1.0, 1.0, 1.0]
                for c in (
                    "accrued_volume",
                    "billed_volume",
                    "volume_difference",
                    "volume_difference_pct",
                    "accrued_net",
                    "billed_net",
                    "net_difference",
                    "net_difference_pct",
                    "accrued_net_total",
                )
            },
        }
    )
    money, usage = trueup_tables(tu)
    assert money["Fuel"].to_list() == ["Gas", "Gas", "Total"] and money["row"].to_list()[-1] == "total"
    assert usage["GAS"]["Segment"].to_list() == ["SME", "All"]


def test_each_reader_reads_only_its_frames_and_the_same_figures(engine_run):
    """The report, the Slack totals and the artifacts each read only the frames they show
    (``read_report_frames(only=...)``, :func:`account_count`, :func:`published_totals`): each subset
    is the same frames as the full read, and the counts agree with the exported CSVs, counted here
    independently (bua_account_summary.csv has one row per accrued account; bua_exception.csv one per
    exception)."""
    from tasks.pipeline.report import account_count, figures, published_totals, read_report_frames
    from tasks.pipeline.report.data import REPORT_FRAMES

    full = read_report_frames(engine_run.db_url, R)
    assert tuple(full) == REPORT_FRAMES
    for only in (
        ("summary",),
        ("backtest", "trueup"),
        ("trueup",),
        ("account_volumes", "exceptions", "prechecks"),
    ):
        part = read_report_frames(engine_run.db_url, R, only=only)
        assert tuple(part) == tuple(k for k in REPORT_FRAMES if k in only)
        for k, frame in part.items():
            assert (frame is None) == (full[k] is None)
            if frame is not None:
                assert frame.equals(full[k])
    csv_dir = Path(engine_run.output_url) / "export" / "csv" / "2026-11-01"
    accounts = pl.read_csv(csv_dir / "bua_account_summary.csv", infer_schema_length=0)
    exceptions = pl.read_csv(csv_dir / "bua_exception.csv", infer_schema_length=0)
    assert (
        account_count(engine_run.db_url, R)
        == accounts.height
        == int(full["account_volumes"]["accounts"].sum())
    )
    assert account_count(engine_run.db_url, dt.date(2026, 9, 1)) == 0  # no run that day
    totals = published_totals(engine_run.db_url, R)
    assert int(totals["accounts_by_state_fuel"]["accounts"].sum()) == accounts.height
    assert int(totals["exceptions_by_code"]["count"].sum()) == exceptions.height
    # by state and fuel: the exported accounts counted per (jurisdiction, service_type)
    by_hand = accounts.group_by("jurisdiction", "service_type").len().sort("jurisdiction", "service_type")
    assert totals["accounts_by_state_fuel"]["accounts"].to_list() == by_hand["len"].to_list()
    # the report's frames: what it renders, without the totals or the checks (which it gets as recorded)
    assert set(figures(engine_run.db_url, R)) == {"summary", "account_volumes", "exceptions"}
