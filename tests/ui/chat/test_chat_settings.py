"""Per-chat settings and presets in the window: the header's preset chip, the Chat settings dialog,
the default preset for new chats, and Settings › Presets (edit, reset, import/export JSON)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog

from app.context import AppContext
from app.models import TokenStore
from app.presets import BUILTIN_PRESETS, PresetStore, presets_path
from tests.ui.helpers import send, use_script
from ui.chat.chat_settings import ChatSettingsDialog
from ui.pages.presets import PresetDialog, PresetsPanel
from ui.shell.app import add_settings_page
from ui.shell.main_window import MainWindow

CAREFUL = next(p for p in BUILTIN_PRESETS if p.name == "Careful reasoner")
QUICK = next(p for p in BUILTIN_PRESETS if p.name == "Quick answers")
OK = "<|channel|>final<|message|>Fine.<|return|>"


@pytest.fixture
def window(qtbot, ctx: AppContext):
    win = MainWindow(ctx)
    qtbot.addWidget(win)
    win.show()
    yield win
    win.close()


def open_dialog(qtbot, win: MainWindow) -> ChatSettingsDialog:
    qtbot.mouseClick(win.header.preset_chip, Qt.MouseButton.LeftButton)
    dialog = win.long_chats.dialog
    assert dialog is not None
    qtbot.waitExposed(dialog)
    return dialog


def save(qtbot, dialog: ChatSettingsDialog) -> None:
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)


def test_a_preset_chosen_in_chat_settings_changes_the_chat_and_the_header(qtbot, window: MainWindow) -> None:
    eng = use_script(window, [OK, OK, OK])
    send(qtbot, window, "Hello")
    cid = window.conversation_id
    assert window.header.preset_chip.toolButtonStyle() == Qt.ToolButtonStyle.ToolButtonIconOnly  # no preset yet

    dialog = open_dialog(qtbot, window)
    dialog.choose_preset("Careful reasoner")
    assert dialog.form.effort.currentData() == "high" and dialog.form.max_tokens.text() == "8192"
    assert dialog.form.instructions.toPlainText() == CAREFUL.instructions
    save(qtbot, dialog)
    store = window.ctx.store
    qtbot.waitUntil(lambda: store.get(cid).options.get("preset") == "Careful reasoner", timeout=5000)
    conv = store.get(cid)
    assert conv.reasoning_effort == "high" and conv.system_prompt == CAREFUL.instructions
    assert conv.options["max_tokens"] == 8192 and conv.options["overflow"] == "drop"
    qtbot.waitUntil(lambda: window.header.preset_chip.text() == "Careful reasoner", timeout=5000)
    assert window.composer.effort == "high"
    # It takes effect with the next message.
    send(qtbot, window, "Next")
    assert "Reasoning: high" in eng.prompts[-1] and "Check your reasoning" in eng.prompts[-1]

    # A value changed afterwards: the chip says Custom, the chat keeps where it started from.
    dialog = open_dialog(qtbot, window)
    assert dialog.preset_combo.currentText() == "Careful reasoner"
    dialog.form.temperature.setText("hot")
    save(qtbot, dialog)
    assert dialog.isVisible() and "Temperature must be a number" in dialog.error.text()
    assert "temperature" not in store.get(cid).options  # nothing was saved
    dialog.form.temperature.setText("0.3")
    dialog.form.overflow.setCurrentIndex(dialog.form.overflow.findData("summarize"))
    save(qtbot, dialog)
    qtbot.waitUntil(lambda: store.get(cid).options.get("temperature") == 0.3, timeout=5000)
    assert store.get(cid).options["overflow"] == "summarize"
    qtbot.waitUntil(lambda: window.header.preset_chip.text() == "Custom", timeout=5000)
    assert "Careful reasoner" in window.header.preset_chip.toolTip()
    assert "summarises the oldest turns" in window.composer.context_label.toolTip()

    # Choosing the preset again brings its values back, and its name.
    dialog = open_dialog(qtbot, window)
    dialog.choose_preset("Careful reasoner")
    save(qtbot, dialog)
    qtbot.waitUntil(lambda: window.header.preset_chip.text() == "Careful reasoner", timeout=5000)
    assert "temperature" not in store.get(cid).options
    # The composer's reasoning switch is a change too.
    window.composer.reasoning.setCurrentIndex(0)
    assert window.header.preset_chip.text() == "Custom"


def test_settings_chosen_for_a_new_chat_are_written_with_its_first_message(qtbot, window: MainWindow) -> None:
    eng = use_script(window, [OK])
    window.new_chat()
    dialog = open_dialog(qtbot, window)
    dialog.choose_preset("Code helper")
    dialog.form.instructions.setPlainText("Answer in Rust.")
    save(qtbot, dialog)
    assert window.conversation_id is None and window.ctx.store.list() == []  # no empty chat made
    assert window.header.preset_chip.text() == "Custom"
    send(qtbot, window, "Sort a list")
    conv = window.ctx.store.get(window.conversation_id)
    assert conv.system_prompt == "Answer in Rust." and conv.options["preset"] == "Code helper"
    assert conv.options["temperature"] == 0.6
    assert "Answer in Rust." in eng.prompts[-1]


def test_the_default_preset_applies_to_new_chats(qtbot, ctx: AppContext) -> None:
    win = MainWindow(ctx)
    qtbot.addWidget(win)
    page = add_settings_page(win, TokenStore())
    win.show()
    try:
        panel = page.presets_panel
        panel.default_preset.setCurrentIndex(panel.default_preset.findData("Quick answers"))
        assert ctx.settings.default_preset == "Quick answers"
        assert json.loads(ctx.paths.settings_path.read_text())["default_preset"] == "Quick answers"  # saved at once
        panel.overflow.setCurrentIndex(panel.overflow.findData("summarize"))
        assert ctx.settings.overflow == "summarize"
        win.show_page(win.chat_page)
        win.new_chat()
        assert win.header.preset_chip.text() == "Quick answers" and win.composer.effort == "low"
        eng = use_script(win, [OK])
        send(qtbot, win, "Hi")
        conv = ctx.store.get(win.conversation_id)
        assert conv.options["preset"] == "Quick answers" and conv.reasoning_effort == "low"
        assert conv.options["max_tokens"] == 1024 and conv.system_prompt == QUICK.instructions
        assert conv.options["overflow"] == "drop"  # the preset brings its own choice
        assert "Reasoning: low" in eng.prompts[-1]
        assert win.header.preset_chip.text() == "Quick answers"

        # Without a default preset, new chats take Settings' overflow policy.
        panel.default_preset.setCurrentIndex(0)
        assert ctx.settings.default_preset == ""
        win.new_chat()
        assert win.header.preset_chip.toolButtonStyle() == Qt.ToolButtonStyle.ToolButtonIconOnly
        send(qtbot, win, "Again")
        assert ctx.store.get(win.conversation_id).options == {"overflow": "summarize"}
    finally:
        win.close()


@pytest.fixture
def panel(qtbot, ctx: AppContext) -> PresetsPanel:
    p = PresetsPanel(ctx)
    qtbot.addWidget(p)
    p.show()
    return p


def answer_with(fill):
    """A run_dialog stand-in: fill the dialog in as a user would, then press Save."""
    def run(dialog: QDialog) -> bool:
        fill(dialog)
        dialog.buttons.accepted.emit()
        return dialog.result() == QDialog.DialogCode.Accepted
    return run


def names(panel: PresetsPanel) -> list[str]:
    return [panel.list.item(i).text() for i in range(panel.list.count())]


def test_presets_edit_reset_and_round_trip_through_json(qtbot, panel: PresetsPanel, ctx: AppContext,
                                                        tmp_path: Path) -> None:
    assert names(panel)[:4] == ["Balanced — built-in", "Careful reasoner — built-in", "Quick answers — built-in",
                                "Code helper — built-in"]
    assert not panel.delete_button.isEnabled()  # a built-in one as shipped has nothing to reset

    def new_reviewer(d: PresetDialog) -> None:
        d.name.setText("Reviewer")
        d.form.instructions.setPlainText("Review the code.")
        d.form.effort.setCurrentIndex(d.form.effort.findData("high"))
        d.form.max_tokens.setText("2048")
        d.form.tools.setChecked(False)
        d.form.overflow.setCurrentIndex(d.form.overflow.findData("summarize"))

    panel.run_dialog = answer_with(new_reviewer)
    qtbot.mouseClick(panel.new_button, Qt.MouseButton.LeftButton)
    assert "Reviewer — yours" in names(panel) and panel.selected_name() == "Reviewer"
    store = PresetStore(presets_path(ctx.paths.settings_path))
    reviewer = store.get("Reviewer")
    assert (reviewer.reasoning_effort, reviewer.max_tokens, reviewer.tools, reviewer.overflow) == \
        ("high", 2048, False, "summarize")

    # A built-in preset changed, then reset.
    panel.select("Balanced")
    panel.run_dialog = answer_with(lambda d: d.form.temperature.setText("0.5"))
    qtbot.mouseClick(panel.edit_button, Qt.MouseButton.LeftButton)
    assert store.get("Balanced").temperature == 0.5 and "Balanced — built-in, changed" in names(panel)
    assert panel.delete_button.text() == "Reset" and panel.delete_button.isEnabled()
    qtbot.mouseClick(panel.delete_button, Qt.MouseButton.LeftButton)
    assert store.get("Balanced").temperature is None and "Balanced — built-in" in names(panel)

    # A name that is taken is refused in the dialog.
    panel.select("Reviewer")
    seen: list[str] = []

    def rename_to_taken(d: PresetDialog) -> None:
        d.name.setText("code helper")
        d.buttons.accepted.emit()
        seen.append(d.error.text())
        d.name.setText("Reviewer")

    panel.run_dialog = answer_with(rename_to_taken)
    qtbot.mouseClick(panel.edit_button, Qt.MouseButton.LeftButton)
    assert "There is a preset named “code helper” already" in seen[0]

    # Export, delete, import: the same preset comes back.
    out = tmp_path / "exported.json"
    panel.choose_export_path = lambda: str(out)
    qtbot.mouseClick(panel.export_button, Qt.MouseButton.LeftButton)
    exported = json.loads(out.read_text())
    assert exported["format"] == "hearth-presets" and "Reviewer" in [p["name"] for p in exported["presets"]]
    assert "Exported" in panel.status.text()
    panel.select("Reviewer")
    qtbot.mouseClick(panel.delete_button, Qt.MouseButton.LeftButton)
    assert "Reviewer — yours" not in names(panel)
    panel.choose_import_path = lambda: str(out)
    qtbot.mouseClick(panel.import_button, Qt.MouseButton.LeftButton)
    assert store.get("Reviewer") == reviewer and "Reviewer — yours" in names(panel)
    assert panel.status.text().startswith("Imported 5 presets") and panel.status.objectName() == "hint"


@pytest.mark.parametrize("content, why", [
    ("{ not json", "is not JSON"),
    ('{"presets": [{"name": "Hot", "temperature": 9}]}', "'temperature' must be between 0 and 5"),
    ('{"presets": [{"name": "Good"}, {"name": "Bad", "reasoning_effort": "extreme"}]}', "reasoning_effort"),
    ('{"presets": []}', "holds no presets"),
])
def test_a_broken_presets_file_changes_nothing_and_says_why(qtbot, panel: PresetsPanel, ctx: AppContext,
                                                            tmp_path: Path, content: str, why: str) -> None:
    before = names(panel)
    broken = tmp_path / "broken.json"
    broken.write_text(content)
    panel.choose_import_path = lambda: str(broken)
    qtbot.mouseClick(panel.import_button, Qt.MouseButton.LeftButton)
    assert panel.status.isVisible() and panel.status.objectName() == "errorLabel"
    assert panel.status.text().startswith("Nothing was imported from broken.json") and why in panel.status.text()
    assert names(panel) == before
    assert not presets_path(ctx.paths.settings_path).exists()  # not even half of a file was written
