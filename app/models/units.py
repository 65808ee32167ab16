"""Human-readable sizes, speeds, durations and parameter counts for the CLI and the Models page."""

from __future__ import annotations


def format_bytes(n: float) -> str:
    """The one size formatter for the UI and the CLI: decimal units, as OS file managers,
    disk vendors and Hugging Face show sizes (1 GB = 10**9 bytes): "12.1 GB", "366 KB",
    "950 B". One decimal below 100 of a unit, none from 100; never "0.0 <unit>" (a size
    under 1 KB is shown in bytes) and never "1000 <unit>" (that is the next unit).
    """
    n = float(n)
    if n != n:  # NaN
        return "? B"
    sign = "-" if n < 0 else ""
    n = abs(n)
    if round(n) < 1000:
        return f"{sign}{n:.0f} B"
    units = ("KB", "MB", "GB", "TB", "PB")
    for i, unit in enumerate(units):
        n /= 1000
        text = f"{n:.1f}" if round(n, 1) < 100 else f"{n:.0f}"
        if float(text) < 1000 or i == len(units) - 1:
            return f"{sign}{text} {unit}"
    raise AssertionError("unreachable")


def format_bytes_or(n: float | None, unknown: str = "unknown") -> str:
    """format_bytes(n), or ``unknown`` when the size is not known (None)."""
    return unknown if n is None else format_bytes(n)


def format_rate(bps: float | None) -> str:
    return "-" if not bps else f"{format_bytes(bps)}/s"


def format_duration(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds == float("inf"):
        return "--"
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def format_params(n: int) -> str:
    """20_914_757_184 -> '20.9B'."""
    if n <= 0:
        return "?"
    for div, unit in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if n >= div:
            return f"{n / div:.1f}{unit}"
    return str(n)
