"""Test set-up: every test gets its own data dirs; nothing may leak threads or processes."""

from __future__ import annotations

import multiprocessing
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest

import app.context  # noqa: F401 - every part registers its tables before a test opens a database
from tests.keyrings import MemoryKeyring

pytest_plugins = ["tests.gguf_models"]

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Hypothesis keeps a cache folder; never in the working tree.
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", str(Path(tempfile.gettempdir()) / "hearth-hypothesis"))


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point Hearth's data dir and the XDG/HF dirs at tmp_path: no test touches a real profile."""
    data = tmp_path / "hearth-data"
    monkeypatch.setenv("HEARTH_DATA_DIR", str(data))
    for var, sub in (("XDG_DATA_HOME", "xdg-data"), ("XDG_CONFIG_HOME", "xdg-config"),
                     ("XDG_CACHE_HOME", "xdg-cache"), ("XDG_STATE_HOME", "xdg-state"),
                     ("HF_HOME", "hf-home"), ("HF_HUB_CACHE", "hf-home/hub")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    return data


@pytest.fixture(autouse=True)
def memory_keyring() -> Iterator[MemoryKeyring]:
    """Every test gets an in-memory keyring: none reads or writes the developer's real one."""
    before = keyring.get_keyring()
    ring = MemoryKeyring()
    keyring.set_keyring(ring)
    yield ring
    keyring.set_keyring(before)


@pytest.fixture(autouse=True)
def _no_leaks() -> object:
    """Fail a test that leaves a thread or a worker process running."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5
    while True:
        children = multiprocessing.active_children()
        threads = [t for t in threading.enumerate() if t not in before and t.is_alive()
                   and not t.name.startswith(("QDBus", "pydevd", "Dummy"))]
        if not children and not threads:
            return
        if time.monotonic() > deadline:
            for c in children:
                c.kill()
            pytest.fail(f"test left running: processes {children}, threads {[t.name for t in threads]}")
        time.sleep(0.05)
