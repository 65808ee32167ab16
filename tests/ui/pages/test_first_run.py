"""The first-run welcome: this computer, the recommended model with its fit and size, Download,
"I already have a GGUF file", Skip for good, offline, and the benchmarks' opt-out."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFormLayout, QLabel, QPushButton

from app.context import AppContext
from app.hardware import HardwareInfo, builtin_profile
from app.models import DownloadState
from tests.support.fakehub import FakeHub
from app.settings import load_settings
from tests.app.models.conftest import FAST
from tests.keyrings import MemoryKeyring
from tests.gguf_models import write_tiny_gptoss
from ui.pages import first_run
from ui.pages import hardware as hardware_page
from ui.shell.app import add_first_run, add_hardware_page, add_models_page, build_window, connect_pages
from ui.pages.first_run import NO_FIRST_RUN_ENV, OFFLINE_NOTE, WelcomePage
from ui.shell.main_window import MainWindow
from ui.models.page import ModelsPage


@pytest.fixture(autouse=True)
def _isolated_network_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No real keyring, no inherited opt-out; HF_HUB_OFFLINE set by an offline window is undone."""
    before = keyring.get_keyring()
    keyring.set_keyring(MemoryKeyring())
    monkeypatch.delenv(NO_FIRST_RUN_ENV, raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    yield
    keyring.set_keyring(before)


class Machine:
    """Stands in for hardware detection (a llama.cpp probe) with a built-in profile."""

    def __init__(self) -> None:
        self.profile = "cpu-16gb"

    def detect(self, models_dir: object = None, **_kw: object) -> HardwareInfo:
        hw = builtin_profile(self.profile)
        hw.models_dir = str(models_dir)
        return hw


@pytest.fixture
def machine(monkeypatch: pytest.MonkeyPatch) -> Machine:
    m = Machine()
    monkeypatch.setattr(hardware_page, "detect_hardware", m.detect)
    return m


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[AppContext]:
    c = AppContext.create(tmp_path / "data")
    c.settings.models_dir = str(tmp_path / "models")
    yield c
    c.close()


def open_window(qtbot, ctx: AppContext) -> tuple[MainWindow, WelcomePage | None]:
    win = MainWindow(ctx)
    qtbot.addWidget(win)
    hardware = add_hardware_page(win)
    models = add_models_page(win, None)
    models.retry_policy = FAST
    connect_pages(hardware=hardware, models=models)
    welcome = add_first_run(win, models)
    win.show()
    return win, welcome


def models(win: MainWindow) -> ModelsPage:
    assert win.models_page is not None
    return win.models_page


def wait_ready(qtbot, win: MainWindow, welcome: WelcomePage) -> None:
    qtbot.waitUntil(lambda: models(win).hardware is not None and welcome.badge.text() not in ("Checking…", ""),
                    timeout=10000)


def click(qtbot, button: QPushButton) -> None:
    qtbot.waitUntil(button.isVisible, timeout=2000)
    assert button.isEnabled(), button.text()
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def form_text(form: QFormLayout) -> str:
    out = []
    for r in range(form.rowCount()):
        item = form.itemAt(r, QFormLayout.ItemRole.FieldRole) or form.itemAt(r, QFormLayout.ItemRole.SpanningRole)
        widget = item.widget() if item is not None else None
        if isinstance(widget, QLabel):
            out.append(widget.text())
    return "\n".join(out)


def test_welcome_shows_this_computer_and_the_recommended_model_with_its_fit_and_size(
        qtbot, ctx, machine) -> None:
    win, welcome = open_window(qtbot, ctx)
    try:
        assert welcome is not None and win.pages.currentWidget() is welcome
        assert "on this computer" in first_run.WHAT_HEARTH_IS
        wait_ready(qtbot, win, welcome)
        hw = form_text(welcome.hw_form)
        assert "17.2 GB total" in hw and "8 physical" in hw and "None found" in hw
        assert "gpt-oss-20b" in welcome.model_title.text()
        assert welcome.badge.text() == "Fits" and "Predicted memory" in welcome.badge.toolTip()
        assert welcome.model_size.text() == "Download size: 12.1 GB"
        assert "Runs on the CPU" in welcome.verdict.text()
        assert welcome.download_button.isEnabled() and "12.1 GB" in welcome.download_button.text()
        assert welcome.have_file_button.text() == "I already have a GGUF file"
        assert not welcome.alternative_button.isVisible()
    finally:
        win.close()


def test_too_large_says_so_and_offers_a_model_that_fits(qtbot, ctx, machine) -> None:
    machine.profile = "cpu-8gb"
    win, welcome = open_window(qtbot, ctx)
    try:
        assert welcome is not None
        wait_ready(qtbot, win, welcome)
        assert welcome.badge.text() == "Too large" and "Does not fit" in welcome.verdict.text()
        qtbot.waitUntil(welcome.alternative_button.isVisible, timeout=2000)
        assert "Qwen2.5 1.5B Instruct" in welcome.alternative_label.text()
        assert welcome.alternative_button.text() == "Download Qwen2.5 1.5B Instruct (1.1 GB)"
    finally:
        win.close()


def test_skip_is_remembered_and_the_welcome_never_shows_again(qtbot, ctx, machine) -> None:
    win, welcome = open_window(qtbot, ctx)
    try:
        assert welcome is not None
        click(qtbot, welcome.skip_button)
        assert win.pages.currentWidget() is win.chat_page
        assert win.pages.indexOf(welcome) == -1
        assert load_settings(ctx.paths.settings_path).first_run_done is True
    finally:
        win.close()
    win2, again = open_window(qtbot, ctx)
    try:
        assert again is None and win2.pages.currentWidget() is win2.chat_page
    finally:
        win2.close()


def test_i_already_have_a_gguf_file_opens_a_dialog_and_loads_it(qtbot, ctx, machine, tmp_path,
                                                                monkeypatch) -> None:
    model = write_tiny_gptoss(tmp_path / "downloads" / "my-gpt-oss.gguf")
    asked: list[str] = []

    def get_open_file_name(_parent, caption, *_args, **_kw) -> tuple[str, str]:
        asked.append(caption)
        return str(model), "GGUF models (*.gguf)"

    monkeypatch.setattr(first_run.QFileDialog, "getOpenFileName", get_open_file_name)
    win, welcome = open_window(qtbot, ctx)
    opened: list[str] = []
    monkeypatch.setattr(win, "open_model", opened.append)
    try:
        assert welcome is not None
        click(qtbot, welcome.have_file_button)
        assert asked == ["Choose a GGUF model"]
        qtbot.waitUntil(lambda: opened == [str(model)], timeout=10000)
        assert win.pages.currentWidget() is win.chat_page
        assert load_settings(ctx.paths.settings_path).first_run_done is True
        qtbot.waitUntil(lambda: "my-gpt-oss" in models(win).installed_tab.cards, timeout=10000)
        assert "Used where it is" in models(win).installed_tab.cards["my-gpt-oss"].detail.text()
    finally:
        win.close()


def test_a_file_that_is_not_a_model_is_explained_and_the_welcome_stays(qtbot, ctx, machine, tmp_path,
                                                                      monkeypatch) -> None:
    bad = tmp_path / "photo.gguf"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 100)
    monkeypatch.setattr(first_run.QFileDialog, "getOpenFileName", lambda *a, **k: (str(bad), ""))
    win, welcome = open_window(qtbot, ctx)
    try:
        assert welcome is not None
        click(qtbot, welcome.have_file_button)
        qtbot.waitUntil(lambda: "not a GGUF model" in welcome.status.text(), timeout=10000)
        assert welcome.status.objectName() == "errorLabel"
        assert win.pages.currentWidget() is welcome and welcome.have_file_button.isEnabled()
        assert ctx.settings.first_run_done is False
    finally:
        win.close()


def test_download_starts_on_the_models_page(qtbot, ctx, machine, tmp_path) -> None:
    data = write_tiny_gptoss(tmp_path / "src" / "gpt-oss-20b-MXFP4.gguf").read_bytes()
    with FakeHub() as hub:
        # A stand-in for ggml-org's file: the hub's checksum is the one verified.
        hub.add_file("ggml-org/gpt-oss-20b-GGUF", "gpt-oss-20b-MXFP4.gguf", data)
        ctx.settings.hf_endpoint = hub.url
        win, welcome = open_window(qtbot, ctx)
        try:
            assert welcome is not None
            wait_ready(qtbot, win, welcome)
            click(qtbot, welcome.download_button)
            page = models(win)
            assert win.pages.currentWidget() is page
            assert ctx.settings.first_run_done is True
            job_id = "ggml-org/gpt-oss-20b-GGUF@main:gpt-oss-20b-MXFP4.gguf"
            assert job_id in page.downloads.rows
            qtbot.waitUntil(lambda: page.downloads.rows[job_id].state is DownloadState.COMPLETED, timeout=20000)
            assert (Path(ctx.settings.models_dir) / "gpt-oss-20b-MXFP4.gguf").read_bytes() == data
        finally:
            win.close()


def test_works_offline_without_a_single_connection(qtbot, ctx, machine, monkeypatch) -> None:
    def no_connect(self, *args) -> None:
        pytest.fail(f"a socket connected to {args} in offline mode")

    monkeypatch.setattr(socket.socket, "connect", no_connect)
    ctx.settings.offline = True
    win, welcome = open_window(qtbot, ctx)
    try:
        assert welcome is not None
        wait_ready(qtbot, win, welcome)
        assert welcome.badge.text() == "Fits" and welcome.model_size.text() == "Download size: 12.1 GB"
        assert not welcome.download_button.isEnabled()
        assert welcome.status.text() == OFFLINE_NOTE
        assert welcome.have_file_button.isEnabled() and welcome.skip_button.isEnabled()
    finally:
        win.close()


def test_benchmarks_can_turn_the_welcome_off(qtbot, ctx, machine, monkeypatch) -> None:
    monkeypatch.setenv(NO_FIRST_RUN_ENV, "1")
    win, welcome = open_window(qtbot, ctx)
    try:
        assert welcome is None and win.pages.currentWidget() is win.chat_page
        assert ctx.settings.first_run_done is False
    finally:
        win.close()


def test_the_app_window_has_the_models_page_and_the_welcome(qtbot, ctx, machine) -> None:
    win = build_window(ctx)
    qtbot.addWidget(win)
    try:
        assert isinstance(models(win), ModelsPage)
        assert any(a.text() == "Models" for a in win.view_menu.actions())
        assert isinstance(win.pages.currentWidget(), WelcomePage)
        qtbot.waitUntil(lambda: models(win).hardware is not None, timeout=10000)
    finally:
        win.close()
