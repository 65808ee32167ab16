"""Settings › Presets: the named bundles of a chat's instructions, reasoning and sampling.

List, edit, add and delete presets (a built-in one can be changed; Reset brings
it back as shipped), choose the preset and the long-chat policy new chats start
with, and import or export presets as JSON. The defaults save at once, like the
theme; presets live in presets.json beside settings.json (app.presets).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox, QDialog, QDialogButtonBox, QFileDialog, QGroupBox, QHBoxLayout, QLabel, QLineEdit, QListWidget,
    QListWidgetItem, QPushButton, QVBoxLayout, QWidget,
)

from app.errors import HearthError, SettingsError
from app.presets import BUILTIN_PRESETS, Preset, PresetStore, presets_path
from ui.chat.chat_settings import OVERFLOW_CHOICES, PresetForm, error_label
from ui.widgets import theme
from ui.widgets.forms import add_form_row, aligned_form
from ui.widgets.labels import hint_label

if TYPE_CHECKING:
    from app.context import AppContext

log = logging.getLogger(__name__)

ROLE_NAME = Qt.ItemDataRole.UserRole + 1
MAX_IMPORT_BYTES = 1 << 20  # a presets file is a few kilobytes
_BUILTIN = {p.name.casefold(): p for p in BUILTIN_PRESETS}


class PresetDialog(QDialog):
    """Edit one preset (or write a new one): its name and values."""

    def __init__(self, parent: QWidget | None, store: PresetStore, preset: Preset | None, *,
                 default_max_tokens: int = 4096) -> None:
        super().__init__(parent)
        self.store = store
        self.original = preset
        self.result_preset: Preset | None = None
        self.setWindowTitle(f"Edit preset “{preset.name}”" if preset else "New preset")
        lay = QVBoxLayout(self)
        lay.setSpacing(theme.SPACE_M)
        top = aligned_form()
        self.name = QLineEdit(preset.name if preset else "")
        self.name.setPlaceholderText("Careful reviewer")
        self.name.setMaxLength(80)
        self.name.setAccessibleName("Preset name")
        add_form_row(top, "Name", self.name)
        lay.addLayout(top)
        self.form = PresetForm(default_max_tokens=default_max_tokens)
        self.form.set_values(preset or Preset("new"))
        lay.addWidget(self.form)
        self.error = error_label()
        self.error.setAccessibleName("Preset error")
        lay.addWidget(self.error)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self._on_save)
        self.buttons.rejected.connect(self.reject)
        lay.addWidget(self.buttons)
        self.resize(max(560, self.sizeHint().width()), self.sizeHint().height())

    def _on_save(self) -> None:
        name = self.name.text().strip()
        if not name:
            self._fail("Give the preset a name.")
            return
        renamed = self.original is None or name.casefold() != self.original.name.casefold()
        if renamed and name.casefold() in (n.casefold() for n in self.store.names()):
            self._fail(f"There is a preset named “{name}” already. Choose another name, or edit that one.")
            return
        try:
            preset = self.form.values(name)
        except SettingsError as exc:
            self._fail(str(exc))
            return
        self.result_preset = preset
        self.accept()

    def _fail(self, message: str) -> None:
        self.error.setText(message)
        self.error.setVisible(True)


class PresetsPanel(QGroupBox):
    """The Presets section of Settings."""

    changed = Signal()  # presets or the defaults for new chats changed

    def __init__(self, ctx: AppContext, *, save_settings: Callable[[], None] | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__("Presets", parent)
        self.setAccessibleName("Presets")
        self.ctx = ctx
        self.store = PresetStore(presets_path(ctx.paths.settings_path))
        self._save_settings = save_settings or ctx.save_settings
        # Where Import… and Export… read and write (tests answer instead of the file dialogs).
        self.choose_import_path: Callable[[], str] = self._ask_import_path
        self.choose_export_path: Callable[[], str] = self._ask_export_path
        # open_dialog(dialog) -> accepted? (tests fill the dialog in and answer)
        self.run_dialog: Callable[[QDialog], bool] = lambda d: d.exec() == QDialog.DialogCode.Accepted
        self._loading = False
        col = QVBoxLayout(self)
        col.addWidget(hint_label(
            "A preset bundles a chat's instructions, reasoning effort, sampling, tools and what happens when the "
            "chat gets too long. Choose one per chat with the button at the right of the chat's header."))
        self.list = QListWidget()
        self.list.setAccessibleName("Presets")
        self.list.setMaximumHeight(150)
        self.list.currentItemChanged.connect(lambda *_: self._update_buttons())
        self.list.itemDoubleClicked.connect(lambda _item: self.edit_selected())
        col.addWidget(self.list)
        row = QHBoxLayout()
        self.new_button = self._button(row, "New…", "New preset", self.new_preset)
        self.edit_button = self._button(row, "Edit…", "Edit preset", self.edit_selected)
        self.delete_button = self._button(row, "Delete", "Delete preset", self.delete_selected)
        row.addStretch(1)
        self.import_button = self._button(row, "Import…", "Import presets from a JSON file", self.import_presets)
        self.export_button = self._button(row, "Export…", "Export presets to a JSON file", self.export_presets)
        col.addLayout(row)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setAccessibleName("Presets status")
        self.status.setVisible(False)
        col.addWidget(self.status)

        box = QWidget()
        form = aligned_form(box)
        form.setContentsMargins(0, 0, 0, 0)
        self.default_preset = QComboBox()
        self.default_preset.setAccessibleName("Preset for new chats")
        self.default_preset.currentIndexChanged.connect(self._on_default_preset_changed)
        add_form_row(form, "Preset for new chats", self.default_preset)
        self.overflow = QComboBox()
        for text, value in OVERFLOW_CHOICES:
            self.overflow.addItem(text, value)
        self.overflow.setAccessibleName("When a chat gets too long")
        self.overflow.setToolTip("For new chats; a preset for new chats brings its own choice. Each chat can "
                                 "change it in its Chat settings.")
        self.overflow.currentIndexChanged.connect(self._on_overflow_changed)
        add_form_row(form, "When a chat gets too long", self.overflow)
        col.addWidget(box)
        col.addWidget(hint_label("Both apply to new chats at once. Dropped or summarised turns stay in the "
                                 "transcript; a line marks where the model's view begins."))
        self.reload()

    def _button(self, row: QHBoxLayout, text: str, name: str, slot: Callable[[], object]) -> QPushButton:
        b = QPushButton(text)
        b.setAccessibleName(name)
        b.clicked.connect(slot)
        row.addWidget(b)
        return b

    # ---- list ------------------------------------------------------------

    def reload(self, select: str | None = None) -> None:
        current = select or self.selected_name()
        user = {p.name.casefold() for p in self.store.user_presets()}  # which ones the user changed
        self.list.clear()
        for p in self.store.all():
            key = p.name.casefold()
            kind = ("built-in, changed" if key in user else "built-in") if key in _BUILTIN else "yours"
            item = QListWidgetItem(f"{p.name} — {kind}")
            item.setData(ROLE_NAME, p.name)
            item.setToolTip(_describe(p))
            self.list.addItem(item)
            if current and p.name.casefold() == current.casefold():
                self.list.setCurrentItem(item)
        if self.list.currentItem() is None and self.list.count():
            self.list.setCurrentRow(0)
        s = self.ctx.settings
        self._loading = True
        try:
            self.default_preset.clear()
            self.default_preset.addItem("None (the model defaults above)", "")
            for name in self.store.names():
                self.default_preset.addItem(name, name)
            self.default_preset.setCurrentIndex(max(0, self.default_preset.findData(s.default_preset)))
            self.overflow.setCurrentIndex(max(0, self.overflow.findData(s.overflow)))
        finally:
            self._loading = False
        self._update_buttons()

    def selected_name(self) -> str | None:
        item = self.list.currentItem()
        return item.data(ROLE_NAME) if item is not None else None

    def select(self, name: str) -> None:
        for i in range(self.list.count()):
            if self.list.item(i).data(ROLE_NAME) == name:
                self.list.setCurrentRow(i)
                return

    def _is_user(self, name: str) -> bool:
        return any(p.name.casefold() == name.casefold() for p in self.store.user_presets())

    def _update_buttons(self) -> None:
        name = self.selected_name()
        self.edit_button.setEnabled(name is not None)
        builtin = name is not None and name.casefold() in _BUILTIN
        self.delete_button.setText("Reset" if builtin else "Delete")
        self.delete_button.setAccessibleName("Reset preset to as shipped" if builtin else "Delete preset")
        self.delete_button.setEnabled(name is not None and self._is_user(name))

    def _say(self, text: str, ok: bool = True) -> None:
        self.status.setText(text)
        self.status.setObjectName("hint" if ok else "errorLabel")
        theme.set_style_property(self.status, "ok", "1" if ok else "0")  # re-polish for the new name
        self.status.setVisible(bool(text))

    # ---- actions -----------------------------------------------------------

    def new_preset(self) -> None:
        self._edit(None)

    def edit_selected(self) -> None:
        name = self.selected_name()
        if name is not None:
            self._edit(self.store.get(name))

    def _edit(self, preset: Preset | None) -> None:
        dialog = PresetDialog(self, self.store, preset, default_max_tokens=self.ctx.settings.max_tokens)
        if not self.run_dialog(dialog) or dialog.result_preset is None:
            return
        new = dialog.result_preset
        try:
            self.store.save(new)
            if preset is not None and new.name.casefold() != preset.name.casefold() and self._is_user(preset.name):
                self.store.delete(preset.name)  # renamed (a built-in one stays as shipped)
                if self.ctx.settings.default_preset.casefold() == preset.name.casefold():
                    self._set_default(new.name)
        except (OSError, HearthError) as exc:
            self._say(f"The preset could not be saved: {exc}", ok=False)
            return
        self._say(f"Saved the preset “{new.name}”.")
        self.reload(select=new.name)
        self.changed.emit()

    def delete_selected(self) -> None:
        name = self.selected_name()
        if name is None or not self._is_user(name):
            return
        builtin = name.casefold() in _BUILTIN
        try:
            self.store.delete(name)
        except OSError as exc:
            self._say(f"The preset could not be {'reset' if builtin else 'deleted'}: {exc}", ok=False)
            return
        note = ""
        if not builtin and self.ctx.settings.default_preset.casefold() == name.casefold():
            self._set_default("")
            note = " New chats now start without a preset."
        self._say((f"“{name}” is back as shipped." if builtin else f"Deleted the preset “{name}”.") + note)
        self.reload(select=name if builtin else None)
        self.changed.emit()

    def import_presets(self) -> None:
        path = self.choose_import_path()
        if not path:
            return
        try:
            p = Path(path)
            if p.stat().st_size > MAX_IMPORT_BYTES:
                raise SettingsError(f"{p.name} is {p.stat().st_size:,} bytes: too large for a presets file.")
            imported = self.store.import_json(p.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            self._say(f"Nothing was imported: {Path(path).name} is not a text file.", ok=False)
            return
        except OSError as exc:
            self._say(f"Nothing was imported: {path} could not be read ({exc.strerror or exc}).", ok=False)
            return
        except SettingsError as exc:
            self._say(f"Nothing was imported from {Path(path).name}: {exc}", ok=False)
            return
        names = ", ".join(f"“{p.name}”" for p in imported)
        self._say(f"Imported {len(imported)} preset{'s' if len(imported) != 1 else ''}: {names}.")
        self.reload(select=imported[0].name)
        self.changed.emit()

    def export_presets(self) -> None:
        path = self.choose_export_path()
        if not path:
            return
        text = self.store.export_json()
        try:
            Path(path).write_text(text, encoding="utf-8")
        except OSError as exc:
            self._say(f"Could not write {path}: {exc.strerror or exc}", ok=False)
            return
        n = len(self.store.all())
        self._say(f"Exported {n} presets to {path}.")

    # ---- defaults for new chats ------------------------------------------------

    def _set_default(self, name: str) -> None:
        self.ctx.settings.default_preset = name
        try:
            self._save_settings()
        except HearthError as exc:
            self._say(str(exc), ok=False)

    def _on_default_preset_changed(self, _index: int) -> None:
        if self._loading:
            return
        name = self.default_preset.currentData() or ""
        self._set_default(name)
        self._say(f"New chats start with the preset “{name}”." if name else "New chats start without a preset.")
        self.changed.emit()

    def _on_overflow_changed(self, _index: int) -> None:
        if self._loading:
            return
        self.ctx.settings.overflow = self.overflow.currentData()
        try:
            self._save_settings()
        except HearthError as exc:
            self._say(str(exc), ok=False)
            return
        self._say("New chats " + ("summarise their oldest turns" if self.ctx.settings.overflow == "summarize"
                                  else "drop their oldest turns") + " when they get too long.")
        self.changed.emit()

    # ---- file dialogs ------------------------------------------------------------

    def _ask_import_path(self) -> str:
        path, _ = QFileDialog.getOpenFileName(self, "Import presets", str(Path.home()),
                                              "Presets (*.json);;All files (*)")
        return path

    def _ask_export_path(self) -> str:
        path, _ = QFileDialog.getSaveFileName(self, "Export presets", str(Path.home() / "hearth-presets.json"),
                                              "Presets (*.json)")
        return path


def _describe(p: Preset) -> str:
    parts = [f"Reasoning: {p.reasoning_effort}"]
    if p.temperature is not None:
        parts.append(f"temperature {p.temperature:g}")
    if p.max_tokens is not None:
        parts.append(f"max {p.max_tokens:,} tokens")
    parts.append("tools on" if p.tools else "tools off")
    parts.append("summarises long chats" if p.overflow == "summarize" else "drops the oldest turns of long chats")
    text = ", ".join(parts)
    return f"{text}\n\n{p.instructions}" if p.instructions else text
