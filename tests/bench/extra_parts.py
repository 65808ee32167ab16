"""Benchmark parts that belong to later features (parser, downloads, documents, planner)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def run_all(b: Any, tmp: Path, *, full: bool) -> None:
    parser_part(b)


def parser_part(b: Any) -> None:
    from app.harmony.parser import bench_parser

    def run() -> dict[str, float]:
        return {"us_per_token": bench_parser(20_000)}

    r = b.section("harmony parser", run)
    if r:
        # Baseline: one generated token of gpt-oss-20b on this CPU (~70 ms at ~14 tok/s).
        token_us = 1e6 / 14.0
        b.add("harmony parser cost per token (vs one 20b token on CPU)", r["us_per_token"], token_us, "us",
              "< 1% of a token", False, r["us_per_token"] / token_us < 0.01)
