"""What the demo has to work with: counts from the billing database and the meter store.

Accounts by fuel and by billing cycle, meters by installation type, interval register-days in the
meter store (one row per register-day, DESIGN: meter store), basic reads and invoices by status.
Queries are SQLAlchemy Core over ``sql.schema`` (counts only, no dataset the engine reads).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from sql.schema import account, basic_read, invoice, meter
from tasks.adapters.db import engine_for
from tasks.settings import Settings


def _grouped(conn: sa.Connection, column: sa.Column) -> dict[str, int]:
    rows = conn.execute(sa.select(column, sa.func.count()).group_by(column).order_by(column)).all()
    return {str(k): int(n) for k, n in rows}


def interval_register_days(settings: Settings) -> int:
    """Rows (register-days) in ``{meter_store}/interval`` (deltas folded); 0 when nothing has been ingested."""
    from tasks.adapters.meter_store import register_day_count

    return register_day_count(settings)


def inventory(settings: Settings) -> dict[str, Any]:
    """Counts for the demo (nested dict, JSON-ready)."""
    with engine_for(settings.db_url).connect() as conn:
        out: dict[str, Any] = {
            "accounts": int(conn.execute(sa.select(sa.func.count()).select_from(account)).scalar_one()),
            "accounts_by_fuel": _grouped(conn, account.c.service_type),
            "accounts_by_billing_cycle_months": _grouped(conn, account.c.billing_cycle_months),
            "meters_by_installation_type": _grouped(conn, meter.c.installation_type),
            "basic_reads": int(conn.execute(sa.select(sa.func.count()).select_from(basic_read)).scalar_one()),
            "invoices_by_status": _grouped(conn, invoice.c.status),
        }
    out["interval_register_days"] = interval_register_days(settings)
    return out


def format_inventory(inv: dict[str, Any]) -> str:
    """A short aligned text table of :func:`inventory`."""
    lines = []
    for key, value in inv.items():
        if isinstance(value, dict):
            parts = ", ".join(f"{k} {v:,}" for k, v in value.items())
            lines.append(f"{key.replace('_', ' '):<36} {parts}")
        else:
            lines.append(f"{key.replace('_', ' '):<36} {value:,}")
    return "\n".join(lines)
