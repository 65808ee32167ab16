"""Long chats in the window: the marker where earlier messages left the model's view, the summary
(collapsed, editable), a message too long on its own, and the context meter's "what happens next".

The scripted engine drives the UI (about four characters a token, a tiny context); the last test
goes through the real engine on the tiny gpt-oss file.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from app.context import AppContext
from app.documents.index import estimate_tokens
from app.storage.conversations import CONTEXT_ROLE
from tests.ui.fake_engine import ScriptedEngine
from tests.ui.helpers import send
from ui.chat.context_marker import ContextMarkerWidget
from ui.shell.main_window import MainWindow

N_CTX = 700  # with max_tokens 64 a prompt may take 636 tokens; the tools alone take about 240


def reply(text: str) -> str:
    return f"<|channel|>final<|message|>{text}<|return|>"


def question(i: int) -> str:
    return f"Question {i}: " + " ".join(f"fact{i}-{k}" for k in range(70))  # about 100 tokens


def answer(i: int) -> str:
    return f"Answer {i}: " + " ".join(f"note{i}-{k}" for k in range(70))


def use_tiny_context(win: MainWindow, scripts: list[str], n_ctx: int = N_CTX) -> ScriptedEngine:
    """The scripted engine with a tiny context, as if a model had just loaded."""
    eng = ScriptedEngine(scripts, piece_delay=0.0005, n_ctx=n_ctx)
    win.controller.engine.close()
    win.controller.engine = eng  # type: ignore[assignment]
    win._on_controller_model_loaded(eng.model_info)  # noqa: SLF001 - as if the load finished
    return eng


@pytest.fixture
def window(qtbot, tmp_path: Path):
    ctx = AppContext.create(tmp_path / "data")
    ctx.settings.max_tokens = 64
    win = MainWindow(ctx)
    qtbot.addWidget(win)
    win.show()
    yield win
    win.close()
    ctx.close()


def transcript(win: MainWindow) -> list[str]:
    """The transcript's rows top to bottom: the role of each message widget, 'context' for a marker."""
    lay = win.chat_view._lay  # noqa: SLF001 - the column's order is what the user sees
    rows = []
    for i in range(lay.count()):
        w = lay.itemAt(i).widget()
        if w is not None and w in win.chat_view.widgets.values():
            rows.append(w.role)
    return rows


def marker_widget(win: MainWindow) -> ContextMarkerWidget:
    markers = [w for w in win.chat_view.widgets.values() if isinstance(w, ContextMarkerWidget)]
    assert len(markers) == 1, markers
    return markers[0]


def test_a_long_chat_shows_where_earlier_messages_left_the_view(qtbot, window: MainWindow) -> None:
    eng = use_tiny_context(window, [reply(answer(1)), reply(answer(2)), reply("Short answer three.")])
    send(qtbot, window, question(1))
    assert transcript(window) == ["user", "assistant"]
    trimmed: list = []
    window.controller.context_trimmed.connect(trimmed.append)
    send(qtbot, window, question(2))
    assert len(trimmed) == 1
    # The marker stands where it happened: after the question that no longer fitted, before its answer.
    assert transcript(window) == ["user", "assistant", "user", "context", "assistant"]
    marker = marker_widget(window)
    assert marker.label.text() == "Earlier messages are no longer in the model's view: 2 messages"
    assert not marker.summary_box.isVisibleTo(marker)  # dropped, not summarised: nothing to expand
    assert "fact1-3 " not in eng.prompts[-1] and "fact2-3 " in eng.prompts[-1]
    # The newest reply keeps its actions (the marker is not a reply).
    last = window.chat_view.message_widget(window.ctx.store.messages(window.conversation_id)[-1].id)
    assert last is not None and last.regen_button.isVisible()
    send(qtbot, window, "And three?")
    assert transcript(window).count("context") == 1

    # Reopened, the chat shows the marker at the same place.
    cid = window.conversation_id
    window.new_chat()
    assert transcript(window) == []
    window.open_conversation(cid)
    assert transcript(window) == ["user", "assistant", "user", "context", "assistant", "user", "assistant"]
    assert marker_widget(window).label.text().endswith("2 messages")


def test_regenerating_after_a_trim_keeps_one_marker_and_the_versions_on_the_reply(qtbot, window: MainWindow) -> None:
    use_tiny_context(window, [reply(answer(1)), reply(answer(2)), reply("Another answer two.")])
    send(qtbot, window, question(1))
    send(qtbot, window, question(2))
    with qtbot.waitSignal(window.controller.busy_changed, timeout=10000, check_params_cb=lambda b: not b):
        window.regenerate()
    # The old marker went with the old reply; the new turn set its own, right after the question.
    assert transcript(window) == ["user", "assistant", "user", "context", "assistant"]
    newest = window.ctx.store.messages(window.conversation_id)[-1]
    assert newest.content == "Another answer two."
    w = window.chat_view.message_widget(newest.id)
    assert w is not None and w.version_label.text() == "2/2"  # the fork's versions sit on the reply
    qtbot.waitUntil(lambda: marker_widget(window).isVisible(), timeout=2000)
    window.chat_view.version_requested.emit(*w.version[:1], 0)
    assert transcript(window) == ["user", "assistant", "user", "context", "assistant"]
    assert window.ctx.store.messages(window.conversation_id)[-1].content.startswith("Answer 2")


def test_summary_mode_shows_the_summary_collapsed_and_saves_an_edit(qtbot, window: MainWindow) -> None:
    window.ctx.settings.overflow = "summarize"  # new chats summarise
    summary = "The user asked two questions about facts; the answers listed notes."
    eng = use_tiny_context(window, [reply(answer(1)), reply(summary), reply(answer(2)), reply("Third.")])
    send(qtbot, window, question(1))
    assert window.ctx.store.get(window.conversation_id).options["overflow"] == "summarize"
    status: list[str] = []
    window.controller.summarizing.connect(lambda _cid, _n: status.append(window.chat_view.transient_label.text()))
    send(qtbot, window, question(2))
    assert status == ["Summarising 2 earlier messages…"]
    assert not window.chat_view.transient_label.isVisibleTo(window.chat_view)
    assert transcript(window) == ["user", "assistant", "user", "context", "assistant"]
    marker = marker_widget(window)
    assert marker.label.text().endswith("2 messages, replaced by a summary")
    assert marker.toggle.isVisible() and marker.toggle.text() == "Summary the model sees"
    assert not marker.expanded and not marker.body.isVisible()  # collapsed
    qtbot.mouseClick(marker.toggle, Qt.MouseButton.LeftButton)
    assert marker.expanded and marker.body.isVisible() and marker.body.text() == summary
    assert summary in eng.prompts[-1]

    qtbot.mouseClick(marker.edit_button, Qt.MouseButton.LeftButton)
    assert marker.editing and marker.editor.toPlainText() == summary
    marker.editor.setPlainText("")
    qtbot.mouseClick(marker.save_button, Qt.MouseButton.LeftButton)
    assert marker.error_label.isVisible() and "empty" in marker.error_label.text()  # nothing saved
    marker.editor.setPlainText("Edited: the user collects facts; keep answers short.")
    qtbot.mouseClick(marker.save_button, Qt.MouseButton.LeftButton)
    stored = lambda: window.ctx.store.get_message(marker.message_id).content  # noqa: E731
    qtbot.waitUntil(lambda: stored() == "Edited: the user collects facts; keep answers short.", timeout=5000)
    qtbot.waitUntil(lambda: not marker.editing, timeout=5000)
    assert marker.body.text() == stored()
    # The model sees the edit from the next message on.
    send(qtbot, window, "Three?")
    assert "Edited: the user collects facts" in eng.prompts[-1] and summary not in eng.prompts[-1]

    cid = window.conversation_id
    window.new_chat()
    window.open_conversation(cid)
    reopened = marker_widget(window)
    assert not reopened.expanded and reopened.body.text().startswith("Edited:")


def test_a_message_too_long_on_its_own_stays_in_the_composer(qtbot, window: MainWindow) -> None:
    use_tiny_context(window, [reply("Fine.")])
    book = "A pasted book. " + "word " * 600
    refused: list = []
    window.controller.message_refused.connect(lambda *a: refused.append(a))
    window.composer.set_text(book)
    with qtbot.waitSignal(window.controller.busy_changed, timeout=10000, check_params_cb=lambda b: not b):
        qtbot.keyClick(window.composer.edit, Qt.Key.Key_Return)
    assert refused and window.composer.text() == book
    box = window._last_error_box  # noqa: SLF001 - the one the window showed
    assert "tokens long" in box.text() and "700 tokens" in box.text() and "document" in box.text()
    # Nothing was saved: no empty chat left behind, and the window is back on a new chat.
    assert window.ctx.store.list() == [] and window.conversation_id is None

    # In a chat that already has messages: nothing is added, the text comes back again.
    window.composer.set_text("Hello")
    send(qtbot, window, "Hello")
    cid = window.conversation_id
    before = window.ctx.store.message_count(cid)
    window.composer.set_text(book)
    with qtbot.waitSignal(window.controller.busy_changed, timeout=10000, check_params_cb=lambda b: not b):
        qtbot.keyClick(window.composer.edit, Qt.Key.Key_Return)
    assert window.composer.text() == book
    assert window.conversation_id == cid and window.ctx.store.message_count(cid) == before


def test_the_meter_says_what_happens_next_and_the_documents_share(qtbot, window: MainWindow) -> None:
    eng = use_tiny_context(window, [reply("One."), reply("Two.")], n_ctx=4096)
    passage = "Attached report text. " * 40  # 880 characters
    docs = estimate_tokens(passage)  # 252: documents are sized as the documents index sizes them

    def extra_context(_cid: int, _question: str) -> tuple[list, list]:
        return [{"role": "user", "content": passage}], []

    window.controller.extra_context_factory = lambda _cid, _tools: extra_context
    send(qtbot, window, "Hello")
    assert passage in eng.prompts[-1]
    label = window.composer.context_label
    used, total = window.composer.context
    assert total == 4096 and used
    assert f"documents {docs}" in label.text()
    tip = label.toolTip()
    assert f"Attached documents take about {docs}" in tip
    assert "the oldest turns leave the model's view" in tip
    left = 4096 - 64 - used  # the reply's room (max_tokens 64) stays free
    assert f"about {left:,} tokens are left before that" in tip

    # The chat's own policy: summarise.
    window.ctx.store.set_options(window.conversation_id, overflow="summarize")
    window.long_chats.refresh()
    assert "summarises the oldest turns" in label.toolTip()
    window.composer.set_context(4090, 4096)
    assert label.property("level") == "warn" and "the next message moves the view on" in label.toolTip()


def test_a_new_chat_s_meter_counts_its_instructions_and_tools(qtbot, window: MainWindow) -> None:
    """Before the first reply the meter is not 0: the tool definitions are already in the model's view."""
    eng = use_tiny_context(window, [reply("Fine.")], n_ctx=4096)
    window.new_chat()
    qtbot.waitUntil(lambda: bool(window.composer.context[0]), timeout=10000)
    used, total = window.composer.context
    assert total == 4096
    # What the scripted engine counts for the first turn's prompt, less the message and its headers.
    assert 150 < used < 600, used
    assert "tokens" in window.composer.context_label.text() and "0 /" not in window.composer.context_label.text()
    send(qtbot, window, "Hi")
    first_prompt = eng.count_tokens_of_text(eng.prompts[-1])
    assert used < first_prompt <= used + 12
    assert window.composer.context[0] > first_prompt  # now the reply's own count

    # A chat whose tools are off holds less.
    window.ctx.store.set_options(window.conversation_id, tools=False)
    window.composer.set_context(0, 4096)
    got: list[int | None] = []
    window.controller.count_base(window.conversation_id, "medium", got.append)
    qtbot.waitUntil(lambda: bool(got), timeout=10000)
    assert got[0] is not None and got[0] < used - 100


def test_a_long_chat_through_the_real_engine_shows_its_marker(qtbot, tmp_path: Path, gptoss_mxfp4_path: Path) -> None:
    ctx = AppContext.create(tmp_path / "real")
    ctx.settings.context_size = 512
    ctx.settings.max_tokens = 24
    ctx.settings.temperature = 1.0
    ctx.settings.threads = 2
    win = MainWindow(ctx)
    qtbot.addWidget(win)
    win.show()
    try:
        with qtbot.waitSignal(win.controller.model_loaded, timeout=60000):
            win.open_model(str(gptoss_mxfp4_path))
        assert win.controller.model_info["n_ctx"] == 512
        win.controller.tools_factory = None  # the tools' declarations alone would take most of 512 tokens
        trimmed: list = []
        win.controller.context_trimmed.connect(trimmed.append)
        for i in range(30):
            send(qtbot, win, f"Question {i}: what of " + " ".join(str(i * 7 + k) for k in range(12)))
            assert win.composer.text() == "", "every message fits on its own"
            if trimmed:
                break
        assert trimmed, "a 512-token context filled up within 30 turns"
        marker = marker_widget(win)
        rows = transcript(win)
        assert rows[-2:] == ["context", "assistant"] and rows[-3] == "user"
        stored = [m for m in ctx.store.messages(win.conversation_id) if m.role == CONTEXT_ROLE]
        assert len(stored) == 1 and marker.message_id == stored[0].id
        assert marker.label.text().startswith("Earlier messages are no longer in the model's view:")
        assert stored[0].stats["dropped_messages"] >= 2
    finally:
        win.close()
        ctx.close()
