"""Settings › Servers: remote OpenAI-compatible servers (vLLM, llama-server, Ollama, LM Studio, another Hearth).

Add one (name, address, API key: the key goes to the OS keyring, never a file),
test the connection and see its models; those models then appear in the
header's model picker marked with the server's host. Network work runs on the
JobRunner, never on the GUI thread.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox, QGroupBox, QHBoxLayout, QLabel, QLineEdit, QListWidget, QListWidgetItem, QMessageBox, QPushButton,
    QVBoxLayout, QWidget,
)

from app.engine.remote import RemoteError, Timeouts, host_of
from app.errors import HearthError
from app.servers import KeyringUnavailable, ServerConfig, ServerStore, remote_model_ref
from ui.chat.model_picker import PickerEntry
from ui.widgets.forms import aligned_form, form_label
from ui.widgets.jobs import JobRunner
from ui.widgets.labels import hint_label

if TYPE_CHECKING:
    from ui.chat.controller import ChatController
    from ui.chat.model_picker import ModelPicker

log = logging.getLogger(__name__)

REMOTE_COLOUR = "#5b8def"
ROLE_NAME = Qt.ItemDataRole.UserRole + 1


def remote_picker_entries(store: ServerStore) -> list[PickerEntry]:
    """Each saved server's models (as last listed), for the header's picker, marked with the host."""
    entries = []
    for s in store.list():
        for model in s.models:
            entries.append(PickerEntry(
                remote_model_ref(s.url, model), model, f"on {s.name} · {s.url}", f"on {s.host}", REMOTE_COLOUR,
                f"Runs on {s.host}: what you send in a chat with this model goes to that server."))
    return entries


def install_remote_models(picker: "ModelPicker", controller: "ChatController") -> None:
    """Remote models in the picker, refreshed whenever the server list changes."""
    picker.extra_entries = lambda: remote_picker_entries(controller.servers)

    def refresh() -> None:
        picker.set_entries([e for e in picker.entries if not e.path.startswith("remote:")])

    controller.servers_changed.connect(refresh)
    refresh()


def ask_to_send(parent: QWidget | None, host: str) -> bool:
    """The once-per-server question before the first message leaves this computer."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Question)
    box.setWindowTitle("Send to another computer?")
    box.setText(f"This chat's model runs on {host}.")
    box.setInformativeText(f"Your messages, the passages retrieved from attached documents and tool results go to "
                           f"{host}. Hearth asks once per server.")
    send = box.addButton(f"Send to {host}", QMessageBox.ButtonRole.AcceptRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.exec()
    return box.clickedButton() is send


class ServersPanel(QGroupBox):
    """The Servers section of Settings."""

    tested = Signal(str, bool)  # server name, whether it answered (for tests and the status line)

    def __init__(self, controller: "ChatController", parent: QWidget | None = None) -> None:
        super().__init__("Servers", parent)
        self.setAccessibleName("Servers")
        self.controller = controller
        self.store: ServerStore = controller.servers
        self.jobs = JobRunner(self, tick_ms=50, name="servers")
        col = QVBoxLayout(self)
        col.addWidget(hint_label(
            "Chat with models served on other machines (vLLM, llama-server, Ollama, LM Studio, another Hearth). "
            "API keys are kept in the system keyring. Offline mode blocks every server that is not on this "
            "computer."))
        self.list = QListWidget()
        self.list.setAccessibleName("Servers")
        self.list.setMaximumHeight(110)
        self.list.currentItemChanged.connect(self._on_list_current_changed)
        col.addWidget(self.list)
        row = QHBoxLayout()
        self.test_button = QPushButton("Test connection")
        self.test_button.setAccessibleName("Test connection")
        self.test_button.clicked.connect(self.test_selected)
        self.remove_button = QPushButton("Remove")
        self.remove_button.setAccessibleName("Remove server")
        self.remove_button.clicked.connect(self.remove_selected)
        row.addWidget(self.test_button)
        row.addWidget(self.remove_button)
        row.addStretch(1)
        col.addLayout(row)
        self.models = QListWidget()
        self.models.setAccessibleName("The server's models")
        self.models.setMaximumHeight(110)
        col.addWidget(self.models)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setAccessibleName("Server status")
        col.addWidget(self.status)

        form_box = QWidget()
        form = aligned_form(form_box)
        form.setContentsMargins(0, 0, 0, 0)
        self.name = QLineEdit()
        self.name.setPlaceholderText("gpu-box")
        self.name.setAccessibleName("Server name")
        form.addRow(form_label("Name"), self.name)
        self.url = QLineEdit()
        self.url.setPlaceholderText("http://gpu-box.lan:8000/v1")
        self.url.setAccessibleName("Server address")
        form.addRow(form_label("Address"), self.url)
        self.key = QLineEdit()
        self.key.setEchoMode(QLineEdit.EchoMode.Password)
        self.key.setPlaceholderText("optional")
        self.key.setAccessibleName("API key")
        form.addRow(form_label("API key"), self.key)
        self.session_only = QCheckBox("Keep the key for this session only")
        self.session_only.setToolTip("Hearth forgets the key when it closes; it is never written to a file.")
        usable, _why = ServerStore.keyring_status()
        self.session_only.setVisible(not usable)
        form.addRow(form_label(), self.session_only)
        self.add_button = QPushButton("Add server")
        self.add_button.setAccessibleName("Add server")
        self.add_button.clicked.connect(self.add_server)
        form.addRow(form_label(), self.add_button)
        col.addWidget(form_box)
        self.reload()

    # ---- list ----------------------------------------------------------------

    def reload(self, select: str | None = None) -> None:
        current = select or self.selected_name()
        self.list.clear()
        for s in self.store.list():
            key = "key in keyring" if self.store.key_for(s.url) else "no key"
            item = QListWidgetItem(f"{s.name} — {s.url} ({key})")
            item.setData(ROLE_NAME, s.name)
            self.list.addItem(item)
            if s.name == current:
                self.list.setCurrentItem(item)
        if self.list.currentItem() is None and self.list.count():
            self.list.setCurrentRow(0)
        self._update_buttons()

    def selected_name(self) -> str | None:
        item = self.list.currentItem()
        return item.data(ROLE_NAME) if item is not None else None

    def _selected(self) -> ServerConfig | None:
        name = self.selected_name()
        return self.store.find(name) if name else None

    def _on_list_current_changed(self, *_args: Any) -> None:
        s = self._selected()
        self.models.clear()
        for m in s.models if s else []:
            self.models.addItem(m)
        self._update_buttons()

    def _update_buttons(self) -> None:
        has = self.selected_name() is not None
        busy = self.jobs.busy()
        self.test_button.setEnabled(has and not busy)
        self.remove_button.setEnabled(has and not busy)

    def _say(self, text: str, ok: bool = True) -> None:
        self.status.setText(text)
        self.status.setProperty("state", "" if ok else "error")

    # ---- actions -----------------------------------------------------------------

    def add_server(self) -> bool:
        name, url, key = self.name.text().strip(), self.url.text().strip(), self.key.text().strip()
        try:
            entry = self.store.add(name, url)
            if key:
                try:
                    self.store.save_key(entry.name, key, remember=not self.session_only.isChecked())
                except KeyringUnavailable as exc:
                    self.session_only.setVisible(True)
                    self.store.remove(entry.name)
                    self._say(f"{exc} Tick “Keep the key for this session only” to go on.", ok=False)
                    return False
        except HearthError as exc:
            self._say(str(exc), ok=False)
            return False
        self.name.clear()
        self.url.clear()
        self.key.clear()
        self._say(f"Added {entry.name} ({entry.host}). Testing the connection…")
        self.reload(select=entry.name)
        self.controller.servers_changed.emit()
        self.test_selected()
        return True

    def remove_selected(self) -> None:
        name = self.selected_name()
        if not name:
            return
        self.store.remove(name)
        self._say(f"Removed {name} and its key.")
        self.reload()
        self._on_list_current_changed()
        self.controller.servers_changed.emit()

    def test_selected(self) -> None:
        s = self._selected()
        if s is None or self.jobs.busy():
            return
        self._say(f"Connecting to {s.host}…")

        def run(_cancel: Any) -> list[str]:
            engine = self.store.engine(s.url, "", timeouts=Timeouts(connect=5.0, read=20.0))
            try:
                return [m.id for m in engine.list_models()]
            finally:
                engine.close()

        def done(models: list[str] | None, error: BaseException | None) -> None:
            self._update_buttons()
            if error is not None:
                msg = str(error) if isinstance(error, (RemoteError, HearthError)) else f"{s.host}: {error}"
                self._say(msg, ok=False)
                self.tested.emit(s.name, False)
                return
            models = models or []
            self.store.set_models(s.name, models)
            self._say(f"{host_of(s.url)} answers: {len(models)} model{'s' if len(models) != 1 else ''}. They are "
                      "in the model menu at the top of the chat.")
            self.reload(select=s.name)
            self._on_list_current_changed()
            self.controller.servers_changed.emit()
            self.tested.emit(s.name, True)

        self.jobs.call("test", run, done)
        self._update_buttons()

    def shutdown(self, timeout: float = 5.0) -> None:
        self.jobs.shutdown(timeout)
