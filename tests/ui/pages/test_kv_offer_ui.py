"""The 8-bit KV-cache offer on the Hardware page and the KV cache setting, through the real
engine (gemma 270M) on a machine whose RAM holds gemma's full 32k context only with q8_0."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from app.context import AppContext
from app.gguf_info import read_gguf_info
from app.hardware import HardwareInfo
from app.models.token import TokenStore
from app.planner import ModelSpec, plan_load
from ui.pages import hardware as hardware_page
from ui.shell.app import add_hardware_page, add_settings_page, connect_pages
from ui.shell.main_window import MainWindow
from tests.app.planner.test_plan import _cpu_machine
from tests.ui.pages.test_hardware_settings_ui import form_text, view_action

GIB = 1024**3


@pytest.fixture
def tight_machine(gemma_path: Path, monkeypatch: pytest.MonkeyPatch) -> HardwareInfo:
    """RAM for gemma at 32k with an 8-bit cache, not with f16 (the page's detection returns it)."""
    spec = ModelSpec.from_gguf(read_gguf_info(gemma_path))
    f16 = plan_load(spec, _cpu_machine(64), n_ctx=spec.n_ctx_train, overrides={"n_threads": 2})
    q8 = plan_load(spec, _cpu_machine(64), n_ctx=spec.n_ctx_train, overrides={"n_threads": 2, "type_k": "q8_0"})
    budget = (f16.ram_bytes + q8.ram_bytes) // 2
    hw = _cpu_machine((budget + 2.5 * GIB) / GIB, cores=2)  # the system keeps 2.5 GiB of a small machine
    monkeypatch.setattr(hardware_page, "detect_hardware", lambda models_dir=None, **_kw: hw)
    return hw


@pytest.fixture
def window(qtbot, ctx: AppContext, tight_machine: HardwareInfo) -> Iterator[MainWindow]:
    ctx.settings.context_size = None  # Auto: the planner chooses, and may offer more
    win = MainWindow(ctx)
    qtbot.addWidget(win)
    connect_pages(hardware=add_hardware_page(win), settings=add_settings_page(win, TokenStore()))
    win.show()
    qtbot.waitUntil(lambda: win.hardware_page is not None and win.hardware_page.hardware is not None, timeout=5000)
    yield win
    win.close()


def test_accepting_the_offer_reloads_with_the_8bit_cache_and_the_larger_context(
        qtbot, window: MainWindow, ctx: AppContext, gemma_path: Path) -> None:
    page = window.hardware_page
    assert page is not None
    with qtbot.waitSignal(window.controller.model_loaded, timeout=60000):
        window.open_model(str(gemma_path))
    window.show_page(page)
    rows = form_text(page.plan_form)
    assert rows["KV cache type"] == "F16" and rows["Context"] == "16,384 tokens"
    assert page.kv_offer_row.isVisible() and page.kv_offer_button.isEnabled()
    text = page.kv_offer_label.text()
    assert "doubles the context, from 16,384 to 32,768 tokens" in text and "less precise attention" in text

    with qtbot.waitSignal(window.controller.model_loaded, timeout=60000):
        qtbot.mouseClick(page.kv_offer_button, Qt.MouseButton.LeftButton)
    assert ctx.settings.kv_cache == "q8_0"
    assert json.loads(ctx.paths.settings_path.read_text(encoding="utf-8"))["kv_cache"] == "q8_0"
    assert window.controller.engine.model_info["n_ctx"] == 32768  # the worker really has the larger context
    rows = form_text(page.plan_form)
    assert rows["KV cache type"] == "Q8_0" and rows["Context"] == "32,768 tokens"
    assert not page.kv_offer_row.isVisible()

    # Settings shows the choice, and going back to Automatic asks for a reload.
    sp = window.settings_page
    assert sp is not None
    view_action(window, "Settings").trigger()
    assert sp.kv_cache.currentText() == "8-bit (q8_0)"
    sp.kv_cache.setCurrentIndex(sp.kv_cache.findData("auto"))
    assert sp.save()
    assert ctx.settings.kv_cache == "auto"
    assert sp.reload_banner.isVisible() and "KV cache" in sp.reload_label.text()
    with qtbot.waitSignal(window.controller.model_loaded, timeout=60000):
        qtbot.mouseClick(sp.reload_button, Qt.MouseButton.LeftButton)
    window.show_page(page)
    assert form_text(page.plan_form)["KV cache type"] == "F16" and page.kv_offer_row.isVisible()


def test_full_precision_setting_means_no_offer(qtbot, window: MainWindow, ctx: AppContext, gemma_path: Path) -> None:
    sp = window.settings_page
    assert sp is not None
    view_action(window, "Settings").trigger()
    assert [sp.kv_cache.itemText(i) for i in range(sp.kv_cache.count())] == [
        "Automatic", "Full precision (f16)", "8-bit (q8_0)"]
    assert sp.kv_cache.currentText() == "Automatic"
    sp.kv_cache.setCurrentIndex(sp.kv_cache.findData("f16"))
    assert sp.save() and ctx.settings.kv_cache == "f16"
    page = window.hardware_page
    assert page is not None
    with qtbot.waitSignal(window.controller.model_loaded, timeout=60000):
        window.open_model(str(gemma_path))
    window.show_page(page)
    assert form_text(page.plan_form)["KV cache type"] == "F16"
    assert not page.kv_offer_row.isVisible()
