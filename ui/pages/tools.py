"""Settings › Tools: the MCP servers (switch, add, remove, import an mcpServers JSON) and their tools.

Connecting happens on the MCP loop thread; this page only posts requests and redraws
when the manager says a server changed (its listener is re-emitted as a queued signal).
"""

from __future__ import annotations

import logging

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.errors import McpError
from app.tools.mcp import McpManager, ServerStatus
from ui.widgets.labels import hint_label

log = logging.getLogger(__name__)

STATE_TEXT = {"ready": "connected", "starting": "starting…", "failed": "failed", "offline": "not started (offline)",
              "disabled": "off", "stopped": "not started"}


class ServerRow(QFrame):
    """One server: switch, state, command or URL, its tools, Remove."""

    def __init__(self, status: ServerStatus, target: str, enabled: bool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("mcpServerRow")
        self.name = status.name
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 4, 0, 4)
        top = QHBoxLayout()
        self.switch = QCheckBox(status.name)
        self.switch.setChecked(enabled)
        self.switch.setAccessibleName(f"Use the MCP server {status.name}")
        top.addWidget(self.switch)
        self.state = QLabel(STATE_TEXT.get(status.state, status.state))
        self.state.setObjectName("hint")
        top.addWidget(self.state, 1)
        self.remove = QPushButton("Remove")
        self.remove.setAccessibleName(f"Remove the MCP server {status.name}")
        top.addWidget(self.remove)
        lay.addLayout(top)
        self.target = hint_label(target)
        lay.addWidget(self.target)
        self.message = QLabel(status.message)
        self.message.setWordWrap(True)
        self.message.setVisible(bool(status.message) and status.state in ("failed", "offline"))
        lay.addWidget(self.message)
        names = ", ".join(t.name for t in status.tools)
        self.tools = hint_label(f"Tools: {names}" if names else "")
        self.tools.setVisible(bool(names))
        lay.addWidget(self.tools)


class ToolsPanel(QWidget):
    """The Tools section of Settings."""

    server_changed = Signal(str)  # from the MCP loop thread: queued to the GUI thread

    def __init__(self, manager: McpManager, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.manager = manager
        self.rows: dict[str, ServerRow] = {}
        col = QVBoxLayout(self)
        col.setContentsMargins(0, 0, 0, 0)
        header = QLabel("Tools")
        header.setObjectName("sectionHeader")
        col.addWidget(header)
        col.addWidget(hint_label("MCP servers give the model more tools. Hearth asks before every call "
                                 "(Allow once / Always allow this tool / Deny). Local (command) servers also run "
                                 "offline; network (URL) servers do not."))
        self._list = QVBoxLayout()
        col.addLayout(self._list)
        self.empty = hint_label("No MCP servers yet.")
        col.addWidget(self.empty)

        add = QHBoxLayout()
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("name")
        self.name_edit.setAccessibleName("New MCP server name")
        self.kind = QComboBox()
        self.kind.addItems(["Command", "URL"])
        self.kind.setAccessibleName("How to reach the new MCP server")
        self.target_edit = QLineEdit()
        self.target_edit.setPlaceholderText("uvx mcp-server-time --local-timezone UTC")
        self.target_edit.setAccessibleName("Command or URL of the new MCP server")
        self.add_button = QPushButton("Add server")
        add.addWidget(self.name_edit, 1)
        add.addWidget(self.kind)
        add.addWidget(self.target_edit, 3)
        add.addWidget(self.add_button)
        col.addLayout(add)

        self.import_edit = QPlainTextEdit()
        self.import_edit.setPlaceholderText('Paste an mcpServers JSON (Claude Desktop, LM Studio, Jan): '
                                            '{"mcpServers": {"time": {"command": "uvx", "args": ["mcp-server-time"]}}}')
        self.import_edit.setMaximumHeight(90)
        self.import_edit.setAccessibleName("mcpServers JSON to import")
        self.import_button = QPushButton("Import")
        imp = QHBoxLayout()
        imp.addWidget(self.import_edit, 1)
        imp.addWidget(self.import_button, 0, Qt.AlignmentFlag.AlignTop)
        col.addLayout(imp)
        self.feedback = QLabel("")
        self.feedback.setWordWrap(True)
        self.feedback.setAccessibleName("Tools feedback")
        col.addWidget(self.feedback)

        self.add_button.clicked.connect(self._on_add_button_clicked)
        self.import_button.clicked.connect(self._on_import_button_clicked)
        self.kind.currentIndexChanged.connect(self._on_kind_changed)
        self.server_changed.connect(self._on_server_changed, Qt.ConnectionType.QueuedConnection)
        manager.add_listener(self.server_changed.emit)
        self.refresh()

    # ---- drawing ----------------------------------------------------------------

    def refresh(self) -> None:
        for row in self.rows.values():
            self._list.removeWidget(row)
            row.deleteLater()
        self.rows = {}
        for cfg in self.manager.config.servers():
            status = self.manager.status(cfg.name)
            row = ServerRow(status, f"{'URL' if cfg.url else 'Command'}: {cfg.describe()}", cfg.enabled)
            row.switch.toggled.connect(lambda on, n=cfg.name: self._on_switch_toggled(n, on))
            row.remove.clicked.connect(lambda _=False, n=cfg.name: self._on_remove_clicked(n))
            self._list.addWidget(row)
            self.rows[cfg.name] = row
        self.empty.setVisible(not self.rows)

    def _say(self, text: str, error: bool = False) -> None:
        self.feedback.setText(text)
        self.feedback.setObjectName("error" if error else "hint")
        self.feedback.style().unpolish(self.feedback)
        self.feedback.style().polish(self.feedback)

    # ---- actions ----------------------------------------------------------------

    def _on_kind_changed(self, index: int) -> None:
        self.target_edit.setPlaceholderText("http://127.0.0.1:8000/mcp" if index == 1
                                            else "uvx mcp-server-time --local-timezone UTC")

    def _on_add_button_clicked(self) -> None:
        name, target = self.name_edit.text().strip(), self.target_edit.text().strip()
        try:
            if not target:
                raise McpError("Give the server's command (or URL) to add it.")
            if self.kind.currentIndex() == 1:
                self.manager.config.add_url(name, target)
            else:
                self.manager.config.add_command(name, target)
        except McpError as exc:
            self._say(str(exc), error=True)
            return
        self.name_edit.clear()
        self.target_edit.clear()
        self._say(f"Added {name!r}; connecting…")
        self._start(name)
        self.refresh()

    def _on_import_button_clicked(self) -> None:
        try:
            names = self.manager.config.import_json(self.import_edit.toPlainText())
        except McpError as exc:
            self._say(str(exc), error=True)
            return
        self.import_edit.clear()
        self._say(f"Imported {len(names)} server(s): {', '.join(names)}.")
        for name in names:
            self._start(name)
        self.refresh()

    def _on_remove_clicked(self, name: str) -> None:
        self.manager.stop(name, wait=0)
        try:
            self.manager.config.remove(name)
        except McpError as exc:
            self._say(str(exc), error=True)
        self.refresh()

    def _on_switch_toggled(self, name: str, on: bool) -> None:
        try:
            self.manager.config.set_enabled(name, on)
        except McpError as exc:
            self._say(str(exc), error=True)
            return
        if on:
            self._start(name)
        else:
            self.manager.stop(name, wait=0)
        self.refresh()

    def _start(self, name: str) -> None:
        try:
            self.manager.start(name, wait=False)  # posts to the MCP loop; the row updates when it is ready
        except McpError as exc:
            self._say(str(exc), error=True)

    def _on_server_changed(self, _name: str) -> None:
        self.refresh()
