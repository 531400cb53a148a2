"""Keyed, shape-keeping pseudonyms for identifiers (NMI/MIRN, account number, meter serial, invoice number).

Method: every character keeps its class — a digit becomes a digit, an upper-case letter an upper-case
letter other than I and O (AEMO never allocates them in NMIs), a lower-case letter a lower-case
letter; any other character, and the first ``keep`` characters (an NMI's network allocation block),
stay as they are. The variable positions, read as one mixed-radix number split into two halves
(L, R), go through an 8-round alternating Feistel network (L += F(R) mod |L|, R += F(L) mod |R|)
whose round function is HMAC-SHA256(key, kind | shape | round | half): a keyed permutation of the
identifiers of one shape, so two identifiers never share a pseudonym, the same identifier gets the
same pseudonym in the database and the meter store, and the length and shape are kept (an NMI
stays 10 characters of its network's block). The work is numpy over whole columns; HMAC runs once
per distinct half-value and round (at most the number of distinct identifiers), never per row.

A permutation of the shape's domain may map an identifier onto another real identifier (at 113
NMIs in a block of 10^6, about 1%). :func:`pseudonym_map` is given every original of the copy and
moves such a pseudonym, by re-keyed rounds, to a value that is neither an original nor already
taken: the copy then holds no original identifier at all. Only those few (counted in the result)
depend on the set of originals, the rest on the key alone. Free text (names, places, file names)
gets ``{label}-{base32 of the HMAC, 12 chars}``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

import numpy as np
import polars as pl

DIGITS = b"0123456789"
UPPER = b"ABCDEFGHJKLMNPQRSTUVWXYZ"  # no I, no O
LOWER = b"abcdefghijklmnopqrstuvwxyz"
ROUNDS = 8
_ALPHABETS = (DIGITS, UPPER, LOWER)
_CLASS = np.full(256, -1, dtype=np.int8)
_INDEX = np.zeros(256, dtype=np.int64)
for _c, _alphabet in enumerate(_ALPHABETS):
    for _i, _ch in enumerate(_alphabet):
        _CLASS[_ch] = _c
        _INDEX[_ch] = _i
_RADIX = np.array([len(a) for a in _ALPHABETS], dtype=np.int64)
_HALF_LIMIT = 2**62


def _prf(key: bytes, label: str, values: np.ndarray, modulus: int) -> np.ndarray:
    """HMAC-SHA256(key, label|v) mod modulus for each v, computed once per distinct v."""
    uniq, inverse = np.unique(values, return_inverse=True)
    base = hmac.new(key, f"{label}|".encode(), hashlib.sha256)  # key pads and label hashed once

    def one(v: int) -> int:
        h = base.copy()
        h.update(str(v).encode())
        return int.from_bytes(h.digest()[:16], "big") % modulus

    out = np.fromiter((one(v) for v in uniq.tolist()), dtype=np.int64, count=len(uniq))
    return out[inverse.reshape(-1)]


def _shape(codes: np.ndarray, keep: int) -> tuple[np.ndarray, np.ndarray]:
    """Per position: its class (-1 fixed) and radix (1 when fixed); ``codes`` is n × length uint8."""
    cls = _CLASS[codes]
    cls[:, :keep] = -1
    return cls, np.where(cls >= 0, _RADIX[np.maximum(cls, 0)], 1)


def _permute_group(codes: np.ndarray, key: bytes, kind: str, keep: int, tweak: int) -> np.ndarray:
    """Pseudonyms of same-shape identifiers (rows of ``codes``): the Feistel permutation of their variable positions."""
    cls, radix = _shape(codes, keep)
    var = np.flatnonzero(cls[0] >= 0)
    # the variable positions, right-most first, as many as fit two 62-bit halves
    chosen: list[int] = []
    size = [1, 1]
    for pos in var[::-1]:
        half = len(chosen) % 2
        if size[half] * int(radix[0, pos]) >= _HALF_LIMIT:
            break
        size[half] *= int(radix[0, pos])
        chosen.append(int(pos))
    if not chosen:
        return codes
    digits = _INDEX[codes[:, chosen]]  # n × k, position order as chosen
    halves = [np.zeros(len(codes), dtype=np.int64), np.zeros(len(codes), dtype=np.int64)]
    for j, pos in enumerate(chosen):
        h = j % 2
        halves[h] = halves[h] * int(radix[0, pos]) + digits[:, j]
    shape = bytes(np.where(cls[0] >= 0, ord("#"), codes[0]).astype(np.uint8)).decode("latin-1")
    label = f"{kind}|{shape}|{tweak}"
    for r in range(ROUNDS):
        t = r % 2
        halves[t] = (halves[t] + _prf(key, f"{label}|{r}", halves[1 - t], size[t])) % size[t]
    out = codes.copy()
    for j in range(len(chosen) - 1, -1, -1):
        pos, h = chosen[j], j % 2
        rad = int(radix[0, pos])
        alphabet = np.frombuffer(_ALPHABETS[int(cls[0, pos])], dtype=np.uint8)
        out[:, pos] = alphabet[halves[h] % rad]
        halves[h] = halves[h] // rad
    return out


def _as_codes(values: list[str]) -> np.ndarray:
    width = len(values[0])
    return np.frombuffer("".join(values).encode("ascii"), dtype=np.uint8).reshape(len(values), width).copy()


def permute(values: pl.Series, key: bytes, kind: str, keep: int = 0, tweak: int = 0) -> pl.Series:
    """The keyed shape-keeping pseudonym of each distinct ASCII identifier (same order as ``values``)."""
    if values.len() == 0:
        return values.cast(pl.String)
    frame = pl.DataFrame({"v": values.cast(pl.String)}).with_row_index("_i")
    ascii_ok = pl.col("v").str.contains(r"^[\x20-\x7e]+$")
    bad = frame.filter(~ascii_ok | pl.col("v").is_null())
    if bad.height:
        raise ValueError(f"{kind}: {bad.height} identifier(s) are empty or not printable ASCII")
    parts = []
    for (_width,), group in frame.with_columns(pl.col("v").str.len_bytes().alias("_w")).group_by(
        "_w", maintain_order=True
    ):
        codes = _as_codes(group["v"].to_list())
        # one permutation per shape: positions' classes and fixed characters
        cls, _ = _shape(codes, keep)
        shape_key = np.where(cls >= 0, cls.astype(np.int16) - 16, codes.astype(np.int16))
        _, shape_id = np.unique(shape_key, axis=0, return_inverse=True)
        shape_id = shape_id.reshape(-1)
        out = np.empty_like(codes)
        for s in np.unique(shape_id):
            rows = np.flatnonzero(shape_id == s)
            out[rows] = _permute_group(codes[rows], key, kind, keep, tweak)
        width = codes.shape[1]
        parts.append(
            pl.DataFrame({"_i": group["_i"], "p": out.view(f"S{width}").reshape(-1).astype(f"U{width}")})
        )
    return pl.concat(parts).sort("_i")["p"].alias(values.name)


def text_pseudonym(values: pl.Series, key: bytes, label: str) -> pl.Series:
    """``{label}-{12 base32 characters of HMAC-SHA256}`` per distinct value (names, places, file names)."""
    uniq = values.drop_nulls().unique(maintain_order=True)
    mapped = [
        f"{label}-"
        + base64.b32encode(hmac.digest(key, f"{label}|{v}".encode(), hashlib.sha256)).decode()[:12]
        for v in uniq.to_list()
    ]
    return values.replace_strict(uniq, pl.Series(mapped, dtype=pl.String), default=None).alias(values.name)


def pseudonym_map(originals: pl.Series, key: bytes, kind: str, keep: int = 0) -> tuple[pl.DataFrame, int]:
    """``original`` → ``pseudonym`` for the distinct ``originals``; no pseudonym is an original or repeated.

    Returns the map and how many pseudonyms were moved off an original (re-keyed rounds)."""
    uniq = originals.drop_nulls().unique().sort()
    taken = set(uniq.to_list())
    out = pl.DataFrame({"original": uniq, "pseudonym": permute(uniq, key, kind, keep)})
    hits = out.filter(pl.col("pseudonym").is_in(uniq.implode()))
    if hits.height == 0:
        return out, 0
    fixed = out.filter(~pl.col("pseudonym").is_in(uniq.implode()))
    taken |= set(fixed["pseudonym"].to_list())
    moved: dict[str, str] = {}
    for value in hits["original"].to_list():  # rare: about |originals|^2 / |shape's domain|
        for tweak in range(1, 1000):
            p = permute(pl.Series([value]), key, kind, keep, tweak)[0]
            if p not in taken:
                break
        else:  # pragma: no cover - a domain almost full of originals
            raise ValueError(f"{kind}: no free pseudonym for one identifier (domain too small)")
        taken.add(p)
        moved[value] = p
    extra = pl.DataFrame({"original": list(moved), "pseudonym": list(moved.values())}, schema=out.schema)
    return pl.concat([fixed, extra]).sort("original"), len(moved)
