"""Fixtures shared by the UI tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.context import AppContext


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[AppContext]:
    """A fresh data folder with short, deterministic replies (modules may override)."""
    c = AppContext.create(tmp_path / "data")
    c.settings.max_tokens = 12
    c.settings.temperature = 0.0
    c.settings.context_size = 1024
    c.settings.threads = 2
    yield c
    c.close()
