"""gpt-oss in the window: thinking section, collapse, final answer, tool cards, stop in a tool loop."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from app.context import AppContext
from app.harmony.tools import Tool, ToolRegistry, default_registry
from ui.shell.main_window import MainWindow
from tests.ui.helpers import send, use_script

THINK_THEN_ANSWER = ("<|channel|>analysis<|message|>The user asks for 2+2. That is four, simple arithmetic."
                     "<|end|><|start|>assistant<|channel|>final<|message|>The answer is **4**.<|return|>")
CALL_CALCULATOR = ("<|channel|>analysis<|message|>Use the calculator.<|end|><|start|>assistant"
                   "<|channel|>commentary to=functions.calculator <|constrain|>json<|message|>"
                   '{"expression": "6*7"}<|call|>')
AFTER_TOOL = "<|channel|>final<|message|>6 × 7 = 42.<|return|>"


@pytest.fixture
def window(qtbot, tmp_path: Path):
    ctx = AppContext.create(tmp_path / "data")
    win = MainWindow(ctx)
    qtbot.addWidget(win)
    win.show()
    yield win
    win.close()
    ctx.close()


def test_thinking_streams_then_collapses_into_the_answer(qtbot, window: MainWindow) -> None:
    eng = use_script(window, [THINK_THEN_ANSWER], delay=0.03)
    assert window.composer.reasoning.isVisible()
    window.composer.reasoning.setCurrentIndex(2)  # high
    window.composer.set_text("What is 2+2?")
    qtbot.keyClick(window.composer.edit, Qt.Key.Key_Return)
    seen_open = []

    def thinking_open() -> bool:
        for w in window.chat_view.widgets.values():
            if w.thinking is not None and w.thinking.text and not w.content_text:
                seen_open.append((w.thinking.expanded, w.thinking.toggle.text()))
                return True
        return False

    qtbot.waitUntil(thinking_open, timeout=10000)
    assert seen_open[0] == (True, "Thinking…")
    qtbot.waitUntil(lambda: not window.controller.generating, timeout=20000)
    reply = window.ctx.store.messages(window.conversation_id)[-1]
    assert reply.content == "The answer is **4**." and reply.thinking.startswith("The user asks for 2+2")
    w = window.chat_view.message_widget(reply.id)
    assert not w.thinking.expanded and w.thinking.toggle.text().startswith("Thought for")
    assert "<b>4</b>" in w.markdown._widgets[0][1].text() or "<strong>4</strong>" in w.markdown._widgets[0][1].text()
    assert "Reasoning: high" in eng.prompts[0]
    import gc

    assert gc.get_freeze_count() == 0  # objects frozen for the stream are handed back to the collector
    assert window.ctx.store.get(window.conversation_id).reasoning_effort == "high"
    # clicking reopens the thinking
    qtbot.mouseClick(w.thinking.toggle, Qt.MouseButton.LeftButton)
    assert w.thinking.expanded and w.thinking.body.isVisible()


def test_tool_call_shows_a_card_and_feeds_the_result_back(qtbot, window: MainWindow) -> None:
    eng = use_script(window, [CALL_CALCULATOR, AFTER_TOOL])
    send(qtbot, window, "What is 6 times 7?")
    msgs = window.ctx.store.messages(window.conversation_id)
    assert [m.role for m in msgs] == ["user", "assistant", "tool", "assistant"]
    assert msgs[1].tool_calls[0]["function"]["name"] == "calculator"
    assert msgs[2].content == "42" and msgs[3].content == "6 × 7 = 42."
    card = next(iter(window.chat_view.message_widget(msgs[1].id).tool_cards.values()))
    assert card.header.text().startswith("calculator(6*7)") and "→ 42" in card.header.text()
    # the icon is drawn from assets/icons, not an emoji glyph that common fonts lack
    assert not card.header.icon().isNull() and not any(ord(ch) > 0xFFFF for ch in card.header.text())
    qtbot.mouseClick(card.header, Qt.MouseButton.LeftButton)
    assert card.detail.isVisible() and '"6*7"' in card.detail.text()
    # the second prompt carried the call and its result in harmony form
    assert "to=functions.calculator" in eng.prompts[1] and "<|start|>functions.calculator to=assistant" in eng.prompts[1]


def test_stop_during_a_tool_loop(qtbot, window: MainWindow) -> None:
    calls = []

    def slow(args: dict) -> str:
        calls.append(args)
        time.sleep(1.0)
        return "done"

    def registry() -> ToolRegistry:
        reg = default_registry()
        reg.register(Tool("slow_lookup", "Looks something up slowly.", {"type": "object", "properties": {}}, slow))
        return reg

    window.controller.tools_factory = registry
    call = ("<|channel|>commentary to=functions.slow_lookup <|constrain|>json<|message|>{}<|call|>")
    eng = use_script(window, [call, call, AFTER_TOOL])
    window.composer.set_text("look it up")
    qtbot.keyClick(window.composer.edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: len(calls) == 1, timeout=10000)
    with qtbot.waitSignal(window.controller.busy_changed, timeout=5000):
        qtbot.mouseClick(window.composer.send_button, Qt.MouseButton.LeftButton)
    assert len(calls) == 1 and len(eng.prompts) == 1  # no further generation after Stop
    roles = [m.role for m in window.ctx.store.messages(window.conversation_id)]
    assert roles == ["user", "assistant", "tool"]


def test_bad_tool_arguments_go_back_to_the_model(qtbot, window: MainWindow) -> None:
    bad = ("<|channel|>commentary to=functions.calculator <|constrain|>json<|message|>{not json<|call|>")
    unknown = ("<|channel|>commentary to=functions.teleport <|constrain|>json<|message|>{}<|call|>")
    eng = use_script(window, [bad, unknown, AFTER_TOOL])
    send(qtbot, window, "break things")
    tool_msgs = [m for m in window.ctx.store.messages(window.conversation_id) if m.role == "tool"]
    assert len(tool_msgs) == 2
    assert "json" in tool_msgs[0].content.lower() and "teleport" in tool_msgs[1].content
    assert window.ctx.store.messages(window.conversation_id)[-1].content == "6 × 7 = 42."
    assert len(eng.prompts) == 3


def test_at_most_eight_tool_calls_per_turn(qtbot, window: MainWindow) -> None:
    call = ('<|channel|>commentary to=functions.calculator <|constrain|>json<|message|>{"expression": "1+1"}<|call|>')
    eng = use_script(window, [call] * 12 + [AFTER_TOOL])
    send(qtbot, window, "loop forever")
    tool_msgs = [m for m in window.ctx.store.messages(window.conversation_id) if m.role == "tool"]
    assert len(tool_msgs) == 8
    assert len(eng.prompts) == 9  # eight calls, then one pass without tools for the answer
    assert "functions" not in eng.prompts[-1].split("<|start|>developer", 1)[-1].split("<|end|>")[0]
