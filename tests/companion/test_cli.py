"""`bua ingest billing-csv` and `bua alert` run their flows and say what happened."""

from __future__ import annotations

from typer.testing import CliRunner

from flows.cli import app
from tasks.companion.billing_ingest import load_fx_rates
from tests.companion.seed import T, insert, seed_reference
from tests.companion.test_billing_ingest import FX, HEADER, ROWS


def test_cli_ingest_and_alert(prefect_harness, tmp_path, monkeypatch):
    monkeypatch.delenv("BUA_SLACK_WEBHOOK_URL", raising=False)
    monkeypatch.setenv("BUA_TIMEZONE", "Australia/Sydney")
    url = f"sqlite:///{tmp_path}/bua.db"
    seed_reference(url)
    load_fx_rates(url, FX)
    src = tmp_path / "b.csv"
    src.write_text(HEADER + ROWS)
    runner = CliRunner()
    res = runner.invoke(
        app,
        ["--database-url", url, "ingest", "billing-csv", str(src), "--rejects-url", str(tmp_path / "rej")],
    )
    # 4 rows rejected (lines 6-9 of ROWS): exit 3 after the summary, the good rows loaded
    assert res.exit_code == 3, res.output
    assert f"{src}: 4 loaded, 0 already loaded, 4 rejected (rejects: {tmp_path / 'rej'}/b.csv." in res.output
    assert "error: 4 row(s) rejected in 1 file(s), the other rows loaded;" in res.output

    insert(
        url,
        "payment",
        [
            dict(
                id=1,
                account_id=2,
                payment_date=T(2025, 3, 1, 19),
                amount=1234.5,
                status="SETTLED",
                method="BPAY",
            )
        ],
    )
    res = runner.invoke(app, ["--database-url", url, "alert", "--window-end", "2025-03-02T12:00"])
    assert res.exit_code == 0, res.output
    assert (
        "Revenue for Sun 02 Mar 2025 06:00–12:00 AEDT: $1,234.50 from 1 transaction\n• ENDEAVOUR: $1,234.50 (1 transaction)"
        in res.output
    )
    assert '"posted": false' in res.output
