"""The report as a reader sees it: rendered by headless Chromium (Debian's ``chromium``; .ci/run
installs it), no console error, every chart there with its title, tables within the page, no two
labels of a chart on top of each other, and a screenshot of the whole page.

The screenshot is kept at ``$BUA_TEST_ARTIFACTS/report.png`` (default
``{tempdir}/bua-test-artifacts/report.png``) for a person to look at.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from pathlib import Path

import polars as pl
import pytest

from tests.chromium import Page, chromium_binary
from tests.test_report import engine_run, hand_summary, run_facts  # noqa: F401 - the module's fixture

pytestmark = pytest.mark.skipif(
    chromium_binary() is None, reason="chromium is not installed (apt-get install -y chromium; .ci/run does)"
)
R = dt.date(2026, 11, 1)
ARTIFACTS = Path(os.environ.get("BUA_TEST_ARTIFACTS") or Path(tempfile.gettempdir()) / "bua-test-artifacts")
VIEWPORT = 1280  # a laptop screen; the page's content is at most 1,100 px wide

CHART_TITLES = (
    "Accrual by month and segment ($, ex GST)",
    "Accrual by state and fuel ($, ex GST)",
    "Unbilled usage: actual vs estimated share (%)",
    "Exceptions by code",
    "Back-test: bias and WAPE of the estimate vs the actuals (%)",
    "True-up: accrued vs billed since, covered days ($, ex GST)",
)

# the boxes of every visible text element of each chart (Vega hides the labels it thins out with
# opacity 0), and the pairs that overlap by more than 1 px
OVERLAPS_JS = """
(() => {
  const out = {};
  for (const svg of document.querySelectorAll('svg[id^="chart-"]')) {
    const boxes = [...svg.querySelectorAll('text')]
      .filter(t => t.textContent.trim() !== '' && t.checkVisibility({opacityProperty: true, visibilityProperty: true}))
      .map(t => ({text: t.textContent, r: t.getBoundingClientRect()}));
    const bad = [];
    for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
      const a = boxes[i].r, b = boxes[j].r;
      const w = Math.min(a.right, b.right) - Math.max(a.left, b.left);
      const h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
      if (w > 1 && h > 1) bad.push([boxes[i].text, boxes[j].text]);
    }
    out[svg.id] = {texts: boxes.length, overlaps: bad};
  }
  return out;
})()
"""

WIDE_JS = """
(() => [...document.querySelectorAll('table, svg')]
  .map(e => ({tag: e.tagName, id: e.id, right: Math.ceil(e.getBoundingClientRect().right)}))
  .filter(e => e.right > document.documentElement.clientWidth))()
"""


def test_report_in_chromium_no_errors_charts_present_fits_the_page(engine_run):  # noqa: F811
    from tasks.pipeline.report import report_url

    path = Path(report_url(engine_run, R))
    with Page(width=VIEWPORT, height=900) as page:
        page.open(path.resolve().as_uri())
        assert page.errors() == []
        # the six charts, each an inline SVG with its title
        ids = page.evaluate("[...document.querySelectorAll('svg[id^=\"chart-\"]')].map(s => s.id)")
        assert ids == [
            "chart-month-segment",
            "chart-state-fuel",
            "chart-share",
            "chart-exceptions",
            "chart-backtest",
            "chart-trueup",
        ]
        texts = page.evaluate("[...document.querySelectorAll('svg text')].map(t => t.textContent)")
        for title in CHART_TITLES:
            assert title in texts
        # every chart drew marks: bars are paths in Vega's SVG
        marks = page.evaluate(
            "[...document.querySelectorAll('svg[id^=\"chart-\"]')].map(s => s.querySelectorAll('g.mark-rect path, g.mark-rect rect').length)"
        )
        assert all(n > 0 for n in marks), marks
        # nothing wider than the window: no horizontal scrolling
        assert page.evaluate(WIDE_JS) == []
        assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
        # no chart has two labels on top of each other (the back-test chart had)
        overlaps = page.evaluate(OVERLAPS_JS)
        assert overlaps["chart-backtest"]["texts"] > 20
        assert {k: v["overlaps"] for k, v in overlaps.items() if v["overlaps"]} == {}
        shot = page.screenshot(ARTIFACTS / "report.png")
    assert shot.stat().st_size > 50_000
    print(f"screenshot: {shot}")


def test_what_if_report_in_chromium(tmp_path):
    from tasks.pipeline import presentation as P
    from tasks.pipeline.report import render_report

    booked = hand_summary()
    whatif = booked.with_columns(pl.col("net_amount_less_discount") * 1.1)
    html = render_report(run_facts("tariff-fix"), whatif, comparison=P.compare_runs(whatif, booked))  # type: ignore[arg-type]
    (tmp_path / "whatif.html").write_text(html)
    with Page(width=VIEWPORT) as page:
        page.open((tmp_path / "whatif.html").as_uri())
        assert page.errors() == []
        assert "chart-comparison" in page.evaluate("[...document.querySelectorAll('svg')].map(s => s.id)")
        assert page.evaluate(WIDE_JS) == []
        page.screenshot(ARTIFACTS / "report-what-if.png")


def test_the_browser_check_sees_errors(tmp_path):
    """The check can fail: a broken image and a script error are reported."""
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><img src='missing.png'><script>console.error('boom')</script></body></html>")
    with Page() as page:
        page.open(bad.as_uri())
        errors = page.errors()
    assert any("missing.png" in e for e in errors) and any("boom" in e for e in errors)


def test_the_overlap_check_sees_overlapping_labels(tmp_path):
    """The label check can fail: an axis told not to thin out 40 labels on 200 px overlaps."""
    import altair as alt

    from tasks.pipeline.report import chart_svg

    df = pl.DataFrame({"x": [f"label number {i}" for i in range(40)], "y": list(range(40))})
    chart = (
        alt.Chart(df)
        .mark_bar()
        .encode(x=alt.X("x:N", axis=alt.Axis(labelOverlap=False, labelAngle=0)), y="y:Q")
        .properties(width=200)
    )
    (tmp_path / "o.html").write_text(f"<html><body>{chart_svg(chart, 'chart-o')}</body></html>")
    with Page() as page:
        page.open((tmp_path / "o.html").as_uri())
        assert page.evaluate(OVERLAPS_JS)["chart-o"]["overlaps"]
