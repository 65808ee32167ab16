"""The one size formatter (app.models.units.format_bytes): decimal units, sensible precision, never "0.0"."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.models.units import format_bytes, format_bytes_or

SIZE = re.compile(r"^-?(\d{1,3}|\d{1,2}\.\d) (B|KB|MB|GB|TB|PB)$")
SCALE = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12, "PB": 10**15}


@pytest.mark.parametrize(("n", "text"), [
    (0, "0 B"), (1, "1 B"), (999, "999 B"), (999.6, "1.0 KB"), (1000, "1.0 KB"), (1499, "1.5 KB"),
    (99_949, "99.9 KB"), (99_950, "100 KB"), (366_300, "366 KB"), (999_499, "999 KB"), (999_500, "1.0 MB"),
    (2_100_000, "2.1 MB"), (40_200_000, "40.2 MB"), (12_100_000_000, "12.1 GB"),
    (16 * 2**30, "17.2 GB"),  # 16 GiB of RAM, as a file manager shows it
    (8 * 2**30, "8.6 GB"), (1 << 30, "1.1 GB"), (3 * 10**12, "3.0 TB"), (-5_000_000, "-5.0 MB"),
])
def test_table(n: float, text: str) -> None:
    assert format_bytes(n) == text


def test_unknown() -> None:
    assert format_bytes_or(None) == "unknown" and format_bytes_or(None, "?") == "?"
    assert format_bytes_or(2_000) == "2.0 KB"


@given(st.integers(min_value=0, max_value=10**17))
def test_any_size_is_short_decimal_close_and_never_zero_point_zero(n: int) -> None:
    text = format_bytes(n)
    m = SIZE.match(text)
    assert m, text
    assert not text.startswith("0.0") and not text.startswith("1000")
    value = float(text.split()[0]) * SCALE[m.group(2)]
    # within the rounding of the digits shown (0.05 of a unit below 100, 0.5 from 100 up)
    assert abs(value - n) <= 0.5 * SCALE[m.group(2)] + 1e-9 * n
    if n > 0:
        assert value > 0
