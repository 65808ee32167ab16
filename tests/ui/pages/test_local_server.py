"""Settings › Local server: off by default; switched on it serves the window's engine to the openai client."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import openai
import pytest

from app.context import AppContext
from app.models import TokenStore
from tests.ui.fake_engine import ScriptedEngine
from ui.pages.local_server import LocalServerPanel
from ui.shell.app import add_settings_page
from ui.shell.main_window import MainWindow

ANSWER = "<|channel|>analysis<|message|>Greeting.<|end|><|start|>assistant<|channel|>final<|message|>Hi!<|return|>"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def panel(qtbot, ctx: AppContext) -> Iterator[LocalServerPanel]:
    controller = SimpleNamespace(engine=ScriptedEngine([ANSWER, ANSWER], piece_delay=0.001))
    p = LocalServerPanel(ctx, controller)
    qtbot.addWidget(p)
    yield p
    p.shutdown()


def test_off_by_default_then_serves_counts_and_stops(qtbot, panel: LocalServerPanel, ctx: AppContext) -> None:
    assert not ctx.settings.server_enabled
    panel.start_if_enabled()
    assert not panel.enabled.isChecked() and panel.server is None and panel.url.text() == "off"
    port = _free_port()
    panel.port.setValue(port)
    panel.new_key.click()
    key = panel.key.text()
    assert key.startswith("hearth-") and len(key) > 20
    panel.enabled.setChecked(True)
    qtbot.waitUntil(lambda: panel.url.text().startswith("http://"), timeout=10000)
    assert panel.url.text() == f"http://127.0.0.1:{port}/v1"
    assert ctx.settings.server_enabled and ctx.settings.server_api_key == key
    assert not panel.port.isEnabled()  # settings apply on the next start
    c = openai.OpenAI(base_url=panel.url.text(), api_key=key, max_retries=0, timeout=30)
    r = c.chat.completions.create(model="scripted", messages=[{"role": "user", "content": "hi"}])
    assert r.choices[0].message.content == "Hi!"
    qtbot.waitUntil(lambda: panel.count.text().startswith("1 request"), timeout=5000)
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=panel.url.text(), api_key="wrong", max_retries=0).models.list()
    panel.enabled.setChecked(False)
    assert panel.url.text() == "off" and not ctx.settings.server_enabled
    qtbot.waitUntil(lambda: not panel.jobs.busy(), timeout=10000)
    with pytest.raises(openai.APIConnectionError):
        c.models.list()


def test_a_taken_port_is_said_and_the_switch_goes_back(qtbot, panel: LocalServerPanel) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        panel.port.setValue(taken.getsockname()[1])
        panel.enabled.setChecked(True)
        qtbot.waitUntil(lambda: not panel.enabled.isChecked(), timeout=10000)
    assert "already in use" in panel.status.text() and panel.url.text() == "off"
    assert panel.port.isEnabled()


def test_the_window_serves_its_loaded_model(qtbot, ctx: AppContext, gptoss_mxfp4_path: Path) -> None:
    ctx.settings.server_enabled = True
    ctx.settings.server_port = _free_port()
    win = MainWindow(ctx)
    qtbot.addWidget(win)
    try:
        page = add_settings_page(win, TokenStore())
        panel = page.local_server_panel
        assert isinstance(panel, LocalServerPanel)
        qtbot.waitUntil(lambda: panel.url.text().startswith("http://"), timeout=10000)
        c = openai.OpenAI(base_url=panel.url.text(), api_key="none", max_retries=0, timeout=60)
        with pytest.raises(openai.InternalServerError) as exc:  # nothing loaded yet
            c.chat.completions.create(model="x", messages=[{"role": "user", "content": "hi"}])
        assert exc.value.status_code == 503
        win.controller.engine.load_blocking(str(gptoss_mxfp4_path),
                                            {"n_ctx": 512, "n_threads": 2, "flash_attn": True, "swa_full": False})
        r = c.chat.completions.create(model=gptoss_mxfp4_path.stem, max_tokens=4,
                                      messages=[{"role": "user", "content": "hi"}])
        assert 1 <= r.usage.completion_tokens <= 4
    finally:
        win.close()
    assert panel.server is None  # the window's closing stopped it before the engine went
