"""Stable shard assignment.

Every register, site and account is assigned to one of ``n`` shards by a hash of the site's
identifier (NMI, or gas MIRN). The hash must never change between polars versions or machines
(the meter store is partitioned by it), so it is plain integer arithmetic on the identifier read
as a base-36 number, mixed with a Lehmer step: no library hash function is involved.
"""

from __future__ import annotations

import polars as pl

_P = 2_147_483_647  # 2^31 - 1
_A = 48_271


def shard_expr(identifier: pl.Expr | str, n_shards: int) -> pl.Expr:
    """Polars expression giving the shard (0..n_shards-1) of an NMI/MIRN column."""
    col = pl.col(identifier) if isinstance(identifier, str) else identifier
    as_int = (
        col.str.to_uppercase()
        .str.replace_all(r"[^0-9A-Z]", "0")
        .str.slice(0, 12)
        .str.to_integer(base=36, strict=False)
    )
    mixed = ((as_int % _P) * _A) % _P
    return (mixed % n_shards).cast(pl.Int32).alias("shard")


def shard_of(identifier: str, n_shards: int) -> int:
    """The shard of one identifier (same arithmetic as :func:`shard_expr`)."""
    return int(pl.select(shard_expr(pl.lit(identifier), n_shards)).item())
