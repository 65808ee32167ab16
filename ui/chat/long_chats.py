"""Long chats and per-chat settings in the main window.

Wires the controller's context events to the transcript (a marker where earlier
messages left the model's view, "Summarising…" while the model writes a summary,
summary edits saved off the GUI thread), gives the composer back a message that
is too long on its own, keeps the context meter's documents share and "what
happens next" current, and runs the header's preset chip and Chat settings.
MainWindow makes one (``LongChats(win)``) as it starts.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject

from app.errors import HearthError
from app.presets import Preset, PresetStore, presets_path
from app.storage.conversations import Message
from ui.chat.chat_settings import (
    ChatChoice, ChatSettingsDialog, conversation_values, new_chat_values, preset_label, save_chat_choice,
)
from ui.chat.context_marker import ContextMarkerWidget, summarizing_text

if TYPE_CHECKING:
    from ui.shell.main_window import MainWindow

log = logging.getLogger(__name__)

STATUS_MS = 10000


class LongChats(QObject):
    """The window side of long chats, presets and per-chat instructions."""

    def __init__(self, win: MainWindow) -> None:
        super().__init__(win)
        self.win = win
        self.presets = PresetStore(presets_path(win.ctx.paths.settings_path))
        self.dialog: ChatSettingsDialog | None = None
        # Chat settings chosen for a new chat, written when its conversation is created (first message).
        self._pending: ChatChoice | None = None
        self._pending_used: tuple[int, ChatChoice] | None = None
        c = win.controller
        c.context_trimmed.connect(self._on_controller_context_trimmed)
        c.summarizing.connect(self._on_controller_summarizing)
        c.reply_started.connect(lambda _cid, _mid: win.chat_view.set_transient_status(""))
        c.busy_changed.connect(self._on_controller_busy_changed)
        c.reply_finished.connect(lambda _m, _s: self.refresh())
        c.message_refused.connect(self._on_controller_message_refused)
        c.model_loaded.connect(lambda _info: self.refresh())
        win.chat_view.summary_edited.connect(self.save_summary)
        win.header.chat_settings_requested.connect(self.open_chat_settings)
        win.conversation_changed.connect(self._on_window_conversation_changed)
        win.composer.reasoning_changed.connect(lambda _effort: self.refresh())
        win.pages.currentChanged.connect(lambda _i: self.refresh())  # presets may have changed in Settings
        self.refresh()

    # ---- header chip and meter ---------------------------------------------

    def _values(self) -> tuple[str | None, Preset, bool]:
        """The open chat's preset name and values (for a new chat: what it will start with)."""
        win = self.win
        if win.conversation_id is not None:
            try:
                conv = win.ctx.store.get(win.conversation_id)
            except (KeyError, HearthError):
                conv = None
            if conv is not None:
                return conv.options.get("preset"), conversation_values(conv), False
        if self._pending is not None:
            return self._pending.preset, self._pending.values, True
        name, values = new_chat_values(win.ctx.settings, self.presets, win.composer.effort)
        return name, values, True

    def refresh(self) -> None:
        """The chip and the meter's details for the open chat."""
        win = self.win
        name, values, new = self._values()
        text, tip = preset_label(name, values, self.presets)
        if new and text and self._pending is None:
            tip = f"New chats start with the preset “{text}” (Settings › Presets). Click to change this chat's."
        win.header.set_preset(text, tip)
        docs = win.controller.document_tokens.get(win.conversation_id, 0) if win.conversation_id is not None else 0
        win.composer.set_context_details(
            documents=docs, overflow=values.overflow,
            max_tokens=values.max_tokens if values.max_tokens is not None else win.ctx.settings.max_tokens)

    def _on_window_conversation_changed(self, conversation_id: int | None) -> None:
        win = self.win
        if conversation_id is None:
            # A new chat: the composer's reasoning effort is the one it will start with.
            self._pending = None
            _name, values, _new = self._values()
            win.composer.set_reasoning(values.reasoning_effort, win.composer.reasoning.isVisible())
        elif self._pending is not None:
            choice, self._pending = self._pending, None
            self._apply_pending(conversation_id, choice)
        self.refresh()

    def _apply_pending(self, conversation_id: int, choice: ChatChoice) -> None:
        """The new chat's conversation was just made (its first message is on the way): write the
        settings chosen for it now, before the turn reads them; the composer's effort wins."""
        store = self.win.ctx.store
        try:
            if store.message_count(conversation_id):
                return  # an existing chat was opened: the choice was for a new one
            effort = self.win.composer.effort
            values = replace(choice.values, reasoning_effort=effort)
            save_chat_choice(store, conversation_id, ChatChoice(choice.preset, values))
            self._pending_used = (conversation_id, choice)
        except HearthError as exc:
            self.win.show_error(f"This chat's settings were not saved: {exc}")

    # ---- transcript ------------------------------------------------------------

    def _show_new_messages(self, conversation_id: int) -> None:
        """Messages stored by the running turn that the transcript does not show yet, in order."""
        view = self.win.chat_view
        if conversation_id != self.win.conversation_id or view.conversation_id != conversation_id:
            return
        for m in self.win.ctx.store.messages(conversation_id, limit=3):
            if m.id not in view.widgets:
                view.add_message(m)
        view.refresh_versions()

    def _on_controller_context_trimmed(self, marker: Message) -> None:
        self.win.chat_view.set_transient_status("")
        self._show_new_messages(marker.conversation_id)
        if marker.conversation_id == self.win.conversation_id:
            self.win.chat_view.follow_reply()

    def _on_controller_summarizing(self, conversation_id: int, messages: int) -> None:
        if conversation_id != self.win.conversation_id:
            return
        self._show_new_messages(conversation_id)
        self.win.chat_view.set_transient_status(summarizing_text(messages))
        self.win.chat_view.follow_reply()

    def _on_controller_busy_changed(self, busy: bool) -> None:
        if not busy:
            self.win.chat_view.set_transient_status("")

    def save_summary(self, message_id: int, text: str) -> None:
        """Write an edited summary off the GUI thread; the model sees it from the next message."""
        ctx = self.win.ctx

        def run(_cancel: Any) -> Message:
            store = ctx.store
            store.update_message(message_id, content=text)
            return store.get_message(message_id)

        def done(message: Message | None, error: BaseException | None) -> None:
            w = self.win.chat_view.message_widget(message_id)
            marker = w if isinstance(w, ContextMarkerWidget) else None
            if error is not None or message is None:
                why = str(error) if isinstance(error, HearthError) else f"{error}"
                if marker is not None:
                    marker.show_error(f"The summary was not saved ({why}). Try Save again.")
                else:
                    self.win.show_error(f"The summary was not saved ({why}).")
                return
            if marker is not None:
                marker.set_message(message)
            self.win.statusBar().showMessage("Summary saved: the model sees it from the next message.", STATUS_MS)

        self.win.controller.jobs.call("summary", run, done)

    # ---- a message too long on its own ---------------------------------------------

    def _on_controller_message_refused(self, conversation_id: int, text: str, _error: str) -> None:
        """Nothing was sent or saved: the text goes back into the composer (the window shows why)."""
        win = self.win
        if win.conversation_id == conversation_id:
            try:
                win.ctx.store.get(conversation_id)
            except KeyError:
                # It was made for this message and removed again, empty: back to a new chat,
                # with the settings chosen for it still waiting.
                effort = win.composer.effort
                used, self._pending_used = self._pending_used, None
                win.new_chat()
                win.composer.set_reasoning(effort, win.composer.reasoning.isVisible())
                if used is not None and used[0] == conversation_id:
                    self._pending = used[1]
                win.sidebar.refresh()
                self.refresh()
        if not win.composer.text().strip():
            win.composer.set_text(text)
        win.composer.focus()

    # ---- chat settings -----------------------------------------------------------

    def open_chat_settings(self) -> None:
        win = self.win
        name, values, new = self._values()
        if self.dialog is not None:
            self.dialog.close()
        dialog = ChatSettingsDialog(win, self.presets, values, preset=name,
                                    default_max_tokens=win.ctx.settings.max_tokens, new_chat=new)
        dialog.accepted.connect(lambda: self._on_dialog_accepted(dialog))
        self.dialog = dialog
        dialog.open()

    def _on_dialog_accepted(self, dialog: ChatSettingsDialog) -> None:
        choice = dialog.choice
        if choice is None:
            return
        self.save_chat_settings(choice)

    def save_chat_settings(self, choice: ChatChoice) -> None:
        """Give the open chat ``choice``: at once in the header and composer, written off the GUI thread."""
        win = self.win
        visible = win.composer.reasoning.isVisible()
        win.composer.set_reasoning(choice.values.reasoning_effort, visible)
        cid = win.conversation_id
        if cid is None:
            self._pending = choice  # written when the chat's first message creates it
            self.refresh()
            return
        ctx = win.ctx

        def done(_conv: Any, error: BaseException | None) -> None:
            if error is not None:
                why = str(error) if isinstance(error, HearthError) else f"{error}"
                win.show_error(f"This chat's settings were not saved ({why}).")
            else:
                win.statusBar().showMessage("Chat settings saved: they apply from the next message.", STATUS_MS)
            self.refresh()

        win.controller.jobs.call("chat-settings", lambda _cancel: save_chat_choice(ctx.store, cid, choice), done)
