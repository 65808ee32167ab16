"""Shared set-up for the python sandbox tests: one interpreter snapshot per test run."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.tools.sandbox import PythonSandbox, SandboxError, SandboxLimits, find_pyodide


def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache dir holding the interpreter snapshot (made once: ~5 s), shared by the tests."""
    try:
        find_pyodide()
    except SandboxError as exc:
        pytest.skip(f"Pyodide is not installed here: {exc}")
    cache = tmp_path_factory.getbasetemp() / "python-sandbox-cache"
    probe = PythonSandbox(tmp_path_factory.getbasetemp() / "probe-scratch", cache_dir=cache)
    assert probe.ensure_snapshot(), "the interpreter snapshot could not be made"
    return cache


def small_limits(**kw: object) -> SandboxLimits:
    base: dict[str, object] = {"timeout_s": 3.0, "memory_bytes": 256 * 1024 * 1024, "output_chars": 2000}
    base.update(kw)
    return SandboxLimits(**base)  # type: ignore[arg-type]
