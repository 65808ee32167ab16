"""Chat settings: one conversation's preset, instructions, reasoning effort, sampling, tools and
what happens when it outgrows the context.

The header's preset chip opens ``ChatSettingsDialog``; choosing a preset fills the
form with its values and Save copies them into the conversation (app.presets:
editing a preset later never changes a chat behind the user's back). The chip
names the preset while the chat still has its values, and says "Custom" once
something was changed. ``PresetForm`` is shared with Settings › Presets.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QDialog, QDialogButtonBox, QHBoxLayout, QLabel, QLineEdit, QPlainTextEdit, QVBoxLayout,
    QWidget,
)

from app.errors import SettingsError
from app.presets import EFFORTS, Preset, PresetStore, apply_preset, check_preset, presets_path
from app.storage.conversations import Conversation, ConversationStore
from ui.widgets import theme
from ui.widgets.forms import add_form_row, aligned_form
from ui.widgets.labels import hint_label

if TYPE_CHECKING:
    from app.context import AppContext

log = logging.getLogger(__name__)

EFFORT_CHOICES = (("Low", "low"), ("Medium", "medium"), ("High", "high"))
OVERFLOW_CHOICES = (("Drop the oldest turns", "drop"), ("Summarise the oldest turns", "summarize"))
NO_PRESET = "None"


# ---- what a chat's settings are ------------------------------------------------------


@dataclass(frozen=True)
class ChatChoice:
    """The dialog's result: what to write into the conversation."""

    preset: str | None  # the preset the values came from (None: none)
    values: Preset  # instructions, effort and options (its name is the preset's, or "chat")


def matches_preset(values: Preset, preset: Preset) -> bool:
    """Whether a chat's ``values`` are still every value ``preset`` sets (names aside)."""
    return replace(values, name=preset.name) == preset


def conversation_values(conv: Conversation) -> Preset:
    """A conversation's current choices in a preset's shape (the form, the comparison)."""
    o = conv.options
    return Preset(name=str(o.get("preset") or "chat"), instructions=conv.system_prompt,
                  reasoning_effort=conv.reasoning_effort if conv.reasoning_effort in EFFORTS else "medium",
                  temperature=o.get("temperature"), top_p=o.get("top_p"), max_tokens=o.get("max_tokens"),
                  tools=bool(o.get("tools", True)), overflow=str(o.get("overflow", "drop")))


def preset_label(name: str | None, values: Preset, presets: PresetStore) -> tuple[str, str]:
    """The header chip's text and tooltip: the preset while the chat has its values, else "Custom"."""
    if not name:
        return "", ""
    try:
        preset = presets.get(name)
    except KeyError:
        return "Custom", f"Started from the preset “{name}”, which no longer exists."
    if matches_preset(values, preset):
        return preset.name, f"Preset “{preset.name}”. Click to change this chat's settings."
    return "Custom", f"Started from the preset “{preset.name}”, then changed. Click to see this chat's settings."


def new_chat_values(settings: Any, presets: PresetStore, effort: str) -> tuple[str | None, Preset]:
    """What a new chat will start with: the default preset, or Settings' defaults."""
    if settings.default_preset:
        try:
            p = presets.get(settings.default_preset)
            return p.name, p
        except KeyError:
            pass
    return None, Preset("chat", instructions=settings.system_prompt, reasoning_effort=effort,
                        overflow=settings.overflow)


def save_chat_choice(store: ConversationStore, conversation_id: int, choice: ChatChoice) -> Conversation:
    """Write the dialog's choice into the conversation (on a worker thread) and return it as stored."""
    v = choice.values
    store.update(conversation_id, system_prompt=v.instructions, reasoning_effort=v.reasoning_effort)
    store.set_options(conversation_id, **dict(v.options(), preset=choice.preset))
    return store.get(conversation_id)


def apply_new_chat_defaults(ctx: AppContext, conversation_id: int) -> None:
    """A conversation the window just created: Settings' overflow policy, then the default preset
    (as ``hearth chat`` does)."""
    store, settings = ctx.store, ctx.settings
    store.set_options(conversation_id, overflow=settings.overflow)
    if settings.default_preset:
        try:
            preset = PresetStore(presets_path(ctx.paths.settings_path)).get(settings.default_preset)
        except KeyError:
            log.warning("the default preset %r is gone; the new chat uses the settings", settings.default_preset)
            return
        apply_preset(store, conversation_id, preset)


# ---- the form ------------------------------------------------------------------------


def _number(text: str, what: str, *, integer: bool = False) -> float | int | None:
    t = text.strip().replace(",", "." if not integer else "")
    if not t or t.lower() in ("auto", "default"):
        return None
    try:
        return int(t) if integer else float(t)
    except ValueError:
        kind = "a whole number such as 2048" if integer else "a number such as 0.7"
        raise SettingsError(f"{what} must be {kind}, or empty for the default (you typed “{text.strip()}”).") \
            from None


class PresetForm(QWidget):
    """Instructions, reasoning effort, temperature, top-p, max tokens, tools and the overflow policy."""

    def __init__(self, *, default_max_tokens: int = 4096, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        form = aligned_form(self)
        form.setContentsMargins(0, 0, 0, 0)
        self.instructions = QPlainTextEdit()
        self.instructions.setTabChangesFocus(True)
        self.instructions.setMinimumHeight(96)
        self.instructions.setPlaceholderText("What the model should know or do in this chat. Empty: the system "
                                             "prompt from Settings.")
        self.instructions.setAccessibleName("Instructions")
        self.instructions.setToolTip("gpt-oss reads these as the developer message, before the conversation.")
        add_form_row(form, "Instructions", self.instructions)
        self.effort = QComboBox()
        for text, value in EFFORT_CHOICES:
            self.effort.addItem(text, value)
        self.effort.setAccessibleName("Reasoning effort")
        add_form_row(form, "Reasoning effort", self.effort)
        self.temperature = QLineEdit()
        self.temperature.setPlaceholderText("Model default (1.0 for gpt-oss)")
        self.temperature.setAccessibleName("Temperature")
        add_form_row(form, "Temperature", self.temperature)
        self.top_p = QLineEdit()
        self.top_p.setPlaceholderText("Model default (1.0 for gpt-oss)")
        self.top_p.setAccessibleName("Top-p")
        add_form_row(form, "Top-p", self.top_p)
        self.max_tokens = QLineEdit()
        self.max_tokens.setPlaceholderText(f"Settings' default ({default_max_tokens:,})")
        self.max_tokens.setAccessibleName("Max tokens per reply")
        add_form_row(form, "Max tokens per reply", self.max_tokens)
        self.tools = QCheckBox("Offer tools (Python, document search, MCP servers)")
        self.tools.setAccessibleName("Offer tools")
        add_form_row(form, "", self.tools)
        self.overflow = QComboBox()
        for text, value in OVERFLOW_CHOICES:
            self.overflow.addItem(text, value)
        self.overflow.setAccessibleName("When the chat gets too long")
        self.overflow.setToolTip("When the next message would not fit in the model's context, Hearth drops the "
                                 "oldest whole turns, or has the model summarise them first. The transcript "
                                 "keeps them either way and marks where it happened.")
        add_form_row(form, "When the chat gets too long", self.overflow)

    def set_values(self, p: Preset) -> None:
        self.instructions.setPlainText(p.instructions)
        self.effort.setCurrentIndex(max(0, self.effort.findData(p.reasoning_effort)))
        self.temperature.setText("" if p.temperature is None else f"{p.temperature:g}")
        self.top_p.setText("" if p.top_p is None else f"{p.top_p:g}")
        self.max_tokens.setText("" if p.max_tokens is None else str(p.max_tokens))
        self.tools.setChecked(p.tools)
        self.overflow.setCurrentIndex(max(0, self.overflow.findData(p.overflow)))

    def values(self, name: str) -> Preset:
        """The form as a preset named ``name``; SettingsError says which field is wrong and why."""
        return check_preset({
            "name": name,
            "instructions": self.instructions.toPlainText(),
            "reasoning_effort": self.effort.currentData(),
            "temperature": _number(self.temperature.text(), "Temperature"),
            "top_p": _number(self.top_p.text(), "Top-p"),
            "max_tokens": _number(self.max_tokens.text(), "Max tokens", integer=True),
            "tools": self.tools.isChecked(),
            "overflow": self.overflow.currentData(),
        }, where=name)


def error_label() -> QLabel:
    lab = QLabel("")
    lab.setObjectName("errorLabel")
    lab.setWordWrap(True)
    lab.setVisible(False)
    return lab


# ---- the dialog ----------------------------------------------------------------------


class ChatSettingsDialog(QDialog):
    """This chat's settings. ``choice`` holds the result once accepted."""

    def __init__(self, parent: QWidget | None, presets: PresetStore, current: Preset, *, preset: str | None,
                 default_max_tokens: int = 4096, new_chat: bool = False) -> None:
        super().__init__(parent)
        self.setWindowTitle("Chat settings")
        self.setObjectName("chatSettingsDialog")
        self.presets = presets
        self.choice: ChatChoice | None = None
        lay = QVBoxLayout(self)
        lay.setSpacing(theme.SPACE_M)
        top = QHBoxLayout()
        lab = QLabel("Preset:")
        lab.setFixedWidth(theme.LABEL_WIDTH)
        top.addWidget(lab)
        self.preset_combo = QComboBox()
        self.preset_combo.setAccessibleName("Preset")
        self.preset_combo.addItem(NO_PRESET, "")
        for p in presets.all():
            self.preset_combo.addItem(p.name, p.name)
        lab.setBuddy(self.preset_combo)
        top.addWidget(self.preset_combo, 1)
        lay.addLayout(top)
        lay.addWidget(hint_label("Choosing a preset fills in its values below; you can change them for this "
                                 "chat. Presets are edited in Settings › Presets."))
        self.form = PresetForm(default_max_tokens=default_max_tokens)
        self.form.set_values(current)
        lay.addWidget(self.form)
        self.error = error_label()
        self.error.setAccessibleName("Chat settings error")
        lay.addWidget(self.error)
        lay.addWidget(hint_label("New chats get their settings when the first message is sent; changes take effect "
                                 "from the next message." if new_chat else
                                 "Changes take effect from the next message."))
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self._on_save)
        self.buttons.rejected.connect(self.reject)
        lay.addWidget(self.buttons)
        index = self.preset_combo.findData(preset or "", Qt.ItemDataRole.UserRole, Qt.MatchFlag.MatchFixedString)
        self.preset_combo.setCurrentIndex(max(0, index))
        # activated, not currentIndexChanged: choosing the chat's own preset again restores its values.
        self.preset_combo.activated.connect(self._on_preset_combo_activated)
        self.resize(max(560, self.sizeHint().width()), self.sizeHint().height())

    @property
    def save_button(self) -> Any:
        return self.buttons.button(QDialogButtonBox.StandardButton.Save)

    def choose_preset(self, name: str) -> None:
        """Pick a preset as the user would in the combo (its values fill the form)."""
        self.preset_combo.setCurrentIndex(max(0, self.preset_combo.findData(name)))
        self._on_preset_combo_activated(self.preset_combo.currentIndex())

    def _on_preset_combo_activated(self, _index: int) -> None:
        name = self.preset_combo.currentData()
        if name:
            try:
                self.form.set_values(self.presets.get(name))
            except KeyError as exc:
                self._show_error(str(exc))

    def _show_error(self, message: str) -> None:
        self.error.setText(message)
        self.error.setVisible(True)

    def _on_save(self) -> None:
        name = self.preset_combo.currentData() or None
        try:
            values = self.form.values(name or "chat")
        except SettingsError as exc:
            self._show_error(str(exc).removeprefix("preset 'chat': "))
            return
        self.choice = ChatChoice(name, values)
        self.accept()
