"""Approval in the window: an MCP call's card shows its arguments and Allow once / Always / Deny;
the turn's worker waits, the window does not. Real MCP server (HTTP, 127.0.0.1), scripted model."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from app.context import AppContext
from app.tools.mcp_config import McpConfig
from tests.support.mcp_servers import http_test_server
from tests.ui.helpers import use_script
from ui.chat.approval import ApprovalPanel
from ui.pages.tools import ToolsPanel
from ui.shell.app import add_mcp_tools
from ui.shell.main_window import MainWindow

CALL = ("<|channel|>commentary to=functions.mcp__web__echo <|constrain|>json<|message|>"
        '{"text": "hello"}<|call|>')
AFTER = "<|channel|>final<|message|>Done.<|return|>"


@pytest.fixture(scope="module")
def http_url() -> Iterator[str]:
    with http_test_server() as url:
        yield url


@pytest.fixture
def window(qtbot, tmp_path: Path, http_url: str) -> Iterator[tuple[MainWindow, ToolsPanel]]:
    ctx = AppContext.create(tmp_path / "data")
    McpConfig.for_paths(ctx.paths).add_url("web", http_url)
    win = MainWindow(ctx)
    tools = add_mcp_tools(win)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: tools.rows["web"].state.text() == "connected", timeout=20000)
    yield win, tools
    win.close()
    ctx.close()


def _start(qtbot, win: MainWindow, scripts: list[str]) -> None:
    eng = use_script(win, scripts)
    eng.count_tokens = lambda _prompt: 100  # type: ignore[attr-defined]
    win.composer.set_text("Say hello through the server")
    qtbot.keyClick(win.composer.edit, Qt.Key.Key_Return)


def _panel(qtbot, win: MainWindow) -> ApprovalPanel:
    found: list[ApprovalPanel] = []

    def shown() -> bool:
        found[:] = [p for p in win.findChildren(ApprovalPanel) if p.allow_once.isVisible()]
        return bool(found)

    qtbot.waitUntil(shown, timeout=10000)
    return found[0]


def _tool_message(win: MainWindow) -> str:
    return next(m.content for m in win.ctx.store.messages(win.conversation_id) if m.role == "tool")


def test_allow_once_runs_the_call_and_shows_the_arguments_on_the_card(qtbot, window) -> None:
    win, _tools = window
    _start(qtbot, win, [CALL, AFTER])
    panel = _panel(qtbot, win)
    card = panel.parentWidget()
    assert card.objectName() == "toolCard" and card.name == "mcp__web__echo"
    assert json.loads(panel.arguments.text()) == {"text": "hello"}
    assert "web › echo" in panel.title.text()
    # The window keeps working while the worker waits for the answer.
    t0 = time.perf_counter()
    qtbot.wait(50)
    assert time.perf_counter() - t0 < 1 and win.controller.generating
    with qtbot.waitSignal(win.controller.busy_changed, timeout=20000, check_params_cb=lambda b: b is False):
        qtbot.mouseClick(panel.allow_once, Qt.MouseButton.LeftButton)
    assert _tool_message(win) == "echo: hello"
    assert card.result == "echo: hello" and panel.title.text() == "Allowed once."
    assert win.ctx.store.messages(win.conversation_id)[-1].content == "Done."
    assert McpConfig.for_paths(win.ctx.paths).get("web").always_allow == []


def test_deny_returns_a_refusal_and_the_reply_goes_on(qtbot, window) -> None:
    win, _tools = window
    _start(qtbot, win, [CALL, AFTER])
    panel = _panel(qtbot, win)
    with qtbot.waitSignal(win.controller.busy_changed, timeout=20000, check_params_cb=lambda b: b is False):
        qtbot.mouseClick(panel.deny, Qt.MouseButton.LeftButton)
    assert "The user denied this call to web › echo" in _tool_message(win)
    assert win.ctx.store.messages(win.conversation_id)[-1].content == "Done."


def test_always_allow_is_remembered_and_not_asked_again(qtbot, window) -> None:
    win, tools = window
    _start(qtbot, win, [CALL, CALL, AFTER])
    panel = _panel(qtbot, win)
    with qtbot.waitSignal(win.controller.busy_changed, timeout=20000, check_params_cb=lambda b: b is False):
        qtbot.mouseClick(panel.allow_always, Qt.MouseButton.LeftButton)
    tool_msgs = [m.content for m in win.ctx.store.messages(win.conversation_id) if m.role == "tool"]
    assert tool_msgs == ["echo: hello", "echo: hello"]  # the second call ran without a question
    assert len(win.findChildren(ApprovalPanel)) == 1
    assert McpConfig.for_paths(win.ctx.paths).get("web").always_allow == ["echo"]


def test_stop_while_asking_ends_the_turn(qtbot, window) -> None:
    win, _tools = window
    _start(qtbot, win, [CALL, AFTER])
    panel = _panel(qtbot, win)
    with qtbot.waitSignal(win.controller.busy_changed, timeout=20000, check_params_cb=lambda b: b is False):
        win.controller.stop()
    assert not panel.allow_once.isVisible() and panel.title.text() == "Denied."
    assert "denied" in _tool_message(win)


def test_settings_tools_panel_adds_switches_and_removes(qtbot, window, http_url: str) -> None:
    win, tools = window
    assert "echo" in tools.rows["web"].tools.text()
    tools.name_edit.setText("bad name")
    tools.target_edit.setText("x")
    qtbot.mouseClick(tools.add_button, Qt.MouseButton.LeftButton)
    assert "not usable" in tools.feedback.text() and "bad name" not in tools.rows
    tools.import_edit.setPlainText(json.dumps({"mcpServers": {"web2": {"url": http_url}}}))
    qtbot.mouseClick(tools.import_button, Qt.MouseButton.LeftButton)
    assert "Imported 1 server(s): web2" in tools.feedback.text()
    qtbot.waitUntil(lambda: tools.rows["web2"].state.text() == "connected", timeout=20000)
    assert "mcp__web2__echo" in win.controller.tools_factory().names()
    tools.rows["web2"].switch.setChecked(False)
    assert tools.rows["web2"].state.text() == "off"
    assert "mcp__web2__echo" not in win.controller.tools_factory().names()
    qtbot.mouseClick(tools.rows["web2"].remove, Qt.MouseButton.LeftButton)
    assert "web2" not in tools.rows and "web2" not in McpConfig.for_paths(win.ctx.paths)
