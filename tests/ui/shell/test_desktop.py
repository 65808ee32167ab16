"""Behaving like a desktop app: single instance, crash reports, window state, shortcuts."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from PySide6.QtWidgets import QAbstractButton, QLineEdit, QPlainTextEdit

from app.context import AppContext
from ui.shell.crash import install_excepthook
from ui.shell.main_window import MainWindow
from ui.shell.single_instance import ask_running_instance

ROOT = Path(__file__).resolve().parents[3]


def test_second_start_brings_the_first_forward(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    first = subprocess.Popen([sys.executable, "-m", "ui.shell.entry", "--data-dir", str(data)], cwd=ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not ask_running_instance(data, {"action": "ping"}):
            assert first.poll() is None, first.stderr.read() if first.stderr else ""
            assert time.monotonic() < deadline, "the first instance never started listening"
            time.sleep(0.2)
        t0 = time.monotonic()
        second = subprocess.run([sys.executable, "-m", "ui.shell.entry", "--data-dir", str(data)], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=60)
        assert second.returncode == 0
        assert "already running" in second.stderr
        assert time.monotonic() - t0 < 20
        assert first.poll() is None  # the first one is still there
        # A different data folder is a different Hearth.
        assert not ask_running_instance(tmp_path / "other", {"action": "ping"})
    finally:
        first.terminate()
        first.wait(10)


def test_unexpected_exception_writes_a_local_report(qtbot, tmp_path: Path, monkeypatch) -> None:
    crash_dir = tmp_path / "crashes"
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    install_excepthook(crash_dir)
    try:
        raise RuntimeError("boom in a slot")
    except RuntimeError:
        sys.excepthook(*sys.exc_info())
    reports = list(crash_dir.glob("crash-*.txt"))
    assert len(reports) == 1 and "boom in a slot" in reports[0].read_text()
    box = sys.excepthook.last_box  # type: ignore[attr-defined]
    assert "nothing was sent anywhere" in box.text() and box.isVisible()
    box.close()


def test_window_geometry_and_splitter_are_restored(qtbot, tmp_path: Path) -> None:
    ctx = AppContext.create(tmp_path / "d")
    win = MainWindow(ctx)
    qtbot.addWidget(win)
    win.show()
    win.resize(720, 520)  # within the offscreen platform's 800x600 screen
    win.splitter.setSizes([200, 520])
    sizes = win.splitter.sizes()
    win.close()
    win2 = MainWindow(ctx)
    qtbot.addWidget(win2)
    win2.show()
    assert (win2.width(), win2.height()) == (720, 520)
    assert win2.splitter.sizes() == sizes
    win2.close()
    ctx.close()


def test_common_actions_have_shortcuts_and_controls_have_names(qtbot, tmp_path: Path) -> None:
    ctx = AppContext.create(tmp_path / "d")
    win = MainWindow(ctx)
    qtbot.addWidget(win)
    shortcuts = {a.text(): a.shortcut().toString() for m in win.menuBar().actions() for a in m.menu().actions()}
    assert shortcuts["&New chat"] == "Ctrl+N"
    assert shortcuts["&Search chats"] == "Ctrl+K"
    assert shortcuts["S&top generating"] == "Ctrl+."
    assert shortcuts["&Focus message box"] == "Ctrl+L"
    ours = [w for w in win.findChildren(QAbstractButton) + win.findChildren(QLineEdit)
            + win.findChildren(QPlainTextEdit)
            if not w.objectName().startswith("qt_") and not isinstance(w.parent(), QLineEdit)]
    unnamed = [w for w in ours if not w.accessibleName()]
    assert unnamed == []
    win.close()
    ctx.close()
