"""Start-up of the desktop app: QApplication, theme, context, main window.

``build_window`` is where the pages are made and wired: each page takes what it
needs in its constructor (the context, the chat controller, a token store, a
callable or two) and tells the others what happened through signals connected
here, so a page's imports say what it depends on and no page looks another up
on the window.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QMessageBox

from app.context import AppContext, setup_logging
from app.errors import HearthError
from app.harmony.tools import ToolRegistry
from app.models import TokenStore, hub
from app.models.units import format_bytes
from app.tools.mcp import McpManager, McpToolProvider
from app.tools.mcp_config import McpConfig
from app.tools.python_tool import PythonSessions
from app.tools.python_tool import add_python_tool as add_python_tool_to
from ui.chat.approval import ApprovalBroker, ApprovalPresenter
from ui.chat.model_picker import PickerEntry
from ui.documents.feature import DocumentsFeature
from ui.models.page import ModelsPage
from ui.models.widgets import fit_tooltip
from ui.pages.first_run import WelcomePage, wants_first_run
from ui.pages.hardware import HardwarePage
from ui.pages.local_server import LocalServerPanel
from ui.pages.servers import ask_to_send, install_remote_models
from ui.widgets.labels import VERDICT_BADGES
from ui.pages.settings import SettingsPage, update_offline_label
from ui.pages.tools import ToolsPanel
from ui.shell.crash import install_excepthook
from ui.shell.main_window import MainWindow
from ui.shell.single_instance import InstanceServer, ask_running_instance
from ui.widgets.labels import verdict_colour
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
    """The main window with every page the build has, wired to each other."""
    win = MainWindow(ctx, initial_model=initial_model)
    # One token store: a token kept "for this session only" in Settings is used by downloads too.
    tokens = TokenStore()
    add_python_tool(win)
    tools = add_mcp_tools(win)  # before documents: they wrap the tools factory this sets
    add_documents(win)
    hardware = add_hardware_page(win)
    settings = add_settings_page(win, tokens, tools)
    models = add_models_page(win, tokens)
    connect_pages(hardware=hardware, settings=settings, models=models)
    add_first_run(win, models)
    return win


# ---- the pages, each added to the window ---------------------------------------


def add_documents(win: MainWindow) -> DocumentsFeature:
    """Document chat: drop and attach, chips, progress, citations, and the turn hook."""
    feature = DocumentsFeature(win)
    win.documents = feature
    win.files_dropped.connect(feature.attach_files)  # non-model files dropped on the window
    feature.start()
    return feature


def add_hardware_page(win: MainWindow) -> HardwarePage:
    """The Hardware page (View › Hardware, Ctrl+3); it starts detecting in the background."""
    page = HardwarePage(win.ctx, win.controller)
    win.add_page("Hardware", page, "Ctrl+3")
    win.hardware_page = page
    # A model load reuses this page's detection instead of probing the machine again.
    win.controller.hardware_provider = lambda: page.hardware
    page.stats_updated.connect(lambda stats: _show_model_memory(win, stats))
    win.closing.connect(page.shutdown)  # before the engine goes: a stats call may be waiting on it
    page.refresh()
    return page


def add_python_tool(win: MainWindow) -> PythonSessions:
    """gpt-oss's python tool: one sandboxed, stateful session per conversation (Settings › Python tool)."""
    ctx = win.ctx
    sessions = PythonSessions.for_paths(ctx.paths)
    base = win.controller.tools_factory

    def tools_factory() -> ToolRegistry:
        reg = base() if base is not None else ToolRegistry()
        if ctx.settings.python_tool:
            add_python_tool_to(reg, sessions)
        return reg

    def show_reset() -> None:
        win.header.reset_python_button.setVisible(bool(ctx.settings.python_tool) and win.conversation_id is not None)

    def reset() -> None:
        conv = win.conversation_id
        # Stopping a Deno process can take a moment: never on the GUI thread.
        threading.Thread(target=sessions.reset, args=(conv,), name="python-reset", daemon=True).start()
        win.statusBar().showMessage("Python was reset for this chat: its variables and imports are gone.", 5000)

    def copy_files() -> None:
        conv = win.conversation_id
        if conv is None:
            return
        from app.documents.index import DocumentIndex

        def work() -> list[str]:  # a disk copy: never on the GUI thread
            files = [Path(a.path) for a in DocumentIndex(ctx.db).attachments(conv)]
            return sessions.copy_in(conv, files)

        def done(names: list[str] | None, exc: BaseException | None) -> None:
            if exc is not None:
                win.show_error(f"The attached files could not be copied to python's folder: {exc}")
            elif not names:
                win.statusBar().showMessage("This chat has no attached files to give python.", 8000)
            else:
                win.statusBar().showMessage(
                    f"Python's working folder now has {', '.join(names)}: ask the model to use them.", 10000)

        win.controller.jobs.call("python-files", lambda _cancel: work(), done)

    win.controller.tools_factory = tools_factory
    win.header.reset_python_requested.connect(reset)
    win.header.copy_files_to_python_requested.connect(copy_files)
    win.conversation_changed.connect(lambda *_: show_reset())
    win.closing.connect(sessions.close_all)
    show_reset()
    return sessions


def add_mcp_tools(win: MainWindow) -> ToolsPanel:
    """MCP servers: their tools join every turn's registry, each call asks on its tool card first."""
    ctx = win.ctx
    manager = McpManager(McpConfig.for_paths(ctx.paths), offline=lambda: bool(ctx.settings.offline))
    broker = ApprovalBroker(win)
    ApprovalPresenter(broker, win.chat_view, win.controller, win)
    base = win.controller.tools_factory

    def tools_factory() -> ToolRegistry:
        reg = base() if base is not None else ToolRegistry()
        reg.approver, reg.policy = broker, manager.config
        reg.add_provider(McpToolProvider(manager))
        return reg

    win.controller.tools_factory = tools_factory
    win.closing.connect(broker.cancel_all)
    win.closing.connect(manager.close)
    manager.start_all(wait=False)
    return ToolsPanel(manager)


def add_settings_page(win: MainWindow, tokens: TokenStore, tools: ToolsPanel | None = None) -> SettingsPage:
    """The Settings page (View › Settings, Ctrl+,); the status bar's Offline shield follows it."""
    local_server = LocalServerPanel(win.ctx, win.controller)
    win.closing.connect(local_server.shutdown)  # before the engine goes: a request may be running on it
    page = SettingsPage(win.ctx, win.controller, tokens, show_error=win.show_error,
                        reload_model=win.reload_model, tools_panel=tools, local_server_panel=local_server)
    local_server.start_if_enabled()
    win.add_page("Settings", page, "Ctrl+,")
    win.settings_page = page

    def on_saved(changed: list[str]) -> None:
        if "offline" in changed:
            update_offline_label(win.status_offline, win.ctx.settings.offline)

    page.saved.connect(on_saved)
    update_offline_label(win.status_offline, win.ctx.settings.offline)
    add_remote_servers(win, page)
    return page


def add_remote_servers(win: MainWindow, page: SettingsPage) -> None:
    """Models on the user's own servers: in the header's picker, asked once before the first message."""
    install_remote_models(win.model_picker, win.controller)
    win.controller.confirm_send = lambda host: ask_to_send(win, host)
    win.closing.connect(page.servers_panel.shutdown)


def add_models_page(win: MainWindow, tokens: TokenStore | None) -> ModelsPage:
    """The Models page (View › Models, Ctrl+2); the header's model picker lists what it finds."""
    hub.configure_environment(win.ctx.settings.offline)  # before anything imports huggingface_hub
    page = ModelsPage(win.ctx, tokens)
    win.add_page("Models", page, "Ctrl+2")
    win.models_page = page
    page.status_message.connect(lambda text: win.statusBar().showMessage(text, 15000))
    page.load_requested.connect(lambda path: _open_in_chat(win, path))
    win.closing.connect(page.shutdown)  # downloads pause (their part files stay), threads are joined

    def update_picker() -> None:
        win.set_model_entries(model_picker_entries(page))

    page.scanned.connect(update_picker)
    page.fits_updated.connect(update_picker)
    return page


def connect_pages(*, hardware: HardwarePage | None = None, settings: SettingsPage | None = None,
                  models: ModelsPage | None = None) -> None:
    """What the pages tell each other: detection to the fit badges, saved settings to both."""
    if hardware is not None and models is not None:
        if hardware.hardware is not None:
            models.set_hardware(hardware.hardware)
        hardware.hardware_detected.connect(models.set_hardware)
    if settings is not None and models is not None:
        settings.saved.connect(models.on_settings_saved)
    if settings is not None and hardware is not None:
        def on_saved(changed: list[str]) -> None:
            if "models_dir" in changed:
                hardware.refresh()  # free disk space is measured in the models folder

        settings.saved.connect(on_saved)


def add_first_run(win: MainWindow, models: ModelsPage) -> WelcomePage | None:
    """The welcome page, shown first, unless it was done before (or HEARTH_NO_FIRST_RUN is set)."""
    if not wants_first_run(win.ctx.settings):
        return None
    page = WelcomePage(win.ctx, win.controller, models, show_page=win.show_page, chat_page=win.chat_page)
    win.pages.addWidget(page)
    win.show_page(page)
    return page


# ---- helpers ---------------------------------------------------------------------


def model_picker_entries(models: ModelsPage) -> list[PickerEntry]:
    """The header picker's entries: every installed model with its fit on this computer."""
    grey = PickerEntry("", "").colour
    entries: list[PickerEntry] = []
    for m in models.installed:
        fit = models.fits.get(f"installed:{m.name}") if models.hardware is not None else None
        badge, colour = VERDICT_BADGES.get(fit.verdict, ("", grey)) if fit is not None else ("", grey)
        entries.append(PickerEntry(
            str(m.path), m.title or m.name, f"{format_bytes(m.size_bytes)} · installed", badge,
            verdict_colour(fit.verdict, colour) if fit is not None and badge else colour,
            fit_tooltip(fit) if fit is not None else ""))
    return entries


def _open_in_chat(win: MainWindow, path: str) -> None:
    win.open_model(path)
    win.show_page(win.chat_page)


def _show_model_memory(win: MainWindow, stats: dict) -> None:
    rss = stats.get("rss_bytes")
    if rss:
        win.status_memory.setText(f"Model memory: {format_bytes(rss)}")


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
