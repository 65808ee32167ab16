"""Human-readable sizes, speeds, durations and parameter counts for the CLI and the Models page."""

from __future__ import annotations


def format_bytes(n: float) -> str:
    """Decimal units, as disk vendors and Hugging Face show sizes (12.1 GB)."""
    n = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # unreachable; keeps type checkers content


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
