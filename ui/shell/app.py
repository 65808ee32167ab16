"""Start-up of the desktop app: QApplication, theme, context, main window."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QMessageBox

from app.context import AppContext, setup_logging
from app.errors import HearthError
from ui.shell.crash import install_excepthook
from ui.documents.feature import install_documents
from ui.pages.first_run import maybe_show_first_run
from ui.pages.hardware import install_hardware_page
from ui.shell.main_window import MainWindow
from ui.models.page import install_models_page
from ui.pages.settings import install_settings_page
from ui.shell.single_instance import InstanceServer, ask_running_instance
from ui.widgets.theme import apply_theme

log = logging.getLogger(__name__)


def create_app(argv: list[str] | None = None) -> QApplication:
    app = QApplication.instance() or QApplication(argv or sys.argv[:1])
    assert isinstance(app, QApplication)
    app.setApplicationName("Hearth")
    app.setOrganizationName("Hearth")
    app.setDesktopFileName("hearth")
    icon = Path(__file__).resolve().parents[2] / "assets" / "hearth.png"
    if icon.exists():
        app.setWindowIcon(QIcon(str(icon)))
    return app


def build_window(ctx: AppContext, *, initial_model: str | None = None) -> MainWindow:
    """The main window with every page the build has."""
    win = MainWindow(ctx, initial_model=initial_model)
    install_documents(win)
    install_hardware_page(win)
    install_settings_page(win)
    install_models_page(win)
    maybe_show_first_run(win)
    return win


def run_gui(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    app = create_app()
    try:
        ctx = AppContext.create(args.data_dir)
    except (OSError, HearthError) as exc:
        QMessageBox.critical(None, "Hearth", f"Hearth could not start: {exc}")
        return 1
    setup_logging(ctx.paths, logging.DEBUG if getattr(args, "verbose", False) else logging.INFO)
    model = str(Path(args.model).resolve()) if args.model else None
    if ask_running_instance(ctx.paths.data_dir, {"action": "raise", "model": model}):
        log.info("Hearth is already running for %s; brought it forward", ctx.paths.data_dir)
        print("Hearth is already running; its window was brought forward.", file=sys.stderr)
        return 0
    install_excepthook(ctx.paths.crash_dir)
    apply_theme(app, ctx.settings.theme)
    try:
        app.styleHints().colorSchemeChanged.connect(lambda _s: apply_theme(app, ctx.settings.theme))
    except AttributeError:  # Qt < 6.5 has no colour-scheme signal
        pass
    try:
        ctx.store.mark_interrupted()
    except HearthError as exc:
        QMessageBox.critical(None, "Hearth", str(exc))
        return 1
    win = build_window(ctx, initial_model=model)

    def on_message(msg: dict) -> None:
        win.setWindowState(win.windowState() & ~Qt.WindowState.WindowMinimized)
        win.show()
        win.raise_()
        win.activateWindow()
        if msg.get("model"):
            win.open_model(str(msg["model"]))

    server = InstanceServer(ctx.paths.data_dir, on_message, win)
    win.show()
    shown_ms = (time.perf_counter() - t0) * 1000
    log.info("window shown after %.0f ms", shown_ms)
    if os.environ.get("HEARTH_EXIT_AFTER_SHOW"):
        # Used by the start-up benchmark and the bundle smoke test.
        from PySide6.QtCore import QTimer

        def _report() -> None:
            import psutil

            print(f"HEARTH_SHOWN ms={shown_ms:.1f} rss={psutil.Process().memory_info().rss}", flush=True)
            win.close()

        QTimer.singleShot(0, _report)
    code = app.exec()
    server.close()
    ctx.close()
    return int(code)
