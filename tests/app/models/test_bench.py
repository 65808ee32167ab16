"""The download benchmark the bench command calls: both throughputs measured on the same loopback server."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.bench.models_bench import run_download_benchmark


def test_benchmark_measures_hearth_and_curl(tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    result = run_download_benchmark(8 << 20, rounds=1, workdir=tmp_path / "bench", flush=False)
    assert result.size_bytes == 8 << 20 and result.verified
    assert result.hearth_bps > 0 and result.curl_bps > 0
    assert result.ratio == pytest.approx(result.hearth_bps / result.curl_bps)
    assert len(result.hearth_runs_bps) == len(result.curl_runs_bps) == 1
    assert list((tmp_path / "bench").iterdir()) == []  # test files cleaned up
