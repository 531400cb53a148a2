"""A tiny billing database shared by the alert and aggregation tests (three accounts on three networks)."""

from __future__ import annotations

import datetime as dt

import polars as pl

from tasks.adapters.db import init_db, insert_frame, transaction

D = dt.date
T = dt.datetime


def seed_reference(url: str) -> None:
    """Schema plus NSW, three networks, accounts 1–3 (A-001…A-003) each on its own site."""
    init_db(url)
    rows = {
        "jurisdiction": pl.DataFrame({"id": [1], "code": ["NSW"], "timezone": ["Australia/Sydney"]}),
        "network": pl.DataFrame(
            {
                "id": [1, 2, 3],
                "code": ["AUSGRID", "ENDEAVOUR", "ESSENTIAL"],
                "name": ["Ausgrid", "Endeavour Energy", "Essential Energy"],
                "jurisdiction_id": [1, 1, 1],
                "service_type": ["ELECTRICITY"] * 3,
            }
        ),
        "journal_segment": pl.DataFrame({"id": [1], "name": ["RESIDENTIAL"]}),
        "account": pl.DataFrame(
            {
                "id": [1, 2, 3],
                "account_number": ["A-001", "A-002", "A-003"],
                "customer_class": ["RES"] * 3,
                "journal_segment_id": [1] * 3,
                "service_type": ["ELECTRICITY"] * 3,
                "billing_cycle_months": [1] * 3,
                "open_date": [D(2024, 1, 1)] * 3,
            }
        ),
        "site": pl.DataFrame(
            {
                "id": [1, 2, 3],
                "identifier": ["4102000001", "4310000002", "4407000003"],
                "service_type": ["ELECTRICITY"] * 3,
                "network_id": [1, 2, 3],
                "jurisdiction_id": [1] * 3,
            }
        ),
        "account_site": pl.DataFrame(
            {"account_id": [1, 2, 3], "site_id": [1, 2, 3], "start_date": [D(2024, 1, 1)] * 3}
        ),
    }
    with transaction(url) as conn:
        for table, df in rows.items():
            insert_frame(conn, table, df)


def insert(url: str, table: str, rows: list[dict]) -> None:
    with transaction(url) as conn:
        insert_frame(conn, table, pl.DataFrame(rows))
