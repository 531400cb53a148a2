"""The external billing engine as a phase of the month end (issue 16): with ``BUA_ENGINE_ENABLED`` the
run scales the engine's deployments up (the real kubernetes client against tests/legacy/fake_k8s.py),
starts its invoice run over HTTP, publishes the engine's lines instead of rating's, and scales down.

The stand-in engine writes two lines for one account (tests/legacy/test_billing_engine.py's LINES), so
the run's ``invoice_line_item_monthly`` is exactly those two rows: net 93.75 + 31.00 = 124.75 and GST
9.38 + 3.10 = 12.48, quantity_estimated 312.5 - 300 = 12.5 (by hand from the inserted values).
"""

from __future__ import annotations

import sqlite3

import pytest
import sqlalchemy as sa

from tasks.settings import Settings
from tests.flows.conftest import run_monthly
from tests.legacy import fake_k8s
from tests.legacy.test_billing_engine import ENGINE_DDL, LINES

pytestmark = pytest.mark.usefixtures("harness")


def test_the_engine_phase_publishes_the_engines_lines_and_scales_down(settings: Settings) -> None:
    db = settings.db_url.removeprefix("sqlite:///")
    booked = run_monthly(settings)
    assert booked.error is None, booked.error
    with sqlite3.connect(db) as conn:
        (account,) = conn.execute("SELECT MIN(account_id) FROM invoice_line_item_monthly").fetchone()
    eng = sa.create_engine(settings.db_url)
    with eng.begin() as c:
        for ddl in ENGINE_DDL[1:]:  # the portfolio has its own account table
            c.execute(sa.text(ddl))

    def on_start(run_date: str) -> None:  # the engine's invoice run writes its lines
        with eng.begin() as c:
            for sql in LINES:
                c.execute(sa.text(sql.format(d=run_date).replace(" 7, 202610", f" {account}, 202610")))

    state = fake_k8s.State({"engine-api": fake_k8s.Deployment()}, on_start=on_start)
    server, host = fake_k8s.serve(state)
    try:
        with_engine = settings.model_copy(update={
            "engine_enabled": True, "engine_kube_host": host, "engine_deployments": {"engine-api": 2},
            "engine_trigger": "http", "engine_http_url": f"{host}/engine", "engine_timeout_seconds": 30.0,
            "engine_poll_seconds": 0.05,
        })  # fmt: skip
        outcome = run_monthly(with_engine)
    finally:
        server.shutdown()
    assert outcome.error is None, outcome.error
    assert outcome.states["engine_lines"] == "Completed"
    scales = [(p.split("/")[-2], b["spec"]["replicas"]) for m, p, b in state.requests if m == "PATCH"]
    assert scales == [("engine-api", 2), ("engine-api", 0)]
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT account_id, plan_item_type_name, quantity_estimated, net_amount, gst_amount"
            " FROM invoice_line_item_monthly WHERE run_id = ? ORDER BY plan_item_type_name",
            (outcome.result["run_id"],),
        ).fetchall()
    assert [(a, t, float(q), float(n), float(g)) for a, t, q, n, g in rows] == [
        (account, "DAILY_RETAIL", 0.0, 31.0, 3.1),
        (account, "USAGE_RETAIL", 12.5, 93.75, 9.38),
    ]
