"""Driving the main window like a user: send a message, swap in the scripted engine."""

from __future__ import annotations

from PySide6.QtCore import Qt

from tests.ui.fake_engine import ScriptedEngine
from ui.shell.main_window import MainWindow


def send(qtbot, win: MainWindow, text: str, timeout: int = 60000) -> None:
    """Type ``text``, press Enter, and wait until the reply has finished."""
    win.composer.set_text(text)
    with qtbot.waitSignal(win.controller.busy_changed, timeout=timeout, check_params_cb=lambda busy: busy is False):
        qtbot.keyClick(win.composer.edit, Qt.Key.Key_Return)


def use_script(win: MainWindow, scripts: list[str], delay: float = 0.01) -> ScriptedEngine:
    """Replace the window's engine by one that replays ``scripts``, as if a model had loaded."""
    eng = ScriptedEngine(scripts, piece_delay=delay)
    win.controller.engine.close()
    win.controller.engine = eng  # type: ignore[assignment]
    win._on_controller_model_loaded(eng.model_info)  # noqa: SLF001 - as if the load finished
    return eng
