"""The chat header: model picker, load state and progress in place, reload and eject."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QMenu, QProgressBar, QPushButton, QToolButton, QWidget

from app.engine.remote import host_of
from app.servers import parse_remote_ref
from ui.chat.model_picker import ModelPicker
from ui.widgets import theme
from ui.widgets.icons import icon


class ChatHeader(QWidget):
    # "Reset python": drop the conversation's python session (variables, imports; files stay).
    reset_python_requested = Signal()
    copy_files_to_python_requested = Signal()
    chat_settings_requested = Signal()  # the preset chip: this chat's instructions, preset and options

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("header")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        hl = QHBoxLayout(self)
        hl.setContentsMargins(theme.SPACE_L, theme.SPACE_S, theme.SPACE_L, theme.SPACE_S)
        hl.setSpacing(theme.SPACE_S)
        self.picker = ModelPicker()
        hl.addWidget(self.picker)
        self.state_label = QLabel("No model loaded")
        self.state_label.setObjectName("modelState")
        self.state_label.setAccessibleName("Current model")
        hl.addWidget(self.state_label)
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setFixedWidth(140)
        self.progress.setTextVisible(False)
        self.progress.setVisible(False)
        self.progress.setAccessibleName("Model loading progress")
        hl.addWidget(self.progress)
        self.reload_button = QPushButton("Reload model")
        self.reload_button.setObjectName("primaryButton")
        self.reload_button.setAccessibleName("Reload model")
        self.reload_button.setVisible(False)
        hl.addWidget(self.reload_button)
        self.eject_button = QToolButton()
        self.eject_button.setObjectName("iconButton")
        self.eject_button.setText("Unload model")
        self.eject_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
        self.eject_button.setIconSize(QSize(16, 16))
        self.eject_button.setToolTip("Unload the model and free its memory")
        self.eject_button.setAccessibleName("Unload model")
        self.eject_button.setEnabled(False)
        hl.addWidget(self.eject_button)
        hl.addStretch(1)
        self.reset_python_button = QToolButton()
        self.reset_python_button.setObjectName("pythonChip")
        self.reset_python_button.setText("Reset python")
        self.reset_python_button.setToolTip("Forget this conversation's python variables and imports "
                                            "(files in its scratch folder stay)")
        self.reset_python_button.setAccessibleName("Reset python")
        self.reset_python_button.setVisible(False)  # shown while the python tool is on for the chat
        self.reset_python_button.clicked.connect(self.reset_python_requested)
        # The arrow beside it: the chat's attached files, copied where python's code finds them.
        python_menu = QMenu(self.reset_python_button)
        self.copy_files_action = python_menu.addAction("Copy the attached files to python's folder")
        self.copy_files_action.setToolTip("The model's code then finds them in its working folder (/mnt/data)")
        self.copy_files_action.triggered.connect(self.copy_files_to_python_requested)
        self.reset_python_button.setMenu(python_menu)
        self.reset_python_button.setPopupMode(QToolButton.ToolButtonPopupMode.MenuButtonPopup)
        hl.addWidget(self.reset_python_button)
        self.remote_badge = QLabel("")
        self.remote_badge.setObjectName("remoteBadge")
        self.remote_badge.setVisible(False)
        hl.addWidget(self.remote_badge)
        self.preset_chip = QToolButton()
        self.preset_chip.setObjectName("presetChip")
        self.preset_chip.setIconSize(QSize(14, 14))
        self.preset_chip.clicked.connect(self.chat_settings_requested)
        hl.addWidget(self.preset_chip)
        self.set_preset("")
        self.picker.current_changed.connect(self._on_picker_current_changed)
        self._retint(theme.current())
        theme.notifier().changed.connect(self._retint)

    def _on_picker_current_changed(self, path: str) -> None:
        """A remote model says where the conversation goes: "sent to gpu-box.lan"."""
        remote = parse_remote_ref(path)
        host = host_of(remote[0]) if remote else ""
        self.remote_badge.setText(f"sent to {host}" if host else "")
        self.remote_badge.setToolTip(f"Messages, retrieved document passages and tool results in this chat are "
                                     f"sent to {remote[0]}." if remote else "")
        self.remote_badge.setAccessibleName(f"Sent to {host}" if host else "")
        self.remote_badge.setVisible(bool(host))

    def set_preset(self, name: str, tooltip: str = "") -> None:
        """The chip: the chat's preset ("Custom" once changed), or only the settings icon."""
        self.preset_chip.setText(name or "Chat settings")
        self.preset_chip.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon if name
                                            else Qt.ToolButtonStyle.ToolButtonIconOnly)
        self.preset_chip.setToolTip(tooltip or "Chat settings: instructions, reasoning, sampling, long chats")
        self.preset_chip.setAccessibleName(f"Chat settings (preset: {name})" if name else "Chat settings")

    def _retint(self, t: theme.Tokens) -> None:
        self.eject_button.setIcon(icon("eject", t.muted))
        self.preset_chip.setIcon(icon("settings", t.muted))
        self.preset_chip.setStyleSheet(
            f"QToolButton#presetChip {{ border: 1px solid {t.border}; border-radius: 11px; padding: 2px 8px;"
            f" color: {t.text}; background: {t.bg}; }}"
            f"QToolButton#presetChip:hover {{ border-color: {t.accent}; }}")
        # Reset python and its menu (the attached files): a chip like the preset's, its arrow inside.
        self.reset_python_button.setStyleSheet(
            f"QToolButton#pythonChip {{ border: 1px solid {t.border}; border-radius: 11px;"
            f" padding: 2px 22px 2px 8px; color: {t.text}; background: {t.bg}; }}"
            f"QToolButton#pythonChip:hover {{ border-color: {t.accent}; }}"
            f"QToolButton#pythonChip::menu-button {{ border: none; border-left: 1px solid {t.border}; width: 18px;"
            f" border-top-right-radius: 11px; border-bottom-right-radius: 11px; }}")
