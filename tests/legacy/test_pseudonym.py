"""Keyed shape-keeping pseudonyms (tasks/domain/pseudonym.py): a permutation of each shape, keyed, stable."""

from __future__ import annotations

import polars as pl

from tasks.domain.pseudonym import permute, pseudonym_map, text_pseudonym

KEY = b"test-key-0123456789abcdef"


def test_permutation_of_every_three_digit_string() -> None:
    # the whole domain of one shape (000-999) maps onto itself: nothing lost, nothing doubled
    domain = pl.Series([f"{i:03d}" for i in range(1000)])
    out = permute(domain, KEY, "x")
    assert sorted(out.to_list()) == domain.to_list()
    assert (out == domain).sum() < 10  # a random permutation fixes ~1 point


def test_shape_kept_character_by_character_and_nmi_block_kept() -> None:
    values = pl.Series(["4102000001", "QB12345678", "S00000002", "VAAA00001X", "ab-12"])
    out = permute(values, KEY, "nmi", keep=4).to_list()
    assert [len(v) for v in out] == [10, 10, 9, 10, 5]
    assert out[0].startswith("4102") and out[0][4:].isdigit() and out[0] != "4102000001"
    assert out[1].startswith("QB12") and out[1][4:].isdigit()
    assert (
        out[3].startswith("VAAA") and out[3][4:9].isdigit() and out[3][9].isupper() and out[3][9] not in "IO"
    )
    assert out[4][:2].islower() and out[4][2] == "-" and out[4][3:].isdigit()


def test_same_key_same_pseudonym_other_key_other_pseudonym() -> None:
    v = pl.Series(["4102000001", "6203000777"])
    assert permute(v, KEY, "nmi", 4).to_list() == permute(v.reverse(), KEY, "nmi", 4).reverse().to_list()
    assert permute(v, KEY, "nmi", 4).to_list() != permute(v, b"another-key-0123456789", "nmi", 4).to_list()
    # another kind is another permutation (an NMI and an account number with the same digits differ)
    assert permute(v, KEY, "nmi", 4).to_list() != permute(v, KEY, "account", 4).to_list()


def test_map_never_gives_an_original_or_a_repeat() -> None:
    # half of all two-digit strings are originals: the plain permutation must hit some of them
    originals = pl.Series([f"{i:02d}" for i in range(0, 100, 2)])
    plain = permute(originals, KEY, "y")
    assert plain.is_in(originals.implode()).sum() > 0
    m, moved = pseudonym_map(originals, KEY, "y")
    assert moved == plain.is_in(originals.implode()).sum()
    assert m.height == 50 and m["pseudonym"].n_unique() == 50
    assert not m["pseudonym"].is_in(originals.implode()).any()
    # those that did not hit an original keep the key-only pseudonym
    kept = m.join(pl.DataFrame({"original": originals, "plain": plain}), on="original")
    assert (kept["pseudonym"] == kept["plain"]).sum() == 50 - moved


def test_text_pseudonym_is_keyed_and_keeps_nulls() -> None:
    out = text_pseudonym(pl.Series(["Acme Pty Ltd", None, "Acme Pty Ltd", "Bega"]), KEY, "name").to_list()
    assert out[0] == out[2] and out[1] is None and out[0] != out[3]
    assert out[0].startswith("name-") and len(out[0]) == 17
