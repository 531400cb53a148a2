"""`bua anonymise`'s guards: the key (present, long enough, never echoed) and identifiers the map lacks."""

from __future__ import annotations

import polars as pl
import pytest

from tasks.adapters.anonymise import AnonymiseError, Pseudonyms, anonymise_key
from tasks.settings import Settings


def test_key_must_be_set_and_long_enough() -> None:
    with pytest.raises(AnonymiseError, match="no key: set BUA_ANONYMISE_KEY or BUA_ANONYMISE_KEY_SECRET"):
        anonymise_key(Settings())
    with pytest.raises(AnonymiseError, match="shorter than 16 bytes") as err:
        anonymise_key(Settings(anonymise_key="short-key"))
    assert "short-key" not in str(err.value)
    assert anonymise_key(Settings(anonymise_key="0123456789abcdef")) == b"0123456789abcdef"


def test_nmi_in_the_store_but_not_in_the_map_is_an_error_not_a_leak() -> None:
    p = Pseudonyms(b"0123456789abcdef", nmi_keep=4)
    p.build("nmi", pl.Series(["4102000001", "4102000002"]))
    frame = pl.DataFrame({"nmi": ["4102000001", "4102000003", None]})
    with pytest.raises(AnonymiseError, match="1 value\\(s\\) of nmi have no pseudonym"):
        p.apply(frame, "nmi", "nmi")
    ok = p.apply(frame.head(1), "nmi", "nmi")["nmi"][0]
    assert ok.startswith("4102") and ok != "4102000001" and len(ok) == 10
