"""What the user sees in the chat pane: never an empty pane, edits that show, versions,
Esc from anywhere, Retry after a crash, actions that are only enabled when they work."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QApplication

from app.context import AppContext
from tests.ui.helpers import send, use_script
from ui.chat.chat_view import ChatView
from ui.shell.main_window import MainWindow

PARA = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore "
        "et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris. ")


def long_reply(n: int = 24) -> str:
    body = "\n\n".join(f"**Part {i}.** {PARA * 2}" for i in range(n))
    body += "\n\n- one\n- two\n- three\n\n```python\nprint('hello')\n```\n\nThe end."
    return "<|channel|>final<|message|>" + body + "<|return|>"


def ink(view: ChatView) -> float:
    """The share of the viewport's pixels that differ from its background (text, bubbles)."""
    img = view.viewport().grab().toImage()
    bg = QColor(img.pixelColor(2, 2))
    hits = total = 0
    for y in range(0, img.height(), 4):
        for x in range(0, img.width(), 4):
            c = img.pixelColor(x, y)
            total += 1
            if abs(c.red() - bg.red()) + abs(c.green() - bg.green()) + abs(c.blue() - bg.blue()) > 60:
                hits += 1
    return hits / max(1, total)


def content_bottom(view: ChatView) -> int:
    last = list(view.widgets.values())[-1]
    return last.mapTo(view.widget(), QPoint(0, last.height())).y()


def assert_shows_text(qtbot, view: ChatView, where: str) -> None:
    qtbot.wait(50)
    QApplication.processEvents()
    bar = view.verticalScrollBar()
    canvas = view.widget()
    share = ink(view)
    if share <= 0.02:
        view.viewport().grab().save(os.path.join(os.environ.get("TMPDIR", "/tmp"), "hearth-blank-pane.png"))
        print("scroll", bar.value(), bar.maximum(), bar.pageStep(), "canvas", canvas.size(), "bottom",
              content_bottom(view), "viewport", view.viewport().size())
        for w in view.widgets.values():
            print(w.role, w.geometry(), w.heightForWidth(w.width()), w.isVisible())
            for kind, c in (w.markdown._widgets if w.markdown else []):
                if c.heightForWidth(c.width()) != c.height():
                    print("   ", kind, c.width(), c.height(), c.heightForWidth(c.width()), c.minimumSizeHint())
        print("col", view.column.geometry(), view.column.layout().totalHeightForWidth(view.column.width()))
        print("canvas hfw", canvas.layout().totalHeightForWidth(canvas.width()), canvas.minimumSizeHint(), canvas.minimumSize())
        qtbot.wait(500)
        print("later", canvas.size(), content_bottom(view))
        for w in view.widgets.values():
            if w.markdown:
                for kind, c in w.markdown._widgets:
                    c.updateGeometry()
        qtbot.wait(100)
        print("after label updateGeometry", canvas.size(), content_bottom(view))
        for w in view.widgets.values():
            w.updateGeometry()
        qtbot.wait(100)
        print("after msg updateGeometry", canvas.size(), content_bottom(view))
    assert share > 0.02, f"the chat pane is blank {where}"
    # the scroll range is the content: no empty area below the last message to scroll into
    assert bar.maximum() + bar.pageStep() == canvas.height(), where
    assert canvas.height() - content_bottom(view) <= 40, f"empty space below the last message {where}"


@pytest.fixture
def window(qtbot, ctx: AppContext):
    win = MainWindow(ctx)
    qtbot.addWidget(win)
    win.resize(900, 600)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.close()


def test_a_long_reply_is_visible_while_streaming_at_the_bottom_top_after_reopen_and_restart(
        qtbot, window: MainWindow, ctx: AppContext) -> None:
    use_script(window, [long_reply()], delay=0.002)
    view = window.chat_view
    window.composer.set_text("Tell me a long story")
    with qtbot.waitSignal(window.controller.busy_changed, timeout=60000, check_params_cb=lambda b: not b):
        qtbot.keyClick(window.composer.edit, Qt.Key.Key_Return)
        qtbot.waitUntil(lambda: view.verticalScrollBar().maximum() > view.viewport().height(), timeout=30000)
        assert ink(view) > 0.02, "blank while streaming"
    assert view.widget().height() > 3 * view.viewport().height(), "the reply is 3x the viewport"
    assert_shows_text(qtbot, view, "at the bottom after streaming")
    assert view.verticalScrollBar().value() == view.verticalScrollBar().maximum()
    view.verticalScrollBar().setValue(0)
    assert_shows_text(qtbot, view, "scrolled to the top")
    window.open_conversation(window.conversation_id)
    qtbot.wait(100)
    assert_shows_text(qtbot, view, "after reopening")
    cid = window.conversation_id
    window.close()
    again = MainWindow(ctx)
    qtbot.addWidget(again)
    again.resize(900, 600)
    again.show()
    qtbot.waitExposed(again)
    qtbot.waitUntil(lambda: again.conversation_id == cid, timeout=5000)
    assert_shows_text(qtbot, again.chat_view, "after a restart")
    again.close()


def test_after_stop_and_regenerate_the_pane_shows_text(qtbot, window: MainWindow) -> None:
    use_script(window, [long_reply(), long_reply(30)], delay=0.01)
    view = window.chat_view
    window.composer.set_text("Go")
    with qtbot.waitSignal(window.controller.busy_changed, timeout=60000, check_params_cb=lambda b: not b):
        qtbot.keyClick(window.composer.edit, Qt.Key.Key_Return)
        qtbot.waitUntil(lambda: view.verticalScrollBar().maximum() > 2 * view.viewport().height(), timeout=30000)
        window.controller.stop()
    assert_shows_text(qtbot, view, "after Stop")
    with qtbot.waitSignal(window.controller.busy_changed, timeout=60000, check_params_cb=lambda b: not b):
        window.regenerate()
    assert_shows_text(qtbot, view, "after Regenerate")
    # a small window too
    window.resize(520, 420)
    qtbot.wait(100)
    assert_shows_text(qtbot, view, "in a small window")


def test_regenerate_keeps_versions_and_the_arrows_flip_between_them(qtbot, window: MainWindow) -> None:
    one = "<|channel|>final<|message|>First answer.<|return|>"
    two = "<|channel|>final<|message|>Second answer.<|return|>"
    use_script(window, [one, two, "<|channel|>final<|message|>After the first.<|return|>"])
    send(qtbot, window, "Question")
    with qtbot.waitSignal(window.controller.busy_changed, timeout=30000, check_params_cb=lambda b: not b):
        window.regenerate()
    store, cid = window.ctx.store, window.conversation_id
    reply = window.chat_view.message_widget(store.messages(cid)[-1].id)
    assert reply.content_text == "Second answer." and reply.version_label.text() == "2/2"
    assert reply.prev_version_button.isEnabled() and not reply.next_version_button.isEnabled()
    qtbot.mouseClick(reply.prev_version_button, Qt.MouseButton.LeftButton)
    shown = store.messages(cid)[-1]
    w = window.chat_view.message_widget(shown.id)
    assert shown.content == "First answer." and w.content_text == "First answer." and w.version_label.text() == "1/2"
    # the chat continues from the version shown
    send(qtbot, window, "And then?")
    assert [m.content for m in store.messages(cid)] == ["Question", "First answer.", "And then?", "After the first."]
    assert "First answer." in window.controller.engine.prompts[-1]
    assert "Second answer." not in window.controller.engine.prompts[-1]


def test_escape_stops_a_reply_after_the_regenerate_button_took_the_focus(qtbot, window: MainWindow) -> None:
    use_script(window, ["<|channel|>final<|message|>short<|return|>", long_reply(60)], delay=0.02)
    send(qtbot, window, "hi")
    reply = window.chat_view.message_widget(window.ctx.store.messages(window.conversation_id)[-1].id)
    reply.regen_button.setFocus()
    with qtbot.waitSignal(window.controller.busy_changed, timeout=30000, check_params_cb=lambda b: not b):
        qtbot.mouseClick(reply.regen_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: window.controller.generating, timeout=5000)
        focus = QApplication.focusWidget()
        assert focus is not window.composer.edit
        qtbot.keyClick(focus or window, Qt.Key.Key_Escape)
    last = window.ctx.store.messages(window.conversation_id)[-1]
    assert last.status == "stopped"


def test_actions_are_enabled_only_when_they_can_work(qtbot, window: MainWindow) -> None:
    assert not window.action_stop.isEnabled() and not window.action_regenerate.isEnabled()
    assert not window.action_unload.isEnabled() and not window.eject_button.isEnabled()
    assert not window.composer.send_button.isEnabled()
    use_script(window, [long_reply(20)], delay=0.01)
    assert window.action_unload.isEnabled() and window.composer.send_button.isEnabled()
    window.composer.set_text("Go")
    with qtbot.waitSignal(window.controller.busy_changed, timeout=60000, check_params_cb=lambda b: not b):
        qtbot.keyClick(window.composer.edit, Qt.Key.Key_Return)
        qtbot.waitUntil(lambda: window.action_stop.isEnabled(), timeout=5000)
        assert not window.action_regenerate.isEnabled()
        # the context meter moves while the reply streams
        qtbot.waitUntil(lambda: window.composer.context[0] and window.composer.context[0] > 20, timeout=10000)
    assert not window.action_stop.isEnabled() and window.action_regenerate.isEnabled()


def test_the_meter_shows_the_conversation_after_a_reload_and_warns_at_80_percent(qtbot, window: MainWindow) -> None:
    use_script(window, ["<|channel|>final<|message|>hello<|return|>"])
    send(qtbot, window, "hi")
    used = window.composer.context[0]
    assert used and used > 0
    info = window.controller.engine.model_info
    window._on_controller_model_loaded(info)  # noqa: SLF001 - as after a reload
    assert window.composer.context == (used, 8192)
    assert window.composer.context_label.text() != "0 / 8.2k tokens"
    window.composer.set_context(7000, 8192)
    assert window.composer.context_label.property("level") == "warn"
    assert "leave the model's view" in window.composer.context_label.toolTip()


def test_view_menu_follows_its_shortcuts(qtbot, ctx: AppContext) -> None:
    from ui.shell.app import build_window

    os.environ["HEARTH_NO_FIRST_RUN"] = "1"
    try:
        win = build_window(ctx)
    finally:
        del os.environ["HEARTH_NO_FIRST_RUN"]
    qtbot.addWidget(win)
    shortcuts = [a.shortcut().toString() for a in win.view_menu.actions()]
    assert shortcuts == ["Ctrl+1", "Ctrl+2", "Ctrl+3", "Ctrl+,"]
    titles = [b.text() for _, b, _ in win.sidebar.nav_buttons]
    assert titles == ["Models", "Hardware", "Settings"]
    win.close()


def test_sidebar_elides_highlights_clears_and_opens_on_right_click(qtbot, window: MainWindow) -> None:
    store = window.ctx.store
    long_title = "A very long conversation title about planning a trip around the whole of Portugal " * 2
    a = store.create(long_title)
    store.add_message(a.id, "user", "where do lighthouses stand")
    b = store.create("Short")
    store.add_message(b.id, "user", "nothing here")
    window.sidebar.refresh()
    lv = window.sidebar.list
    assert not lv.horizontalScrollBar().isVisible()
    assert lv.horizontalScrollBarPolicy() == Qt.ScrollBarPolicy.ScrollBarAlwaysOff
    # search: the match is highlighted, never shown as literal brackets
    window.sidebar.search.setText("lighthouses")
    qtbot.waitUntil(lambda: window.sidebar.model.rowCount() == 2, timeout=3000)
    text = window.sidebar.model.index(1).data()
    assert "lighthouses" in text and "[" not in text and "\x02" not in text
    # Esc clears the search box
    window.sidebar.search.setFocus()
    qtbot.keyClick(window.sidebar.search, Qt.Key.Key_Escape)
    assert window.sidebar.search.text() == ""
    qtbot.waitUntil(lambda: window.sidebar.model.rowCount() >= 3, timeout=3000)
    # right-click opens the chat under the pointer, then shows the menu
    row = window.sidebar.model.row_of(a.id)
    rect = lv.visualRect(window.sidebar.model.index(row))
    lv.customContextMenuRequested.emit(rect.center())
    assert window.conversation_id == a.id
    window.sidebar.context_menu.close()


def test_retry_after_the_engine_crashed_reloads_the_model_and_answers(qtbot, window: MainWindow,
                                                                      gemma_path: Path) -> None:
    window.ctx.settings.max_tokens = 3000
    window.ctx.settings.temperature = 0.9
    with qtbot.waitSignal(window.controller.model_loaded, timeout=60000):
        window.open_model(str(gemma_path))
    window.composer.set_text("Write a long essay")
    with qtbot.waitSignal(window.controller.reply_failed, timeout=60000):
        qtbot.keyClick(window.composer.edit, Qt.Key.Key_Return)
        qtbot.waitUntil(lambda: window.controller.generating, timeout=30000)
        qtbot.wait(800)
        os.kill(window.controller.engine.pid, signal.SIGKILL)
    qtbot.waitUntil(lambda: not window.controller.generating, timeout=5000)
    failed = window.ctx.store.messages(window.conversation_id)[-1]
    w = window.chat_view.message_widget(failed.id)
    assert w.error_row.isVisible()
    window.ctx.settings.max_tokens = 5
    with qtbot.waitSignal(window.controller.reply_finished, timeout=120000):
        qtbot.mouseClick(w.retry_button, Qt.MouseButton.LeftButton)
    last = window.ctx.store.messages(window.conversation_id)[-1]
    assert last.status == "complete" and last.role == "assistant"
    assert "No model is loaded" not in window.statusBar().currentMessage()


def test_the_last_model_loads_at_start_unless_the_setting_is_off(qtbot, ctx: AppContext, gemma_path: Path) -> None:
    ctx.settings.last_model = str(gemma_path)
    ctx.settings.load_last_model = False
    quiet = MainWindow(ctx)
    qtbot.addWidget(quiet)
    qtbot.wait(300)
    assert not quiet.controller.loaded and not quiet.load_progress.isVisible()
    quiet.close()
    ctx.settings.load_last_model = True
    win = MainWindow(ctx)
    qtbot.addWidget(win)
    with qtbot.waitSignal(win.controller.model_loaded, timeout=60000):
        pass
    assert win.model_picker.current_path == str(gemma_path)
    assert gemma_path.name in win.model_picker.currentText()
    assert "Loaded" in win.model_picker.currentText()  # a file with no fit estimate, known to run
    win.close()


def test_the_picker_marks_the_running_model_until_it_is_unloaded(qtbot, window: MainWindow) -> None:
    use_script(window, [])
    picker = window.model_picker
    i = picker.currentIndex()
    assert picker.itemText(i).endswith("Loaded")
    assert picker.itemData(i, Qt.ItemDataRole.AccessibleTextRole).endswith("Loaded")
    window._on_controller_model_unloaded("")  # noqa: SLF001 - as if Unload finished
    assert not any("Loaded" in picker.itemText(k) for k in range(picker.count()))


def test_choosing_a_model_in_the_picker_loads_it_and_remembers_it(qtbot, window: MainWindow, gemma_path: Path) -> None:
    from ui.chat.model_picker import PickerEntry

    window.set_model_entries([PickerEntry(str(gemma_path), "gemma 270M", "installed", "Fits", "#2f855a", "fits")])
    index = next(i for i in range(window.model_picker.count()) if "gemma 270M" in window.model_picker.itemText(i))
    with qtbot.waitSignal(window.controller.model_loaded, timeout=60000):
        window.model_picker.activated.emit(index)
        assert window.load_progress.isVisible() or window.controller.loaded
    assert window.ctx.settings.extra["recent_models"][0] == str(gemma_path)
    assert "Fits" in window.model_picker.currentText()


def test_the_rename_field_fits_a_long_title(qtbot, window: MainWindow) -> None:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QInputDialog, QLineEdit

    from ui.shell.main_window import ask_title

    seen: list[int] = []

    def check() -> None:
        dialog = next(w for w in QApplication.topLevelWidgets() if isinstance(w, QInputDialog) and w.isVisible())
        seen.append(dialog.findChild(QLineEdit).width())
        dialog.reject()

    QTimer.singleShot(200, check)
    title, ok = ask_title(window, "A rather long conversation title about a trip to Porto")
    assert not ok and seen and seen[0] >= 400


def test_the_loaded_model_stays_shown_when_the_installed_list_changes(qtbot, window: MainWindow) -> None:
    from ui.chat.model_picker import PickerEntry

    window.model_picker.set_current("/elsewhere/my-model.gguf")
    window.set_model_entries([PickerEntry("/models/other.gguf", "other", "installed", "Fits", "#2f855a")])
    assert window.model_picker.currentText().startswith("my-model.gguf")
    assert any("other" in window.model_picker.itemText(i) for i in range(window.model_picker.count()))


def test_a_damaged_search_index_is_offered_a_rebuild(qtbot, window: MainWindow, monkeypatch) -> None:
    from app.errors import SearchIndexDamaged

    rebuilt: list[bool] = []

    def broken_search(*_a, **_k):
        raise SearchIndexDamaged("The search index of your history is damaged; it can be rebuilt.")

    from app.storage import ConversationStore

    monkeypatch.setattr(ConversationStore, "search", broken_search)
    monkeypatch.setattr(ConversationStore, "rebuild_search_index", lambda _self: rebuilt.append(True))
    window.sidebar.search.setText("anything")
    qtbot.waitUntil(lambda: getattr(window, "_last_error_box", None) is not None
                    and window._last_error_box.isVisible(), timeout=3000)  # noqa: SLF001
    box = window._last_error_box  # noqa: SLF001
    assert "damaged" in box.text()
    rebuild = next(b for b in box.buttons() if b.text() == "Rebuild search index")
    qtbot.mouseClick(rebuild, Qt.MouseButton.LeftButton)
    assert rebuilt == [True] and "rebuilt" in window.statusBar().currentMessage()
