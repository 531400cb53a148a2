"""The run's HTML report (SPEC §6): charts scaled right, totals as summed by hand, self-contained,
no customer identifiers, the same bytes on a re-run, validation results when there are some."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import polars as pl
import pytest

from tasks.settings import Settings
from tests.engine import accrue
from tests.portfolio import generated_and_loaded

R = dt.date(2026, 11, 1)


@pytest.fixture(scope="module")
def engine_run(tmp_path_factory: pytest.TempPathFactory, harness: str) -> Settings:
    """A 120-account generated portfolio, loaded, ingested and accrued once by ``bua_monthly``."""

    base = generated_and_loaded(tmp_path_factory.mktemp("report"))
    s = Settings(
        database_url=f"sqlite:///{base}/bua.db",
        meter_store=str(base / "ms"),
        output_url=str(base / "out"),
        shards=4,
        slack_webhook_url=None,
    )
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


def test_bar_chart_scales_bars_between_the_extremes():
    from tasks.pipeline.report import bar_chart

    svg = bar_chart(["a", "b", "c"], {"x": [100.0, 50.0, -50.0]}, "t")
    # By hand: plot 300 - 30 (head) - 60 (foot) = 210 px tall for the span 100 - (-50) = 150, so
    # 1.4 px per unit; zero sits at 30 + 100 * 1.4 = 170. a: 140 px from y 30; b: 70 px from
    # y 100; c: 70 px below zero, from y 170.
    bars = re.findall(r'<rect x="[^"]+" y="([^"]+)" width="[^"]+" height="([^"]+)"', svg)
    assert bars[:3] == [("30", "140"), ("100", "70"), ("170", "70")]
    assert len(bars) == 4 and ">x</text>" in svg  # and the legend's swatch for series x
    assert svg.startswith("<svg") and svg.endswith("</svg>")


def hand_frames() -> dict[str, pl.DataFrame]:
    return {
        "by_state_fuel": pl.DataFrame(
            {
                "state": ["NSW", "VIC"],
                "fuel": ["ELECTRICITY", "GAS"],
                "net_amount": [100.0, 50.0],
                "discount_net_propensity": [10.0, 0.0],
                "net_amount_less_discount": [90.0, 50.0],
                "volume": [300.0, 2000.0],
            }
        ),
        "accounts_by_state_fuel": pl.DataFrame(
            {"state": ["NSW", "VIC"], "fuel": ["ELECTRICITY", "GAS"], "accounts": [3, 2]}
        ),
        "by_month_segment": pl.DataFrame(
            {
                "year_mnth": [202609, 202610, 202610],
                "segment": ["RES", "RES", "SME"],
                "net_amount": [40.0, 60.0, 50.0],
                "discount_net_propensity": [4.0, 6.0, 0.0],
                "net_amount_less_discount": [36.0, 54.0, 50.0],
            }
        ),
        "estimated_share": pl.DataFrame(
            {"fuel": ["ELECTRICITY"], "segment": ["RES"], "volume_actual": [75.0], "volume_estimated": [25.0]}
        ),
        "exceptions_by_code": pl.DataFrame({"code": ["NO_READS", "STALE"], "count": [4, 1]}),
    }


def _ctx() -> object:
    from tasks.pipeline.datasets import PhaseContext
    from tasks.pipeline.spec import resolve_run

    settings = Settings(shards=4)
    return PhaseContext(resolve_run(settings, R), settings)


def test_render_totals_shares_and_no_validation_results():
    from tasks.pipeline.report import render

    page = render(_ctx(), hand_frames())  # type: ignore[arg-type]
    # Totals by hand: net 100 + 50 = 150.00, discount 10 + 0 = 10.00, accrual 90 + 50 = 140.00, 3 + 2 accounts
    total = re.search(r"<caption>Total</caption>.*?</table>", page)
    assert total is not None
    cells = re.findall(r'<td class="n">([^<]*)</td>', total.group(0))
    assert cells == ["5", "150.00", "10.00", "140.00"]
    # estimated share 25 / (75 + 25) = 25.0 %, actual 75.0 %
    assert '<td class="n">75.00</td><td class="n">25.00</td></tr>' in page
    assert "<td>202610</td>" in page  # a month, not the number 202,610
    assert page.count("<svg") == 3  # month × segment, share, exceptions
    assert "no validation results for this run date" in page


def test_render_validation_tables_with_their_charts():
    from tasks.pipeline.report import render

    frames = hand_frames()
    frames["bua_backtest"] = pl.DataFrame(
        {
            "fuel": ["ELECTRICITY", "GAS"],
            "segment": ["RES", "ALL"],
            "bias_pct": [-2.5, 4.0],
            "mape_pct": [8.0, 12.5],
        }
    )
    frames["bua_trueup"] = pl.DataFrame(
        {"fuel": ["ALL"], "segment": ["ALL"], "accrued_net": [1000.0], "billed_net": [1100.0]}
    )
    page = render(_ctx(), frames)  # type: ignore[arg-type]
    assert "no validation results" not in page
    assert "Back-test" in page and "True-up" in page
    assert "<th>bias_pct</th><th>mape_pct</th>" in page and '<td class="n">-2.50</td>' in page
    assert '<td class="n">1,100.00</td>' in page
    assert page.count("<svg") == 5


def test_engine_report_is_self_contained_true_to_the_export_and_the_same_bytes_on_a_rerun(engine_run):
    from tasks.pipeline.report import report_url

    path = Path(report_url(engine_run, R))
    page = path.read_text()
    assert path == Path(engine_run.output_url) / "report" / "2026-11-01" / "report.html"
    # self-contained: no scripts, no linked files, no URL but the SVG namespace
    assert not re.search(r"<script|<link|<img|src=|href=|url\(|@import", page)
    assert set(re.findall(r"https?://[^\"' )]+", page)) <= {"http://www.w3.org/2000/svg"}
    # the total accrual is the sum of accrual_summary.csv's net_amount_less_discount (read independently)
    csv = pl.read_csv(Path(engine_run.output_url) / "export" / "csv" / "2026-11-01" / "accrual_summary.csv")
    expected = f"{csv['net_amount_less_discount'].sum():,.2f}"
    total = re.search(r"<caption>Total</caption>.*?</table>", page)
    assert total is not None and f'<td class="n">{expected}</td>' in total.group(0)
    for ident in customer_identifiers(engine_run.db_url):
        assert ident not in page
    # every segment of the summary appears in the month × segment table
    for seg in csv["segment"].drop_nulls().unique():
        assert f"<td>{seg.replace('&', '&amp;')}</td>" in page

    before = path.read_bytes()
    accrue(engine_run, R, refresh=True)
    assert path.read_bytes() == before
