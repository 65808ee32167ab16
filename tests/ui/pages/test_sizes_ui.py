"""Sizes on the Hardware page and in fit tooltips use the one formatter: decimal GB/MB, never "0.0"."""

from __future__ import annotations

import re
from pathlib import Path

from app.gguf_info import read_gguf_info
from app.hardware import builtin_profile
from app.planner import ModelSpec
from tests.gguf_models import write_tiny_gptoss
from ui.models.widgets import FitBadge, fit_tooltip, plan_fit
from ui.pages.hardware import cache_line, hardware_rows, plan_rows

UNIT_WORDS = re.compile(r"\b(GiB|MiB|KiB|TiB|[KMGT]B)\b")


def _units(text: str) -> set[str]:
    return set(UNIT_WORDS.findall(text))


def test_hardware_page_rows_use_decimal_units_and_never_zero_point_zero() -> None:
    for name in ("cpu-16gb", "cpu-8gb", "nvidia-8gb-ram-16gb", "apple-m-16gb"):
        hw = builtin_profile(name)
        hw.disk_free = 512_000  # a nearly full disk: KB, not "0.0 GB"
        hw.models_dir = Path("/models")
        hw.source = "detected"  # (a profile's own description names its RAM in GiB)
        text = "\n".join(t for _, t in hardware_rows(hw))
        assert "0.0 " not in text, text
        assert _units(text) <= {"GB", "MB", "KB"}, text
        assert "512 KB free" in text
    rows = dict(plan_rows({"ram_bytes": 40_200_000, "vram_bytes": 0}, 300_000))
    assert rows["RAM"] == "40.2 MB predicted; 300 KB in use by the model process"
    line = cache_line({"states_budget_bytes": 1 << 30, "states_bytes": 2_500, "states_cached": 1,
                       "states_max_entries": 8})
    assert line.endswith("2.5 KB of 1.1 GB")


def test_a_small_models_fit_tooltip_says_megabytes_not_zero_gigabytes(qtbot, tmp_path: Path) -> None:
    spec = ModelSpec.from_gguf(read_gguf_info(write_tiny_gptoss(tmp_path / "tiny.gguf")))
    for name in ("cpu-16gb", "nvidia-8gb-ram-16gb"):
        fit = plan_fit(spec, builtin_profile(name))
        tip = fit_tooltip(fit)
        assert "0.0 " not in tip and "GiB" not in tip, tip
        assert _units(tip) <= {"GB", "MB", "KB"}, tip
        assert "MB" in tip  # the tiny model's own memory
        badge = FitBadge(fit)
        qtbot.addWidget(badge)
        assert badge.toolTip() == tip
