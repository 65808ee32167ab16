"""Settings › Local server: serve the loaded model to other programs (OpenAI-compatible API).

Off by default. Switched on, it serves the window's own engine on 127.0.0.1, so
requests and the window's chats queue on one model (the engine serialises them and
each keeps its own follow-up cache key). Starting and stopping run on the job
runner: the GUI thread never waits on the socket or on a request in flight.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QCheckBox, QGroupBox, QHBoxLayout, QLabel, QLineEdit, QPushButton, QSpinBox, QWidget,
)

from app.context import AppContext
from app.errors import HearthError
from ui.widgets.forms import add_form_row, aligned_form, form_label
from ui.widgets.jobs import JobRunner
from ui.widgets.labels import hint_label

log = logging.getLogger(__name__)


class CurrentEngine:
    """The window's engine as the server sees it: whatever local engine the controller holds now.

    A remote model chosen in the header is not served (it is another server's to
    serve): the API then answers 503, no model loaded.
    """

    def __init__(self, controller: Any) -> None:
        self.controller = controller

    @property
    def _engine(self) -> Any:
        return self.controller.engine

    @property
    def model_info(self) -> dict[str, Any] | None:
        eng = self._engine
        return None if getattr(eng, "is_remote", False) else eng.model_info

    def generate(self, req: dict[str, Any], segments: list[Any]) -> Iterator[Any]:
        return self._engine.generate(req, segments)

    def cancel(self) -> None:
        self._engine.cancel()


class LocalServerPanel(QGroupBox):
    """The Local server section: switch, port, key, URL and a live request count."""

    def __init__(self, ctx: AppContext, controller: Any, parent: QWidget | None = None) -> None:
        super().__init__("Local server", parent)
        self.ctx = ctx
        self.controller = controller
        self.server: Any = None  # app.server.local.LocalServer while serving
        self.jobs = JobRunner(self, name="local-server")
        self.setAccessibleName("Local server")
        form = aligned_form(self)
        s = ctx.settings
        self.enabled = QCheckBox("Serve the loaded model to other programs (OpenAI-compatible API)")
        self.enabled.setAccessibleName("Local server on or off")
        self.enabled.setChecked(False)  # follows the setting only once start_if_enabled runs
        form.addRow(form_label(), self.enabled)
        form.addRow(form_label(), hint_label("Only programs on this computer can connect (127.0.0.1). "
                               "Requests are not saved to your chats unless you tick the box below."))
        self.port = QSpinBox()
        self.port.setRange(1, 65535)
        self.port.setValue(s.server_port or 8642)
        self.port.setAccessibleName("Local server port")
        inner = self.port.findChild(QLineEdit)  # what screen readers land on inside the spin box
        if inner is not None:
            inner.setAccessibleName("Local server port")
        add_form_row(form, "Port", self.port)
        self.key = QLineEdit(s.server_api_key or "")
        self.key.setPlaceholderText("none (any program on this computer may connect)")
        self.key.setAccessibleName("Local server API key")
        self.new_key = QPushButton("New key")
        self.new_key.setAccessibleName("Make a new API key")
        row = QWidget()
        h = QHBoxLayout(row)
        h.setContentsMargins(0, 0, 0, 0)
        h.addWidget(self.key, 1)
        h.addWidget(self.new_key)
        add_form_row(form, "API key", row)
        self.save_history = QCheckBox("Save requests to the chat history")
        self.save_history.setAccessibleName("Save API requests to the chat history")
        self.save_history.setChecked(s.server_save_requests_to_history)
        form.addRow(form_label(), self.save_history)
        self.url = QLabel("off")
        self.url.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.url.setAccessibleName("Local server address")
        add_form_row(form, "Address", self.url)
        self.count = QLabel("0 requests")
        self.count.setAccessibleName("Requests served")
        add_form_row(form, "Requests", self.count)
        self.status = hint_label("")
        self.status.setVisible(False)
        form.addRow(form_label(), self.status)
        self._timer = QTimer(self)
        self._timer.setInterval(1000)
        self._timer.timeout.connect(self._refresh_count)
        self.enabled.toggled.connect(self._on_enabled_toggled)
        self.new_key.clicked.connect(self._on_new_key_clicked)

    # ---- on and off ------------------------------------------------------------

    def start_if_enabled(self) -> None:
        if self.ctx.settings.server_enabled:
            self.enabled.setChecked(True)

    def _save(self) -> None:
        s = self.ctx.settings
        s.server_enabled = self.enabled.isChecked()
        s.server_port = self.port.value()
        s.server_api_key = self.key.text().strip() or None
        s.server_save_requests_to_history = self.save_history.isChecked()
        try:
            self.ctx.save_settings()
        except HearthError as exc:
            self._say(str(exc))

    def _say(self, text: str) -> None:
        self.status.setText(text)
        self.status.setVisible(bool(text))

    def _on_new_key_clicked(self) -> None:
        self.key.setText("hearth-" + secrets.token_urlsafe(24))

    def _on_enabled_toggled(self, on: bool) -> None:
        self._save()
        for w in (self.port, self.key, self.new_key, self.save_history):
            w.setEnabled(not on)  # applied on the next start
        if on:
            self._start()
        else:
            self._stop()

    def _start(self) -> None:
        if self.server is not None:
            return
        ctx = self.ctx
        port = ctx.settings.server_port
        self.url.setText("starting…")
        self._say("")

        def start(_cancel: Any) -> Any:
            # The server's stack (Starlette, uvicorn) is imported only when it is switched on:
            # a window that serves nothing does not pay for it at start-up.
            from app.documents.embedder import Embedder, find_embedding_model
            from app.server.app import APIService
            from app.server.cli import history_saver, options_from
            from app.server.local import LocalServer

            options = options_from(ctx, api_key=ctx.settings.server_api_key, cors=[])
            saver = history_saver(ctx) if ctx.settings.server_save_requests_to_history else None

            emb = find_embedding_model(ctx.settings, ctx.models_dir)
            service = APIService(CurrentEngine(self.controller), options,
                                 embedder=Embedder(emb) if emb is not None else None, save_exchange=saver)
            server = LocalServer(service, "127.0.0.1", port)
            try:
                server.start()
            except HearthError:
                service.close()
                if service.embedder is not None:
                    service.embedder.close()
                raise
            return server

        self.jobs.call("start local server", start, self._on_started)

    def _on_started(self, server: Any, exc: BaseException | None) -> None:
        if exc is not None or server is None:
            self.url.setText("off")
            self._say(f"The local server could not start: {exc}")
            self.enabled.blockSignals(True)
            self.enabled.setChecked(False)
            self.enabled.blockSignals(False)
            for w in (self.port, self.key, self.new_key, self.save_history):
                w.setEnabled(True)
            return
        if not self.enabled.isChecked():  # switched off while it was starting
            self.server = server
            self._stop()
            return
        self.server = server
        self.url.setText(server.url + "/v1")
        self._refresh_count()
        self._timer.start()

    def _stop(self) -> None:
        server, self.server = self.server, None
        self._timer.stop()
        self.url.setText("off")
        if server is None:
            return

        def stop(_cancel: Any) -> None:
            _stop_server(server)

        self.jobs.call("stop local server", stop, lambda _r, exc: exc and self._say(f"Stopping failed: {exc}"))

    def _refresh_count(self) -> None:
        if self.server is None:
            return
        n = self.server.service.requests_total
        busy = self.server.service.runner.pending
        self.count.setText(f"{n:,} request{'s' if n != 1 else ''}" + (f" · {busy} in progress" if busy else ""))

    def shutdown(self) -> None:
        """The window is closing: stop serving before the engine goes."""
        self._timer.stop()
        server, self.server = self.server, None
        if server is not None:
            _stop_server(server)
        self.jobs.shutdown()


def _stop_server(server: Any) -> None:
    embedder = server.service.embedder
    server.stop()
    if embedder is not None:
        embedder.close()
