"""The NEM12 writer: records as MDFF lays them out, and nemreader reads back the same values."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from nemreader import NEMFile

from tasks.adapters.nem12_write import nem12_text

CREATED = dt.datetime(2024, 2, 1, 9, 30)


def _days() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "nmi": ["NMI0000001", "NMI0000001", "NMI0000001", "NMI0000002"],
            "suffix": ["E1", "E1", "E1", "B1"],
            "read_date": [dt.date(2024, 1, 1), dt.date(2024, 1, 2), dt.date(2024, 1, 4), dt.date(2024, 1, 1)],
            "interval_minutes": [30, 30, 30, 15],
            "unit": ["KWH"] * 4,
            "values": [[0.1 * i for i in range(48)], [1.0] * 48, [2.5] * 48, [0.25] * 96],
            "quality": ["A" * 48, "A" * 10 + "E" * 38, "E" * 48, "A" * 96],
            "update_datetime": [dt.datetime(2024, 1, 5, 1, 2, 3)] * 4,
        }
    )


def test_records_follow_mdff_layout() -> None:
    lines = nem12_text(_days(), created=CREATED, from_participant="MDP1", to_participant="RET1").split("\r\n")
    assert lines[0] == "100,NEM12,202402010930,MDP1,RET1"
    assert lines[-2:] == ["900", ""]
    kinds = [ln.split(",")[0] for ln in lines[:-1]]
    # NMI 1: 200 for the run 1-2 Jan, 300 A, 300 V + two 400s; a new 200 after the gap; NMI 2: 200, 300
    assert kinds == ["100", "200", "300", "300", "400", "400", "200", "300", "200", "300", "900"]
    assert lines[1] == "200,NMI0000001,E1,,E1,,,kWh,30,"
    v_day = lines[3].split(",")
    assert (
        v_day[1] == "20240102"
        and len(v_day) == 2 + 48 + 5
        and v_day[50] == "V"
        and v_day[53] == "20240105010203"
    )
    assert lines[4] == "400,1,10,A,," and lines[5] == "400,11,48,E,,"
    assert lines[7].split(",")[50] == "E"  # all-estimated day: E, no 400
    assert lines[8] == "200,NMI0000002,B1,,B1,,,kWh,15,"


def test_method_flag_is_appended_to_estimates() -> None:
    df = _days().with_columns(pl.lit("52").alias("method_flag"))
    text = nem12_text(df, created=CREATED)
    assert "400,11,48,E52,," in text and "400,1,10,A,," in text
    assert ",E52,,,20240105010203," in text


def test_nemreader_reads_back_the_same_values(tmp_path: Path) -> None:
    src = _days()
    path = tmp_path / "out.csv"
    path.write_text(nem12_text(src, created=CREATED), newline="")
    got = pl.from_pandas(
        NEMFile(str(path), strict=True).get_data_frame()[["nmi", "suffix", "t_start", "value", "quality"]]
    )
    expected = (
        src.with_columns(pl.col("quality").str.split(""))
        .explode("values", "quality")
        .with_columns(pl.int_range(pl.len()).over("nmi", "suffix", "read_date").alias("i"))
        .select(
            "nmi",
            "suffix",
            (
                pl.col("read_date").cast(pl.Datetime("ns"))
                + pl.duration(minutes=pl.col("i") * pl.col("interval_minutes"))
            ).alias("t_start"),
            pl.col("values").alias("value"),
            "quality",
        )
    )
    assert got.height == 48 * 3 + 96
    assert got.sort("nmi", "suffix", "t_start").equals(expected.sort("nmi", "suffix", "t_start"))


def test_rejects_wrong_number_of_values() -> None:
    bad = _days().with_columns(
        pl.when(pl.col("suffix") == "B1").then(pl.lit([1.0] * 95)).otherwise(pl.col("values")).alias("values")
    )
    with pytest.raises(ValueError, match="NMI0000002 B1 2024-01-01: 95 values"):
        nem12_text(bad, created=CREATED)


def test_same_input_same_bytes() -> None:
    a = nem12_text(_days(), created=CREATED)
    b = nem12_text(_days().reverse(), created=CREATED)
    assert a == b


def test_values_never_use_exponents() -> None:
    df = _days().head(1).with_columns(pl.lit([1e-7, 2.0, 0.1, 1.23e-5] + [0.5] * 44).alias("values"))
    fields = nem12_text(df, created=CREATED).split("\r\n")[2].split(",")
    assert fields[2:6] == ["0.0000001", "2", "0.1", "0.0000123"]


def test_rejects_negative_values() -> None:
    bad = _days().head(1).with_columns(pl.lit([-1.0] + [0.5] * 47).alias("values"))
    with pytest.raises(ValueError, match="none negative or missing"):
        nem12_text(bad, created=CREATED)
