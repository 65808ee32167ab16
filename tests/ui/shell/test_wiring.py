"""build_window makes the pages and wires them: no page finds another through the window."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from app.context import AppContext
from app.hardware import builtin_profile
from ui.chat.model_picker import ROLE_PATH
from ui.pages import hardware as hardware_page
from ui.widgets.labels import VERDICT_BADGES
from ui.shell.app import build_window
from ui.shell.main_window import MainWindow


@pytest.fixture
def ctx(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AppContext]:
    monkeypatch.setattr(hardware_page, "detect_hardware", lambda *_a, **_k: builtin_profile("cpu-16gb"))
    c = AppContext.create(tmp_path / "data")
    c.settings.models_dir = str(tmp_path / "models")
    c.settings.first_run_done = True
    yield c
    c.close()


@pytest.fixture
def window(qtbot, ctx: AppContext) -> Iterator[MainWindow]:
    win = build_window(ctx)
    qtbot.addWidget(win)
    yield win
    win.close()


def _place(src: Path, models_dir: Path) -> Path:
    """The model in the models folder: a hard link where the file system allows, else a copy."""
    models_dir.mkdir(parents=True, exist_ok=True)
    dst = models_dir / src.name
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)
    return dst


def test_pages_share_one_token_store_and_follow_each_other(qtbot, window: MainWindow) -> None:
    hw, settings, models = window.hardware_page, window.settings_page, window.models_page
    assert hw is not None and settings is not None and models is not None and window.documents is not None
    assert settings.tokens is models.tokens
    # The Models page judges fit with the Hardware page's detection; a model load reuses it too.
    qtbot.waitUntil(lambda: models.hardware is not None, timeout=10000)
    assert models.hardware is hw.hardware
    assert window.controller.hardware_provider is not None and window.controller.hardware_provider() is hw.hardware
    # A saved models folder reaches the Models page (a new scan) and the Hardware page (disk space again).
    with qtbot.waitSignal(models.scanned, timeout=10000), qtbot.waitSignal(hw.hardware_detected, timeout=10000):
        settings.saved.emit(["models_dir"])
    # Stats from the engine reach the status bar.
    hw.stats_updated.emit({"rss_bytes": 3_000_000_000})
    assert window.status_memory.text() == "Model memory: 3.0 GB"


def test_the_header_picker_lists_installed_models_with_their_fit(qtbot, window: MainWindow, ctx: AppContext,
                                                                  gemma_path: Path) -> None:
    models = window.models_page
    assert models is not None
    path = _place(gemma_path, Path(ctx.settings.models_dir))
    qtbot.waitUntil(lambda: models.hardware is not None, timeout=10000)
    models.refresh()
    picker = window.model_picker
    badges = {text for text, _colour in VERDICT_BADGES.values()}

    def listed() -> bool:
        return any(Path(e.path) == path and e.badge in badges for e in picker.entries)

    qtbot.waitUntil(listed, timeout=30000)
    entry = next(e for e in picker.entries if Path(e.path) == path)
    assert entry.badge == "Fits"  # 253 MB on a 16 GB machine
    assert "installed" in entry.detail and entry.tooltip
    i = next(i for i in range(picker.count()) if picker.itemData(i, ROLE_PATH) == str(path))
    assert picker.itemText(i).endswith("Fits")
    assert picker.itemText(i).startswith(entry.name)


def test_files_dropped_on_the_window_go_to_the_documents(window: MainWindow) -> None:
    got: list[list[str]] = []
    window.files_dropped.connect(got.append)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile("/nonexistent/notes.txt")])
    drop = QDropEvent(QPointF(5, 5), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    window.dropEvent(drop)
    assert got == [["/nonexistent/notes.txt"]] and drop.isAccepted()
