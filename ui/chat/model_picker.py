"""The header's model picker: installed and recently opened models, each with its fit
for this computer; choosing one loads it (progress shows beside the picker)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPainter, QPaintEvent, QPixmap
from PySide6.QtWidgets import QComboBox, QStyle, QStyleOptionComboBox, QStylePainter, QWidget

from app.engine.remote import host_of
from app.planner import FITS
from app.servers import parse_remote_ref
from ui.widgets.inputs import guard_wheel
from ui.widgets.labels import VERDICT_BADGES, verdict_colour

OPEN_FILE = "::open"
MANAGE = "::manage"
ROLE_PATH = Qt.ItemDataRole.UserRole + 1


def _key(path: str) -> str:
    """How two entries are the same model: a file's resolved path, a remote model's reference."""
    return path if parse_remote_ref(path) else str(Path(path).resolve())


def _label(path: str) -> str:
    remote = parse_remote_ref(path)
    return f"{remote[1]} · {host_of(remote[0])}" if remote else Path(path).name


@dataclass(frozen=True)
class PickerEntry:
    path: str
    name: str
    detail: str = ""  # "12.1 GB · installed", "recently opened"
    badge: str = ""  # "Fits", "Fits, slower", "Too large", "" (not estimated)
    colour: str = "#9e9e9e"
    tooltip: str = ""


def _dot(colour: str, size: int = 10) -> QIcon:
    pm = QPixmap(QSize(size * 2, size * 2))
    pm.setDevicePixelRatio(2.0)
    pm.fill(Qt.GlobalColor.transparent)
    p = QPainter(pm)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(QColor(colour))
    p.drawEllipse(1, 1, size - 2, size - 2)
    p.end()
    return QIcon(pm)


class ModelPicker(QComboBox):
    model_chosen = Signal(str)  # the file to load
    open_file_requested = Signal()
    manage_requested = Signal()
    current_changed = Signal(str)  # the model shown as chosen ("" for none)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("modelPicker")
        self.setAccessibleName("Model")
        self.setToolTip("Choose the model to chat with")
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.setMinimumContentsLength(14)
        self.setPlaceholderText("Choose a model…")
        self.entries: list[PickerEntry] = []
        self.current_path: str | None = None
        # The model running now: its fit is no longer a guess (a file opened from elsewhere has none).
        self.loaded_path: str | None = None
        # more entries after the installed ones: the models of remote servers (ui/pages/servers.py)
        self.extra_entries: Callable[[], list[PickerEntry]] = lambda: []
        self._rebuilding = False
        self.activated.connect(self._on_activated)
        guard_wheel(self)
        self.set_entries([])

    def set_entries(self, entries: list[PickerEntry]) -> None:
        """Installed models first, then recent files not in the library (no duplicates)."""
        seen: set[str] = set()
        unique: list[PickerEntry] = []
        for e in [*entries, *self.extra_entries()]:
            key = _key(e.path) if e.path else e.name
            if key not in seen:
                seen.add(key)
                unique.append(e)
        if self.current_path and _key(self.current_path) not in seen:
            # the loaded model stays in the list (a file opened from elsewhere, not installed)
            unique.insert(0, PickerEntry(self.current_path, _label(self.current_path), "opened from a file"))
        self.entries = unique
        self._rebuild()

    def set_current(self, path: str | None) -> None:
        """Show ``path`` as the chosen model (it is added if the list lacks it)."""
        self.current_path = path
        if path and self._index_of(path) < 0:
            self.entries.insert(0, PickerEntry(path, _label(path), "recently opened"))
            self._rebuild()
        self._select_current()
        self.current_changed.emit(path or "")

    def set_loaded(self, path: str | None) -> None:
        """Mark ``path`` as the model running now (None: none is)."""
        if path != self.loaded_path:
            self.loaded_path = path
            self._rebuild()

    def _look(self, e: PickerEntry) -> tuple[str, str]:
        """(badge, colour) as shown: an entry without a fit estimate that is running reads "Loaded"."""
        if e.badge or not (self.loaded_path and e.path) or _key(e.path) != _key(self.loaded_path):
            return e.badge, e.colour
        return "Loaded", verdict_colour(FITS, VERDICT_BADGES[FITS][1])

    def _index_of(self, path: str) -> int:
        want = _key(path)
        for i in range(self.count()):
            p = self.itemData(i, ROLE_PATH)
            if isinstance(p, str) and not p.startswith("::") and _key(p) == want:
                return i
        return -1

    def _rebuild(self) -> None:
        self._rebuilding = True
        try:
            self.clear()
            for e in self.entries:
                badge, colour = self._look(e)
                label = e.name if not badge else f"{e.name}   ·  {badge}"
                self.addItem(_dot(colour), label)
                i = self.count() - 1
                self.setItemData(i, e.path, ROLE_PATH)
                tip = "\n".join(x for x in (e.path, e.detail, e.tooltip) if x)
                self.setItemData(i, tip, Qt.ItemDataRole.ToolTipRole)
                self.setItemData(i, f"{e.name}, {badge or 'fit not estimated'}", Qt.ItemDataRole.AccessibleTextRole)
            if self.entries:
                self.insertSeparator(self.count())
            self.addItem("Open a GGUF file…")
            self.setItemData(self.count() - 1, OPEN_FILE, ROLE_PATH)
            self.addItem("Manage models…")
            self.setItemData(self.count() - 1, MANAGE, ROLE_PATH)
            self._select_current()
        finally:
            self._rebuilding = False

    def _select_current(self) -> None:
        self.blockSignals(True)
        self.setCurrentIndex(self._index_of(self.current_path) if self.current_path else -1)
        self.blockSignals(False)

    def _on_activated(self, index: int) -> None:
        if self._rebuilding:
            return
        path = self.itemData(index, ROLE_PATH)
        self._select_current()  # the picker shows the loaded model until the new one is in
        if path == OPEN_FILE:
            self.open_file_requested.emit()
        elif path == MANAGE:
            self.manage_requested.emit()
        elif isinstance(path, str) and path:
            self.model_chosen.emit(path)

    def paintEvent(self, _event: QPaintEvent) -> None:  # noqa: N802 - Qt's name
        """Qt clips a long entry mid-letter when the header is narrow: elide it ("gpt-oss-20b-MX…")."""
        p = QStylePainter(self)
        opt = QStyleOptionComboBox()
        self.initStyleOption(opt)
        p.drawComplexControl(QStyle.ComplexControl.CC_ComboBox, opt)
        field = self.style().subControlRect(QStyle.ComplexControl.CC_ComboBox, opt,
                                            QStyle.SubControl.SC_ComboBoxEditField, self)
        room = field.width() - (opt.iconSize.width() + 6 if not opt.currentIcon.isNull() else 0)
        opt.currentText = self.fontMetrics().elidedText(opt.currentText, Qt.TextElideMode.ElideRight, max(0, room))
        p.drawControl(QStyle.ControlElement.CE_ComboBoxLabel, opt)
