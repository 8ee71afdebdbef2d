"""The pure pieces of reference-data sync, without a server: values bound exactly, oversized
row images refused by name, values shown short."""

from __future__ import annotations

import datetime as dt

import pytest

from envsync.refdata.diff import _entries
from envsync.refdata.schema import RefdataError
from envsync.refdata.show import show_value
from envsync.refdata.sql import exact_value


@pytest.mark.parametrize("value, text", [
    (dt.timedelta(minutes=-30), "-00:30:00.000000"),
    (dt.timedelta(hours=-25, microseconds=-250000), "-25:00:00.250000"),
    (dt.timedelta(hours=838, minutes=59, seconds=59), "838:59:59.000000"),
    (dt.timedelta(microseconds=-1), "-00:00:00.000001"),
])
def test_time_values_are_bound_as_exact_text(value: dt.timedelta, text: str) -> None:
    assert exact_value(value) == text


def test_a_null_row_hash_is_refused_naming_the_key_not_read_as_equal() -> None:
    with pytest.raises(RefdataError, match=r"big: source row\(s\) with encoded key 7 .*max_allowed_packet"):
        _entries(2, "6:abc,7:NULL", "source", "big")
    assert _entries(2, "6:abc,7:def", "source", "big") == {"6:abc", "7:def"}


def test_values_are_shown_short() -> None:
    assert show_value(None) == "NULL"
    assert show_value(b"\x00\xff" * 20) == "0x" + "00ff" * 8 + "... (40 bytes)"
    assert show_value("x" * 100) == repr("x" * 60) + "... (100 chars)"
    assert show_value(0.30000000000000004) == "0.30000000000000004"
