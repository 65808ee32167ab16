"""Start-up of the desktop app: QApplication, theme, context, main window."""

from __future__ import annotations

import argparse
import logging
import sys
import time

from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QMessageBox

from app.context import AppContext, setup_logging
from app.errors import HearthError
from ui.main_window import MainWindow
from ui.theme import apply_theme

log = logging.getLogger(__name__)


def create_app(argv: list[str] | None = None) -> QApplication:
    app = QApplication.instance() or QApplication(argv or sys.argv[:1])
    assert isinstance(app, QApplication)
    app.setApplicationName("Hearth")
    app.setOrganizationName("Hearth")
    app.setDesktopFileName("hearth")
    from pathlib import Path

    icon = Path(__file__).resolve().parent.parent / "assets" / "hearth.png"
    if icon.exists():
        app.setWindowIcon(QIcon(str(icon)))
    return app


def build_window(ctx: AppContext, *, initial_model: str | None = None) -> MainWindow:
    """The main window with every page the build has."""
    return MainWindow(ctx, initial_model=initial_model)


def run_gui(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    app = create_app()
    try:
        ctx = AppContext.create(args.data_dir)
    except (OSError, HearthError) as exc:
        QMessageBox.critical(None, "Hearth", f"Hearth could not start: {exc}")
        return 1
    setup_logging(ctx.paths, logging.DEBUG if getattr(args, "verbose", False) else logging.INFO)
    apply_theme(app, ctx.settings.theme)
    try:
        ctx.store.mark_interrupted()
    except HearthError as exc:
        QMessageBox.critical(None, "Hearth", str(exc))
        return 1
    win = build_window(ctx, initial_model=args.model)
    win.show()
    log.info("window shown after %.0f ms", (time.perf_counter() - t0) * 1000)
    code = app.exec()
    ctx.close()
    return int(code)
