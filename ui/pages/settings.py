"""The Settings page: General, Privacy, Network, Model defaults and Advanced, saved as one form.

Theme and Offline mode take effect (and are saved) the moment they change; the
rest is checked as a whole on Save, with each problem shown next to its field,
and nothing is written until every field is valid. The Hugging Face token goes
to the OS keyring through TokenStore, never into settings.json.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QApplication, QCheckBox, QComboBox, QFileDialog, QFormLayout, QGroupBox, QHBoxLayout, QLabel, QLineEdit,
    QPlainTextEdit, QPushButton, QVBoxLayout, QWidget,
)

from app.errors import HearthError, SettingsError
from app.models.errors import KeyringUnavailableError
from app.models.token import TokenStore
from app.settings import PROXY_SCHEMES, Settings
from ui.pages.presets import PresetsPanel
from ui.pages.servers import ServersPanel
from ui.widgets.forms import aligned_form, form_label
from ui.widgets.inputs import guard_wheel
from ui.widgets.labels import hint_label, page_title
from ui.widgets.theme import apply_theme
from ui.widgets.page_layout import scrolled_page

if TYPE_CHECKING:
    from app.context import AppContext
    from ui.chat.controller import ChatController

log = logging.getLogger(__name__)

MB = 1 << 20
PRIVACY_STATEMENT = ("Hearth never sends your conversations or documents anywhere. "
                     "With Offline mode on, it makes no network connection at all.")
OFFLINE_LABEL = "🛡 Offline"
THEMES = (("System", "system"), ("Light", "light"), ("Dark", "dark"))
EFFORTS = (("Low", "low"), ("Medium", "medium"), ("High", "high"))
KV_CACHES = (("Automatic", "auto"), ("Full precision (f16)", "f16"), ("8-bit (q8_0)", "q8_0"))
CONTEXT_CHOICES = ("Auto", "4096", "8192", "16384", "32768", "65536", "131072")
# Changing these only takes effect when the model is loaded again.
RELOAD_FIELDS: dict[str, str] = {
    "context_size": "context size",
    "threads": "threads",
    "gpu_layers_override": "GPU layers",
    "cpu_moe_override": "CPU expert layers",
    "kv_cache": "KV cache",
    "state_cache_bytes": "conversation-state cache size",
}
# The Settings fields this page edits through Save (theme and offline save at once).
FORM_FIELDS = (
    "models_dir", "hf_endpoint", "proxy", "context_size", "temperature", "top_p", "max_tokens", "threads",
    "system_prompt", "reasoning_effort", "gpu_layers_override", "cpu_moe_override", "state_cache_bytes",
    "save_states_on_exit", "saved_state_max_bytes", "kv_cache", "python_tool",
)


class _FieldError(ValueError):
    """A field's text cannot be read as a value; the message is shown next to the field."""


def _is_auto(text: str) -> bool:
    return text.strip().lower() in ("", "auto")


def _parse_int(text: str, what: str, *, auto: bool = False, all_word: int | None = None) -> int | None:
    t = text.strip().replace(",", "").replace("_", "")
    if auto and _is_auto(t):
        return None
    if all_word is not None and t.lower() == "all":
        return all_word
    try:
        return int(t)
    except ValueError:
        extra = " or Auto" if auto else ""
        extra += ", All" if all_word is not None else ""
        raise _FieldError(f"{what} must be a whole number{extra} (you typed “{text.strip()}”).") from None


def _parse_float(text: str, what: str) -> float | None:
    t = text.strip().replace(",", ".")
    if not t or t.lower() in ("auto", "default"):
        return None
    try:
        return float(t)
    except ValueError:
        raise _FieldError(f"{what} must be a number such as 0.7, or empty for the model's default "
                          f"(you typed “{text.strip()}”).") from None


def _check_url(text: str, what: str, schemes: tuple[str, ...]) -> str | None:
    t = text.strip()
    if not t:
        return None
    parts = urlsplit(t)
    try:
        port_ok = parts.port is None or 0 < parts.port < 65536
    except ValueError:
        port_ok = False
    if parts.scheme.lower() not in schemes or not parts.hostname or not port_ok:
        raise _FieldError(f"{what} must look like {schemes[0]}://host:port or {schemes[1]}://host "
                          f"(you typed “{t}”).")
    return t.rstrip("/")


class SettingsPage(QWidget):
    """Every user setting, in sections; Save checks and writes them."""

    saved = Signal(list)  # names of the Settings fields that changed

    def __init__(self, ctx: AppContext, controller: ChatController, tokens: TokenStore, *,
                 show_error: Callable[[str], None], reload_model: Callable[[], None],
                 tools_panel: QWidget | None = None, local_server_panel: QWidget | None = None) -> None:
        super().__init__()
        self.tools_panel = tools_panel  # Settings › Tools (ui/pages/tools.py), when the build has MCP
        self.local_server_panel = local_server_panel  # Settings › Local server (ui/pages/local_server.py)
        self.ctx = ctx
        self.controller = controller
        self.tokens = tokens
        self.show_error = show_error
        self.reload_model = reload_model
        self.setObjectName("settingsPage")
        self.errors: dict[str, QLabel] = {}
        self.fields: dict[str, QWidget] = {}
        self.open_folder: Callable[[Path], Any] = lambda p: QDesktopServices.openUrl(QUrl.fromLocalFile(str(p)))
        self._dirty = False
        self._loading = False
        self._keyring_usable: bool | None = None
        self._build()
        guard_wheel(self)  # the wheel scrolls the page, never a combo box it passes over
        self.load_from_settings()
        controller.model_loaded.connect(lambda _info: self.reload_banner.setVisible(False))
        QShortcut(QKeySequence.StandardKey.Save, self, self.save,
                  context=Qt.ShortcutContext.WidgetWithChildrenShortcut)

    # ---- layout ----------------------------------------------------------

    def _build(self) -> None:
        outer, scroll, col = scrolled_page(self)
        self._scroll = scroll
        col.addWidget(page_title("Settings"))

        # General
        form = self._section(col, "General")
        self.theme = QComboBox()
        for text, value in THEMES:
            self.theme.addItem(text, value)
        self._row(form, "theme", "Theme", self.theme, "Applies at once.")
        self.theme.currentIndexChanged.connect(self._on_theme_changed)
        self.data_dir = QLineEdit(str(self.ctx.paths.data_dir))
        self.data_dir.setReadOnly(True)
        self.data_dir.setAccessibleName("Data folder")
        self.open_data_button = QPushButton("Open")
        self.open_data_button.setAccessibleName("Open data folder")
        self.open_data_button.clicked.connect(lambda: self.open_folder(self.ctx.paths.data_dir))
        self._row(form, "data_dir", "Data folder", _hbox(self.data_dir, self.open_data_button),
                  "Conversations, settings and logs. Start Hearth with --data-dir to use another folder.")
        self.load_last_model = QCheckBox("Load the last used model when Hearth starts")
        self.load_last_model.setAccessibleName("Load the last used model when Hearth starts")
        self.load_last_model.toggled.connect(self._on_field_edited)
        self.fields["load_last_model"] = self.load_last_model
        self._row(form, "load_last_model", "", self.load_last_model)
        self.python_tool = QCheckBox("Python tool")
        self.python_tool.setAccessibleName("Python tool")
        self.python_tool.toggled.connect(self._on_field_edited)
        self.fields["python_tool"] = self.python_tool
        self._row(form, "python_tool", "", self.python_tool,
                  "gpt-oss may run Python in a sandbox: no network, one scratch folder per conversation.")
        self.models_dir = QLineEdit()
        self.models_dir.setPlaceholderText(str(self.ctx.paths.default_models_dir))
        self.models_dir.setAccessibleName("Models folder")
        self.models_dir.textChanged.connect(self._on_field_edited)
        self.choose_models_button = QPushButton("Choose…")
        self.choose_models_button.setAccessibleName("Choose models folder")
        self.choose_models_button.clicked.connect(self._choose_models_dir)
        self.fields["models_dir"] = self.models_dir
        self._row(form, "models_dir", "Models folder", _hbox(self.models_dir, self.choose_models_button))

        # Privacy
        form = self._section(col, "Privacy")
        self.offline = QCheckBox("Offline mode")
        self.offline.setAccessibleName("Offline mode")
        self.offline.toggled.connect(self._on_offline_toggled)
        self._row(form, "offline", "", self.offline, "Applies at once: no downloads, no model search.")
        statement = QLabel(PRIVACY_STATEMENT)
        statement.setWordWrap(True)
        statement.setAccessibleName("Privacy statement")
        form.addRow(form_label(), statement)

        # Network
        form = self._section(col, "Network")
        self.hf_endpoint = self._line("hf_endpoint", "Mirror endpoint", "https://huggingface.co")
        self._row(form, "hf_endpoint", "Mirror endpoint", self.hf_endpoint,
                  "A Hugging Face mirror; empty uses huggingface.co (or $HF_ENDPOINT).")
        self.proxy = self._line("proxy", "Proxy", " or ".join(f"{s}://host:port" for s in PROXY_SCHEMES[:2]))
        self._row(form, "proxy", "Proxy", self.proxy, proxy_help())
        self.token = QLineEdit()
        self.token.setEchoMode(QLineEdit.EchoMode.Password)
        self.token.setPlaceholderText("hf_…")
        self.token.setAccessibleName("Hugging Face token")
        self.token.textChanged.connect(self._on_field_edited)
        self.fields["token"] = self.token
        self.remove_token_button = QPushButton("Remove token")
        self.remove_token_button.setAccessibleName("Remove Hugging Face token")
        self.remove_token_button.clicked.connect(self.remove_token)
        self._row(form, "token", "Hugging Face token", _hbox(self.token, self.remove_token_button))
        self.token_status = QLabel("")
        self.token_status.setWordWrap(True)
        self.token_status.setAccessibleName("Token storage")
        form.addRow(form_label(), self.token_status)
        self.session_only = QCheckBox("Keep for this session only")
        self.session_only.setAccessibleName("Keep the token for this session only")
        self.session_only.setToolTip("Hearth forgets the token when it closes; it is never written to a file.")
        self.session_only.setVisible(False)
        form.addRow(form_label(), self.session_only)

        self.servers_panel = ServersPanel(self.controller)
        col.addWidget(self.servers_panel)
        if self.tools_panel is not None:
            col.addWidget(self.tools_panel)
        if self.local_server_panel is not None:
            col.addWidget(self.local_server_panel)

        # Model defaults
        form = self._section(col, "Model defaults")
        self.context_size = QComboBox()
        self.context_size.setEditable(True)
        self.context_size.addItems(CONTEXT_CHOICES)
        self.context_size.setAccessibleName("Context size")
        self.context_size.editTextChanged.connect(self._on_field_edited)
        self.fields["context_size"] = self.context_size
        self._row(form, "context_size", "Context size (tokens)", self.context_size,
                  "Auto lets Hearth choose the largest that fits this computer.")
        self.temperature = self._line("temperature", "Temperature", "Model default (1.0 for gpt-oss)")
        self._row(form, "temperature", "Temperature", self.temperature)
        self.top_p = self._line("top_p", "Top-p", "Model default (1.0 for gpt-oss)")
        self._row(form, "top_p", "Top-p", self.top_p)
        self.max_tokens = self._line("max_tokens", "Max tokens", "4096")
        self._row(form, "max_tokens", "Max tokens per reply", self.max_tokens)
        self.threads = self._line("threads", "Threads", "Auto")
        self._row(form, "threads", "Threads", self.threads, "Auto uses the physical cores.")
        self.system_prompt = QPlainTextEdit()
        self.system_prompt.setTabChangesFocus(True)  # Tab leaves the box, as in every other field
        self.system_prompt.setFixedHeight(90)
        self.system_prompt.setAccessibleName("System prompt")
        self.system_prompt.textChanged.connect(self._on_field_edited)
        self.fields["system_prompt"] = self.system_prompt
        self._row(form, "system_prompt", "System prompt", self.system_prompt)
        self.reasoning_effort = QComboBox()
        for text, value in EFFORTS:
            self.reasoning_effort.addItem(text, value)
        self.reasoning_effort.currentIndexChanged.connect(self._on_field_edited)
        self.fields["reasoning_effort"] = self.reasoning_effort
        self._row(form, "reasoning_effort", "Default reasoning effort", self.reasoning_effort)
        self.presets_panel = PresetsPanel(self.ctx)  # ui/pages/presets.py: presets and new chats' defaults
        col.addWidget(self.presets_panel)

        # Advanced
        form = self._section(col, "Advanced")
        self.gpu_layers_override = self._line("gpu_layers_override", "GPU layers", "Auto")
        self._row(form, "gpu_layers_override", "GPU layers", self.gpu_layers_override,
                  "Auto follows the plan on the Hardware page; All, or a number of layers (0 = CPU only).")
        self.cpu_moe_override = self._line("cpu_moe_override", "CPU expert layers", "Auto")
        self._row(form, "cpu_moe_override", "CPU expert layers", self.cpu_moe_override,
                  "Auto, or how many layers keep their experts in RAM instead of GPU memory.")
        self.kv_cache = QComboBox()
        for text, value in KV_CACHES:
            self.kv_cache.addItem(text, value)
        self.kv_cache.currentIndexChanged.connect(self._on_field_edited)
        self.fields["kv_cache"] = self.kv_cache
        self._row(form, "kv_cache", "KV cache", self.kv_cache,
                  "Automatic uses full precision and offers 8-bit on the Hardware page when it fits a much "
                  "longer context. 8-bit halves the cache's memory; attention over long chats is slightly "
                  "less precise.")
        self.state_cache_mb = self._line("state_cache_bytes", "Conversation-state cache size in MB", "1024")
        self._row(form, "state_cache_bytes", "Conversation-state cache (MB)", self.state_cache_mb,
                  "Memory for recent conversations' processed prompts; 0 turns the cache off.")
        self.save_states_on_exit = QCheckBox("Save conversation states when closing")
        self.save_states_on_exit.setAccessibleName("Save conversation states when closing")
        self.save_states_on_exit.toggled.connect(self._on_field_edited)
        self.fields["save_states_on_exit"] = self.save_states_on_exit
        self._row(form, "save_states_on_exit", "", self.save_states_on_exit,
                  "Reopened conversations then continue without reprocessing.")
        self.saved_state_mb = self._line("saved_state_max_bytes", "Maximum size per saved state in MB", "256")
        self._row(form, "saved_state_max_bytes", "Max size per saved state (MB)", self.saved_state_mb)
        col.addStretch(1)

        # Bottom bar: outside the scroll area so Save is always in view.
        self.reload_banner = QWidget()
        rb = QHBoxLayout(self.reload_banner)
        rb.setContentsMargins(24, 4, 24, 4)
        self.reload_label = QLabel("")
        self.reload_label.setWordWrap(True)
        self.reload_label.setAccessibleName("Reload needed")
        rb.addWidget(self.reload_label, 1)
        self.reload_button = QPushButton("Reload model")
        self.reload_button.setAccessibleName("Reload model now")
        self.reload_button.clicked.connect(self._on_reload_clicked)
        rb.addWidget(self.reload_button)
        self.reload_banner.setVisible(False)
        outer.addWidget(self.reload_banner)
        bar = QHBoxLayout()
        bar.setContentsMargins(24, 6, 24, 12)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setAccessibleName("Settings status")
        bar.addWidget(self.status, 1)
        self.revert_button = QPushButton("Revert")
        self.revert_button.setAccessibleName("Revert unsaved changes")
        self.revert_button.clicked.connect(self.revert)
        bar.addWidget(self.revert_button)
        self.save_button = QPushButton("Save")
        self.save_button.setAccessibleName("Save settings")
        self.save_button.setToolTip("Save (Ctrl+S)")
        self.save_button.setDefault(True)
        self.save_button.clicked.connect(self.save)
        bar.addWidget(self.save_button)
        outer.addLayout(bar)

    def _section(self, col: QVBoxLayout, title: str) -> QFormLayout:
        box = QGroupBox(title)
        box.setAccessibleName(title)
        col.addWidget(box)
        return aligned_form(box)

    def _line(self, key: str, name: str, placeholder: str) -> QLineEdit:
        e = QLineEdit()
        e.setPlaceholderText(placeholder)
        e.setAccessibleName(name)
        e.textChanged.connect(self._on_field_edited)
        self.fields[key] = e
        return e

    def _row(self, form: QFormLayout, key: str, label: str, widget: QWidget, help_text: str = "") -> None:
        """The field, then its help text and a hidden error label underneath."""
        box = QWidget()
        v = QVBoxLayout(box)
        v.setContentsMargins(0, 0, 0, 0)
        v.setSpacing(2)
        v.addWidget(widget)
        if help_text:
            h = hint_label(help_text)
            v.addWidget(h)
            if not widget.accessibleDescription():
                widget.setAccessibleDescription(help_text)
        err = QLabel("")
        err.setObjectName("errorLabel")
        err.setWordWrap(True)
        err.setVisible(False)
        err.setAccessibleName(f"{label or key} error")
        v.addWidget(err)
        self.errors[key] = err
        # Every label has the same width, so fields in all sections start at one x.
        form.addRow(form_label(label + ":" if label else "", widget if label else None), box)
        if not widget.accessibleName() and label:
            widget.setAccessibleName(label)

    # ---- loading ---------------------------------------------------------

    def load_from_settings(self) -> None:
        """Fill the form from ``ctx.settings`` (discarding anything unsaved)."""
        s = self.ctx.settings
        self._loading = True
        try:
            self.theme.setCurrentIndex(max(0, self.theme.findData(s.theme)))
            self.models_dir.setText(s.models_dir or "")
            self.offline.setChecked(s.offline)
            self.hf_endpoint.setText(s.hf_endpoint or "")
            self.proxy.setText(s.proxy or "")
            self.token.clear()
            self.context_size.setEditText("Auto" if s.context_size is None else str(s.context_size))
            self.temperature.setText("" if s.temperature is None else f"{s.temperature:g}")
            self.top_p.setText("" if s.top_p is None else f"{s.top_p:g}")
            self.max_tokens.setText(str(s.max_tokens))
            self.threads.setText("Auto" if s.threads is None else str(s.threads))
            self.system_prompt.setPlainText(s.system_prompt)
            self.reasoning_effort.setCurrentIndex(max(0, self.reasoning_effort.findData(s.reasoning_effort)))
            gl = s.gpu_layers_override
            self.gpu_layers_override.setText("Auto" if gl is None else ("All" if gl < 0 else str(gl)))
            self.cpu_moe_override.setText("Auto" if s.cpu_moe_override is None else str(s.cpu_moe_override))
            self.kv_cache.setCurrentIndex(max(0, self.kv_cache.findData(s.kv_cache)))
            self.state_cache_mb.setText(_mb_text(s.state_cache_bytes))
            self.save_states_on_exit.setChecked(s.save_states_on_exit)
            self.load_last_model.setChecked(s.load_last_model)
            self.python_tool.setChecked(s.python_tool)
            self.saved_state_mb.setText(_mb_text(s.saved_state_max_bytes))
        finally:
            self._loading = False
        self._dirty = False
        self._clear_errors()

    def showEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        # Settings may have changed elsewhere (reasoning effort, offline); never overwrite unsaved typing.
        if not self._dirty:
            self.load_from_settings()
        self.update_token_status()
        super().showEvent(event)

    def revert(self) -> None:
        self.load_from_settings()
        self.status.setText("Unsaved changes discarded.")

    # ---- instant settings ------------------------------------------------

    def _on_theme_changed(self, _index: int) -> None:
        if self._loading:
            return
        theme = self.theme.currentData()
        app = QApplication.instance()
        if isinstance(app, QApplication):
            apply_theme(app, theme)
        self._save_now("theme", theme)

    def _on_offline_toggled(self, on: bool) -> None:
        if self._loading:
            return
        self._save_now("offline", on)
        self.status.setText("Offline mode is on: Hearth makes no network connection." if on
                            else "Offline mode is off.")

    def _save_now(self, name: str, value: Any) -> None:
        setattr(self.ctx.settings, name, value)
        try:
            self.ctx.save_settings()
        except HearthError as exc:
            self.show_error(str(exc))
        self.saved.emit([name])

    # ---- token -----------------------------------------------------------

    def update_token_status(self) -> None:
        """Say where the token is kept and whether the keyring can keep one (reads the keyring)."""
        usable, why = self.tokens.keyring_status()
        self._keyring_usable = usable
        source = self.tokens.source
        where = {
            "keyring": "A token is saved in the system keyring.",
            "session": "A token is kept for this session only; Hearth forgets it when it closes.",
            "environment": "Using the token from the HF_TOKEN environment variable.",
        }.get(source or "", "No token is set: public models download without one.")
        self.token_status.setText(where if usable else f"{where} {why}")
        self.session_only.setVisible(not usable)
        self.remove_token_button.setEnabled(source in ("keyring", "session"))

    def remove_token(self) -> None:
        self.tokens.clear()
        self.token.clear()
        self.update_token_status()
        self.status.setText("The Hugging Face token was removed.")

    # ---- saving ----------------------------------------------------------

    def _on_field_edited(self, *_args: Any) -> None:
        if not self._loading:
            self._dirty = True

    def _clear_errors(self) -> None:
        for lab in self.errors.values():
            lab.clear()
            lab.setVisible(False)

    def _show_error(self, key: str, message: str) -> None:
        lab = self.errors[key]
        lab.setText(message)
        lab.setVisible(True)

    def collect(self) -> tuple[dict[str, Any], dict[str, str]]:
        """The form's values as Settings fields, and a message per field that is not valid."""
        values: dict[str, Any] = {}
        errors: dict[str, str] = {}

        def read(key: str, fn: Callable[[], Any]) -> None:
            try:
                values[key] = fn()
            except _FieldError as exc:
                errors[key] = str(exc)

        def models_dir() -> str | None:
            t = self.models_dir.text().strip()
            if not t:
                return None
            p = Path(t).expanduser()
            if p.exists() and not p.is_dir():
                raise _FieldError(f"{p} is a file, not a folder. Choose a folder for models.")
            return str(p)

        def positive_mb(text: str, what: str, minimum: int) -> int:
            n = _parse_int(text, what)
            assert n is not None
            if n < minimum:
                raise _FieldError(f"{what} must be at least {minimum} MB.")
            return n * MB

        def gpu_layers() -> int | None:
            n = _parse_int(self.gpu_layers_override.text(), "GPU layers", auto=True, all_word=-1)
            if n is not None and n < -1:
                raise _FieldError("GPU layers must be Auto, All, or a number of layers from 0 up.")
            return n

        def cpu_moe() -> int | None:
            n = _parse_int(self.cpu_moe_override.text(), "CPU expert layers", auto=True)
            if n is not None and n < 0:
                raise _FieldError("CPU expert layers must be Auto or a number from 0 up.")
            return n

        read("models_dir", models_dir)
        read("hf_endpoint", lambda: _check_url(self.hf_endpoint.text(), "The mirror endpoint", ("https", "http")))
        read("proxy", lambda: _check_url(self.proxy.text(), "The proxy", PROXY_SCHEMES))
        read("context_size", lambda: _parse_int(self.context_size.currentText(), "Context size", auto=True))
        read("temperature", lambda: _parse_float(self.temperature.text(), "Temperature"))
        read("top_p", lambda: _parse_float(self.top_p.text(), "Top-p"))
        read("max_tokens", lambda: _parse_int(self.max_tokens.text(), "Max tokens"))
        read("threads", lambda: _parse_int(self.threads.text(), "Threads", auto=True))
        values["system_prompt"] = self.system_prompt.toPlainText()
        values["reasoning_effort"] = self.reasoning_effort.currentData()
        read("gpu_layers_override", gpu_layers)
        read("cpu_moe_override", cpu_moe)
        values["kv_cache"] = self.kv_cache.currentData()
        read("state_cache_bytes", lambda: positive_mb(self.state_cache_mb.text(), "The cache size", 0))
        values["save_states_on_exit"] = self.save_states_on_exit.isChecked()
        values["load_last_model"] = self.load_last_model.isChecked()
        values["python_tool"] = self.python_tool.isChecked()
        read("saved_state_max_bytes", lambda: positive_mb(self.saved_state_mb.text(), "The size per state", 1))
        # Settings.validate() owns the value rules: check each field on its own so that
        # every problem is shown next to its field, not only the first one.
        for key, value in values.items():
            try:
                replace(Settings(), **{key: value}).validate()
            except SettingsError as exc:
                errors[key] = str(exc)
        if self.token.text().strip() and not self._token_can_be_kept():
            errors["token"] = ("No system keyring can store the token. Tick “Keep for this session only” "
                               "to use it until Hearth closes.")
        return values, errors

    def _token_can_be_kept(self) -> bool:
        if self._keyring_usable is None:
            self._keyring_usable = self.tokens.keyring_status()[0]
        return self._keyring_usable or self.session_only.isChecked()

    def save(self) -> bool:
        """Check every field; if all are valid, apply and write them. Returns whether it saved."""
        self._clear_errors()
        values, errors = self.collect()
        if not errors:
            try:
                replace(self.ctx.settings, **values).validate()
            except SettingsError as exc:  # a rule that spans fields
                self.status.setText(f"Not saved: {exc}")
                return False
        if errors:
            for key, msg in errors.items():
                self._show_error(key, msg)
            first = next((k for k in self.fields if k in errors), None)
            if first is not None:
                self.fields[first].setFocus()
                self._scroll.ensureWidgetVisible(self.fields[first], 50, 80)
            n = len(errors)
            self.status.setText(f"Not saved: {n} field{'s' if n > 1 else ''} need{'' if n > 1 else 's'} "
                                "fixing (shown in red).")
            return False
        if values["models_dir"]:
            try:
                Path(values["models_dir"]).mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                self._show_error("models_dir", f"Could not create {values['models_dir']}: {exc.strerror or exc}. "
                                               "Choose a folder you can write to.")
                self.status.setText("Not saved: the models folder could not be created.")
                return False
        token = self.token.text().strip()
        if token:
            try:
                self.tokens.save(token, remember=bool(self._keyring_usable) and not self.session_only.isChecked())
            except KeyringUnavailableError as exc:
                self._keyring_usable = False
                self.session_only.setVisible(True)
                self._show_error("token", str(exc))
                self.status.setText("Not saved: the token could not be stored.")
                return False
        s = self.ctx.settings
        before = {k: getattr(s, k) for k in FORM_FIELDS}
        changed = [k for k in FORM_FIELDS if values[k] != before[k]]
        for k in changed:
            setattr(s, k, values[k])
        try:
            self.ctx.save_settings()
        except HearthError as exc:
            for k in changed:  # memory and file stay the same; the form keeps what was typed
                setattr(s, k, before[k])
            self.status.setText(f"Not saved: {exc}")
            return False
        self.token.clear()
        self._dirty = False
        self.update_token_status()
        self.load_from_settings()  # shows the values as stored ("auto" → Auto, "0.70" → 0.7)
        self.status.setText("Settings saved." + (" The token is stored." if token else ""))
        self._note_reload([k for k in changed if k in RELOAD_FIELDS])
        self.saved.emit(changed)
        log.info("settings saved (%s)", ", ".join(changed) or "no field changed")
        return True

    def _note_reload(self, changed: list[str]) -> None:
        if not changed or not self.controller.loaded:
            return
        names = [RELOAD_FIELDS[k] for k in changed]
        listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        self.reload_label.setText(f"The new {listed} take{'s' if len(names) == 1 else ''} effect when "
                                  "the model is loaded again.")
        self.reload_banner.setVisible(True)

    def _on_reload_clicked(self) -> None:
        self.reload_banner.setVisible(False)
        self.reload_model()

    def _choose_models_dir(self) -> None:
        start = self.models_dir.text().strip() or str(self.ctx.models_dir)
        path = QFileDialog.getExistingDirectory(self, "Models folder", start)
        if path:
            self.models_dir.setText(path)


def proxy_help() -> str:
    """Which proxy URLs work, from app.settings.PROXY_SCHEMES (the one list Settings.validate accepts)."""
    schemes = ", ".join(f"{s}://" for s in PROXY_SCHEMES)
    return (f"Works with {schemes} proxies (not https://). "
            "Empty uses the system's HTTPS_PROXY setting.")


def _mb_text(n: int) -> str:
    return f"{n / MB:g}" if n % MB else str(n // MB)


def _hbox(*widgets: QWidget) -> QWidget:
    w = QWidget()
    h = QHBoxLayout(w)
    h.setContentsMargins(0, 0, 0, 0)
    for i, x in enumerate(widgets):
        h.addWidget(x, 1 if i == 0 else 0)
    return w


def update_offline_label(label: QLabel, on: bool) -> None:
    """The status bar's shield follows the setting."""
    label.setText(OFFLINE_LABEL if on else "")
    label.setToolTip("Offline mode is on: Hearth makes no network connection." if on else "")
    label.setAccessibleName("Offline mode on" if on else "")
