"""The Hardware and Settings pages, driven like a user would: detected hardware, the model's plan,
the state cache after a real reply (gemma 270M), and settings that save, validate and apply."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import keyring
import keyring.backend
import keyring.backends.fail
import keyring.errors
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QAbstractButton, QApplication, QComboBox, QFormLayout, QLabel, QLineEdit, QPlainTextEdit, QWidget,
)

from app.context import AppContext
from app.hardware import HardwareInfo, builtin_profile
from app.models.token import NO_KEYRING, TokenStore
from app.models.units import format_bytes
from ui.pages import hardware as hardware_page
from ui.pages.hardware import HardwarePage
from ui.shell.main_window import MainWindow
from ui.pages.settings import OFFLINE_LABEL, PRIVACY_STATEMENT, SettingsPage
from ui.shell.app import add_hardware_page, add_settings_page, connect_pages
from tests.keyrings import MemoryKeyring
from tests.ui.helpers import send


class Machines(list):
    """detect_hardware returns the machine appended last; the threads it ran on are noted."""

    def __init__(self) -> None:
        super().__init__()
        self.detect_threads: list[str] = []

    def detect(self, models_dir: object = None, **_kw: object) -> HardwareInfo:
        self.detect_threads.append(threading.current_thread().name)
        hw = self[-1]
        hw.models_dir = str(models_dir)
        return hw


@pytest.fixture
def profile(monkeypatch: pytest.MonkeyPatch) -> Machines:
    machines = Machines()
    monkeypatch.setattr(hardware_page, "detect_hardware", machines.detect)
    return machines


@pytest.fixture
def window(qtbot, ctx: AppContext, profile: Machines) -> Iterator[MainWindow]:
    if not profile:
        profile.append(builtin_profile("cpu-16gb"))
    win = MainWindow(ctx)
    qtbot.addWidget(win)
    connect_pages(hardware=add_hardware_page(win), settings=add_settings_page(win, TokenStore()))
    win.show()
    yield win
    win.close()


def hw_page(win: MainWindow) -> HardwarePage:
    assert win.hardware_page is not None
    return win.hardware_page


def settings_page(win: MainWindow) -> SettingsPage:
    assert win.settings_page is not None
    return win.settings_page


def form_text(form: QFormLayout) -> dict[str, str]:
    out: dict[str, str] = {}
    for row in range(form.rowCount()):
        label = form.itemAt(row, QFormLayout.ItemRole.LabelRole)
        field = form.itemAt(row, QFormLayout.ItemRole.FieldRole)
        if label is not None and field is not None and isinstance(field.widget(), QLabel):
            out[label.widget().text().rstrip(":")] = field.widget().text()
    return out


def view_action(win: MainWindow, title: str):
    return next(a for a in win.view_menu.actions() if a.text() == title)


# ---- Hardware page -----------------------------------------------------------


def test_hardware_page_shows_the_gpu_and_says_why_something_is_unknown(qtbot, ctx, profile) -> None:
    hw = builtin_profile("nvidia-8gb-ram-16gb")
    hw.cpu_model = None
    hw.unknown["cpu_model"] = "the operating system does not report a CPU name"
    profile.append(hw)
    win = MainWindow(ctx)
    qtbot.addWidget(win)
    page = add_hardware_page(win)
    assert page.hardware is None, "detection runs off the GUI thread: its result comes later"
    win.show()
    view_action(win, "Hardware").trigger()
    assert win.pages.currentWidget() is page
    assert view_action(win, "Hardware").shortcut().toString() == "Ctrl+3"
    with qtbot.waitSignal(page.hardware_detected, timeout=5000):
        pass
    assert profile.detect_threads and profile.detect_threads[0] != threading.main_thread().name
    rows = form_text(page.hw_form)
    assert "NVIDIA GeForce RTX 2080" in rows["GPU"] and "8.6 GB VRAM" in rows["GPU"]
    assert "compute capability 7.5" in rows["GPU"]
    assert rows["CPU"] == "Unknown (the operating system does not report a CPU name)"
    assert rows["Cores"] == "8 physical, 16 logical"
    assert "AVX2" in rows["SIMD features"]
    assert rows["Memory (RAM)"] == "17.2 GB total, 12.9 GB available"
    assert "CUDA0" in rows["llama.cpp"]
    assert str(ctx.models_dir) in rows["Models folder disk"]
    assert "CPU model: the operating system does not report a CPU name" in page.unknown_label.text()
    # No model yet: the plan section says so instead of showing stale numbers.
    assert "No model is loaded" in page.plan_title.text() and not page.verdict_badge.isVisible()
    # A model load plans with this detection instead of probing the machine again.
    assert win.controller.hardware_provider() is page.hardware

    # Refresh detects again (another machine now) without blocking.
    profile.append(builtin_profile("cpu-8gb"))
    with qtbot.waitSignal(page.hardware_detected, timeout=5000):
        qtbot.mouseClick(page.refresh_button, Qt.MouseButton.LeftButton)
    rows = form_text(page.hw_form)
    assert rows["GPU"] == "None found" and rows["Memory (RAM)"].startswith("8.6 GB total")
    assert page.unknown_label is None and page.refresh_button.isEnabled()
    win.close()


def test_closing_the_window_joins_a_detection_still_running(qtbot, ctx, monkeypatch) -> None:
    started = threading.Event()

    def slow_detect(models_dir: object = None) -> HardwareInfo:
        started.set()
        time.sleep(0.5)  # the real probe starts llama.cpp in a child process
        return builtin_profile("cpu-16gb")

    monkeypatch.setattr(hardware_page, "detect_hardware", slow_detect)
    win = MainWindow(ctx)
    qtbot.addWidget(win)
    page = add_hardware_page(win)
    win.show()
    assert started.wait(5)
    assert page.detect_status.text() == "Detecting…" and not page.refresh_button.isEnabled()
    win.close()
    assert not any(t.name.startswith("hearth-hardware-") for t in threading.enumerate())


def test_model_plan_and_state_cache_follow_the_real_engine(qtbot, window: MainWindow, gemma_path: Path) -> None:
    page = hw_page(window)
    with qtbot.waitSignal(page.stats_updated, timeout=60000):
        with qtbot.waitSignal(window.controller.model_loaded, timeout=60000):
            window.open_model(str(gemma_path))
    window.show_page(page)
    assert page.verdict_badge.isVisible() and page.verdict_badge.text() == "Fits"
    assert "Gemma" in page.plan_title.text()
    rows = form_text(page.plan_form)
    assert rows["Context"] == "1,024 tokens"
    assert rows["Threads"] == "2"
    assert rows["GPU layers"] == "None (runs on the CPU)"
    assert rows["KV cache type"] == "F16"
    assert "predicted" in rows["RAM"] and "in use by the model process" in rows["RAM"]
    assert "tokens/s" in rows["Estimated speed"]
    assert "Runs on the CPU" in page.plan_explanation.text()
    assert page.cache_label.text().startswith("0 of 8 recent conversations kept, 0 B of 1.1 GB")

    with qtbot.waitSignal(page.stats_updated, timeout=30000):
        send(qtbot, window, "Tell me about Lisbon")
    assert page.cache_label.text().startswith("1 of 8 recent conversations kept")
    assert page.stats["states_bytes"] > 0
    assert page.cache_label.text().endswith(f"{format_bytes(page.stats['states_bytes'])} of 1.1 GB")
    assert window.status_memory.text().startswith("Model memory:")

    # A new context size needs a reload: Settings says so and reloads on request.
    sp = settings_page(window)
    view_action(window, "Settings").trigger()
    sp.context_size.setEditText("2048")
    assert sp.save()
    assert sp.reload_banner.isVisible() and "context size" in sp.reload_label.text()
    with qtbot.waitSignal(page.stats_updated, timeout=60000):
        qtbot.mouseClick(sp.reload_button, Qt.MouseButton.LeftButton)
    assert not sp.reload_banner.isVisible()
    assert form_text(page.plan_form)["Context"] == "2,048 tokens"

    with qtbot.waitSignal(window.controller.model_unloaded, timeout=30000):
        window.controller.unload()
    assert not page.verdict_badge.isVisible() and page.cache_label.text() == "No model is loaded."


# ---- Settings page -----------------------------------------------------------


def test_settings_round_trip_through_a_restart(qtbot, window: MainWindow, tmp_path: Path) -> None:
    sp = settings_page(window)
    view_action(window, "Settings").trigger()
    assert window.pages.currentWidget() is sp
    assert view_action(window, "Settings").shortcut().toString() == "Ctrl+,"
    assert sp.data_dir.isReadOnly() and sp.data_dir.text() == str(window.ctx.paths.data_dir)
    opened: list[Path] = []
    sp.open_folder = opened.append  # the system file manager is not part of this test
    qtbot.mouseClick(sp.open_data_button, Qt.MouseButton.LeftButton)
    assert opened == [window.ctx.paths.data_dir]
    models = tmp_path / "my models"
    sp.models_dir.setText(str(models))
    sp.hf_endpoint.setText("https://hf-mirror.example.org/")
    sp.proxy.setText("http://proxy.local:3128")
    sp.context_size.setEditText("8192")
    sp.temperature.setText("0.7")
    sp.top_p.setText("0.9")
    sp.max_tokens.setText("512")
    sp.threads.setText("Auto")
    sp.system_prompt.setPlainText("Answer briefly.")
    sp.reasoning_effort.setCurrentIndex(sp.reasoning_effort.findData("high"))
    sp.gpu_layers_override.setText("All")
    sp.cpu_moe_override.setText("3")
    sp.state_cache_mb.setText("512")
    sp.save_states_on_exit.setChecked(True)
    sp.saved_state_mb.setText("64")
    qtbot.mouseClick(sp.save_button, Qt.MouseButton.LeftButton)
    assert sp.status.text() == "Settings saved."
    assert models.is_dir()
    # The Hardware page measures free disk space in the new models folder.
    qtbot.waitUntil(lambda: str(models) in form_text(hw_page(window).hw_form).get("Models folder disk", ""))
    assert not sp.reload_banner.isVisible()  # no model loaded: nothing to reload

    again = AppContext.create(window.ctx.paths.data_dir)
    s = again.settings
    assert s.models_dir == str(models) and again.models_dir == models
    assert s.hf_endpoint == "https://hf-mirror.example.org" and s.proxy == "http://proxy.local:3128"
    assert (s.context_size, s.temperature, s.top_p, s.max_tokens, s.threads) == (8192, 0.7, 0.9, 512, None)
    assert s.system_prompt == "Answer briefly." and s.reasoning_effort == "high"
    assert (s.gpu_layers_override, s.cpu_moe_override) == (-1, 3)
    assert s.state_cache_bytes == 512 << 20 and s.save_states_on_exit and s.saved_state_max_bytes == 64 << 20
    again.close()
    # The form shows what was stored.
    assert sp.threads.text() == "Auto" and sp.gpu_layers_override.text() == "All"


def test_invalid_input_is_explained_and_nothing_is_saved(qtbot, window: MainWindow) -> None:
    sp = settings_page(window)
    view_action(window, "Settings").trigger()
    path = window.ctx.paths.settings_path
    before = path.read_bytes() if path.exists() else None
    sp.temperature.setText("warm")
    sp.top_p.setText("2")
    sp.context_size.setEditText("100")
    sp.proxy.setText("ftp://proxy")
    sp.max_tokens.setText("600")
    qtbot.mouseClick(sp.save_button, Qt.MouseButton.LeftButton)
    assert sp.status.text().startswith("Not saved: 4 fields need fixing")
    assert sp.errors["temperature"].isVisible() and "“warm”" in sp.errors["temperature"].text()
    assert sp.errors["top_p"].text() == "Top-p must be greater than 0 and at most 1."
    assert sp.errors["context_size"].text() == "Context size must be at least 256 tokens."
    assert "http://host:port" in sp.errors["proxy"].text()
    assert not sp.errors["max_tokens"].isVisible()
    # Nothing written, nothing applied, and everything typed is still there.
    assert (path.read_bytes() if path.exists() else None) == before
    assert window.ctx.settings.max_tokens == 12 and window.ctx.settings.top_p is None
    assert (sp.temperature.text(), sp.top_p.text(), sp.context_size.currentText()) == ("warm", "2", "100")
    assert sp.proxy.hasFocus() or not window.isActiveWindow()  # the first field in error, top down
    # Leaving the page and coming back keeps the unsaved text too.
    window.show_page(window.chat_page)
    view_action(window, "Settings").trigger()
    assert sp.temperature.text() == "warm"

    sp.temperature.setText("0.5")
    sp.top_p.setText("")
    sp.context_size.setEditText("Auto")
    sp.proxy.setText("")
    assert sp.save()
    assert not any(e.isVisible() for e in sp.errors.values())
    s = AppContext.create(window.ctx.paths.data_dir).settings
    assert (s.temperature, s.top_p, s.context_size, s.max_tokens) == (0.5, None, None, 600)


def test_offline_mode_shows_in_the_status_bar_at_once(qtbot, window: MainWindow) -> None:
    sp = settings_page(window)
    view_action(window, "Settings").trigger()
    assert window.status_offline.text() == ""
    assert PRIVACY_STATEMENT in [w.text() for w in sp.findChildren(QLabel)]
    qtbot.keyClick(sp.offline, Qt.Key.Key_Space)
    assert sp.offline.isChecked()
    assert window.status_offline.text() == OFFLINE_LABEL
    assert AppContext.create(window.ctx.paths.data_dir).settings.offline is True
    sp.offline.setChecked(False)
    assert window.status_offline.text() == ""
    assert AppContext.create(window.ctx.paths.data_dir).settings.offline is False


def test_theme_change_applies_live(qtbot, window: MainWindow) -> None:
    app = QApplication.instance()
    old_palette, old_sheet = app.palette(), app.styleSheet()
    sp = settings_page(window)
    view_action(window, "Settings").trigger()
    try:
        sp.theme.setCurrentIndex(sp.theme.findData("dark"))
        assert app.palette().color(QPalette.ColorRole.Window).lightness() < 100
        assert AppContext.create(window.ctx.paths.data_dir).settings.theme == "dark"
        sp.theme.setCurrentIndex(sp.theme.findData("light"))
        assert app.palette().color(QPalette.ColorRole.Window).lightness() > 200
    finally:
        app.setPalette(old_palette)
        app.setStyleSheet(old_sheet)


def test_token_goes_to_the_keyring_never_to_settings(qtbot, window: MainWindow, memory_keyring: MemoryKeyring,
                                                     tmp_path: Path) -> None:
    sp = settings_page(window)
    view_action(window, "Settings").trigger()
    assert sp.token.echoMode() == QLineEdit.EchoMode.Password
    assert "No token is set" in sp.token_status.text() and not sp.session_only.isVisible()
    sp.token.setText("hf_secret_abc123")
    assert sp.save()
    assert list(memory_keyring.store.values()) == ["hf_secret_abc123"]
    assert sp.token.text() == "" and "saved in the system keyring" in sp.token_status.text()
    assert sp.tokens.get() == "hf_secret_abc123"
    settings_json = window.ctx.paths.settings_path.read_text(encoding="utf-8")
    assert "hf_secret" not in settings_json and json.loads(settings_json)
    assert not any("hf_secret" in p.read_text(errors="ignore") for p in tmp_path.rglob("*") if p.is_file())
    qtbot.mouseClick(sp.remove_token_button, Qt.MouseButton.LeftButton)
    assert memory_keyring.store == {} and "No token is set" in sp.token_status.text()


def test_without_a_keyring_the_token_is_kept_for_this_session_only(qtbot, window: MainWindow,
                                                                   tmp_path: Path) -> None:
    keyring.set_keyring(keyring.backends.fail.Keyring())
    sp = settings_page(window)
    view_action(window, "Settings").trigger()
    assert NO_KEYRING in sp.token_status.text() and sp.session_only.isVisible()
    path = window.ctx.paths.settings_path
    before = path.read_bytes() if path.exists() else None
    sp.token.setText("hf_session_only_tok")
    sp.max_tokens.setText("99")
    assert not sp.save()
    assert "Keep for this session only" in sp.errors["token"].text()
    assert (path.read_bytes() if path.exists() else None) == before
    assert sp.token.text() == "hf_session_only_tok"
    sp.session_only.setChecked(True)
    assert sp.save()
    assert sp.tokens.get() == "hf_session_only_tok"
    assert "this session only" in sp.token_status.text()
    assert not any("hf_session_only" in p.read_text(errors="ignore") for p in tmp_path.rglob("*") if p.is_file())


def test_every_control_has_an_accessible_name_and_takes_keyboard_focus(qtbot, window: MainWindow) -> None:
    pages = [hw_page(window), settings_page(window)]
    for page in pages:
        window.show_page(page)
        controls = [w for w in page.findChildren(QWidget)
                    if isinstance(w, (QAbstractButton, QLineEdit, QComboBox, QPlainTextEdit))
                    and not isinstance(w.parent(), QComboBox) and w.isVisibleTo(page)]
        assert controls
        unnamed = [f"{type(w).__name__} {getattr(w, 'text', lambda: '')()!r}" for w in controls if not w.accessibleName()]
        assert not unnamed, f"controls without an accessible name: {unnamed}"
        for w in controls:
            assert w.focusPolicy() & Qt.FocusPolicy.TabFocus, f"{w.accessibleName()} is not keyboard reachable"
    # Tab from the theme box reaches Save without the mouse.
    sp = settings_page(window)
    window.show_page(sp)
    window.activateWindow()
    sp.theme.setFocus()
    for _ in range(60):
        if sp.save_button.hasFocus():
            break
        qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Tab)
    assert sp.save_button.hasFocus()
