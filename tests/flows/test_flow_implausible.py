"""One wild meter value must not move anyone else's accrual (issue 17, item 1).

The meter store of the generated 150-account portfolio gets ONE interval value of 99,999,999 kWh
(then ``inf`` and a stored ``NaN``) on one register-day. bua must report that register-day as
IMPLAUSIBLE_VALUE and treat it as missing data: the run is then the same, account by account and
byte for byte, as the run on a store where that register-day's intervals are missing (quality
N). Against the untouched store only the missing day's own effect remains (one register-day less
in its segment's profile): the affected account is estimated as for a missing day, every other
figure moves by no more than that.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import polars as pl
import pytest

from tasks.settings import Settings
from tests.flows.conftest import R, output_digests, run_monthly

pytestmark = pytest.mark.usefixtures("harness")
D = R - dt.timedelta(days=4)  # a day inside every interval account's unbilled window
WILD = 99_999_999.0
MIN_REGISTERS = 3
PER_ACCOUNT = {"invoice_line_item_monthly": "account_id", "bua_account_summary": "account_id"}


def _partition(settings: Settings, nmi: str) -> Path:
    files = [p for p in Path(settings.meter_store).rglob("data.parquet") if f"month={D:%Y-%m}" in str(p)]
    for f in sorted(files):
        if pl.read_parquet(f).filter((pl.col("nmi") == nmi) & (pl.col("read_date") == D)).height:
            return f
    raise AssertionError(f"no partition holds {nmi} on {D}")


def _registers(settings: Settings, n: int) -> list[tuple[str, str]]:
    """``n`` residential consumption registers (nmi, suffix), all-actual on D, of different sites."""
    with sqlite3.connect(settings.db_url.removeprefix("sqlite:///")) as conn:
        res = {r[0] for r in conn.execute(
            "SELECT s.identifier FROM site s JOIN account_site x ON x.site_id = s.id "
            "JOIN account a ON a.id = x.account_id WHERE a.customer_class = 'RES'")}  # fmt: skip
    store = pl.concat([pl.read_parquet(p) for p in Path(settings.meter_store).rglob("data.parquet")
                       if f"month={D:%Y-%m}" in str(p)])  # fmt: skip
    ok = store.filter(
        (pl.col("read_date") == D) & (pl.col("suffix") == "E1") & pl.col("nmi").is_in(sorted(res))
        & ~pl.col("quality").str.contains("[^A]")
    ).sort("nmi")  # fmt: skip
    return [(r["nmi"], r["suffix"]) for r in ok.head(n).iter_rows(named=True)]


def _edit(settings: Settings, nmi: str, suffix: str, value: float | None) -> None:
    """Set an interval (a third into the day) of (nmi, suffix, D) to ``value``; None: the whole day missing (quality N)."""
    path = _partition(settings, nmi)
    df = pl.read_parquet(path)
    at = df.with_row_index("i").filter(
        (pl.col("nmi") == nmi) & (pl.col("suffix") == suffix) & (pl.col("read_date") == D)
    )["i"][0]
    values, quality = df["values"].to_list(), df["quality"].to_list()
    if value is None:
        quality[at] = "N" * len(quality[at])
    else:
        values[at][len(values[at]) // 3] = value
    df = df.with_columns(pl.Series("values", values, dtype=df["values"].dtype), pl.Series("quality", quality))
    df.write_parquet(path)


def _rows(settings: Settings) -> dict[str, pl.DataFrame]:
    """Output tables of the run (run_id left out: each run has its own)."""
    with sqlite3.connect(settings.db_url.removeprefix("sqlite:///")) as conn:
        out = {}
        for table in (*PER_ACCOUNT, "bua_exception", "estimated_basic_read"):
            cur = conn.execute(f"SELECT * FROM {table} WHERE run_date = ?", (R.isoformat(),))
            cols = [c[0] for c in cur.description]
            frame = pl.DataFrame(cur.fetchall(), schema=cols, orient="row", infer_schema_length=None)
            out[table] = frame.drop("run_id").sort(pl.all())
    return out


def _run(loaded: Path, root: Path, edits: list[tuple[str, str, float | None]]) -> tuple[Settings, dict]:
    from tests.portfolio import copy_of

    # segments of 3 registers make profiles (at the default 20, the 150-account portfolio has none)
    settings = copy_of(loaded, root, min_registers=MIN_REGISTERS)
    for nmi, suffix, value in edits:
        _edit(settings, nmi, suffix, value)
    outcome = run_monthly(settings)
    assert outcome.error is None, outcome.error
    return settings, _rows(settings)


def _nem12(settings: Settings) -> dict[str, str]:
    return {k: v for k, v in output_digests(settings).items() if k.startswith("nem12")}


def _same_accounts(run: dict, missing: dict, extra_exceptions: dict[int, int]) -> None:
    """Every account's output rows equal ``missing``'s; exception counts differ by ``extra_exceptions``."""
    assert run["invoice_line_item_monthly"].equals(missing["invoice_line_item_monthly"])
    summary = run["bua_account_summary"]
    assert summary.drop("exception_count").equals(missing["bua_account_summary"].drop("exception_count"))
    extra = pl.col("account_id").replace_strict(extra_exceptions, default=0, return_dtype=pl.Int64)
    expected = missing["bua_account_summary"].select("account_id", pl.col("exception_count") + extra)
    assert summary.select("account_id", "exception_count").equals(expected)


def _implausible(rows: dict[str, pl.DataFrame]) -> pl.DataFrame:
    return rows["bua_exception"].filter(pl.col("code") == "IMPLAUSIBLE_VALUE")


@pytest.fixture(scope="module")
def clean(loaded: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, dict]:
    return _run(loaded, tmp_path_factory.mktemp("clean") / "run", [])


def test_one_wild_value_is_an_exception_and_estimated_like_missing_data(loaded, tmp_path, clean):
    (nmi, suffix), = _registers(clean[0], 1)  # fmt: skip
    missing_s, missing = _run(loaded, tmp_path / "missing", [(nmi, suffix, None)])
    wild_s, wild = _run(loaded, tmp_path / "wild", [(nmi, suffix, WILD)])
    exc = _implausible(wild)
    assert exc.height == 1, exc
    # 99,999,999 kWh in 5/15/30 minutes is far above a residential 50 kW supply's cap (50 × 0.5 h = 25 kWh)
    assert exc["detail"][0].startswith(
        f"register {nmi}/{suffix} on {D}: interval value 99999999.000 kWh is above"
    )
    account = exc["account_id"][0]
    # the register has a segment profile and a scalar of its own: the profile path is exercised
    own = wild["bua_exception"].filter(pl.col("meter_register_id") == exc["meter_register_id"][0])
    assert own["code"].to_list() == ["IMPLAUSIBLE_VALUE"], own
    assert _implausible(missing).height == 0
    # every account, the affected one included, as when that register-day is missing: same rows, same NEM12 bytes
    _same_accounts(wild, missing, {account: 1})
    assert wild["estimated_basic_read"].equals(missing["estimated_basic_read"])
    assert (
        wild["bua_exception"].filter(pl.col("code") != "IMPLAUSIBLE_VALUE").equals(missing["bua_exception"])
    )
    assert _nem12(wild_s) == _nem12(missing_s)
    # versus the untouched store: the accrual moves by the missing day's effect only (a few dollars,
    # not the $56M the wild value once booked)
    total = {name: r["bua_account_summary"]["net_amount"].cast(pl.Float64).sum()
             for name, r in (("clean", clean[1]), ("wild", wild))}  # fmt: skip
    assert abs(total["wild"] - total["clean"]) < 0.001 * total["clean"], total
    mine = wild["bua_account_summary"].filter(pl.col("account_id") == account)
    assert mine["volume"].cast(pl.Float64)[0] < 10_000  # estimated, not 99,999,999 kWh


def test_inf_and_nan_in_the_store_do_not_crash_the_run(loaded, tmp_path, clean):
    (n1, s1), (n2, s2) = _registers(clean[0], 2)
    missing_s, missing = _run(loaded, tmp_path / "missing", [(n1, s1, None), (n2, s2, None)])
    bad_s, bad = _run(loaded, tmp_path / "bad", [(n1, s1, float("inf")), (n2, s2, float("nan"))])
    details = sorted(_implausible(bad)["detail"].to_list())
    assert details == sorted([
        f"register {n1}/{s1} on {D}: interval value inf is not a finite number; the day is left out of "
        "profiles and scalars and estimated",
        f"register {n2}/{s2} on {D}: interval value NaN is not a finite number; the day is left out of "
        "profiles and scalars and estimated",
    ])  # fmt: skip
    _same_accounts(bad, missing, dict.fromkeys(_implausible(bad)["account_id"].to_list(), 1))
    assert _nem12(bad_s) == _nem12(missing_s)
