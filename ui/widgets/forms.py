"""Forms whose fields start at one x on every page: each label is LABEL_WIDTH wide (long ones wrap)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFormLayout, QLabel, QWidget

from ui.widgets.theme import LABEL_WIDTH, SPACE_M


def form_label(text: str = "", buddy: QWidget | None = None) -> QLabel:
    """A form label of the shared width; an empty one keeps a field without a title in line."""
    lab = QLabel(text)
    lab.setFixedWidth(LABEL_WIDTH)
    lab.setWordWrap(True)
    lab.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
    if buddy is not None:
        lab.setBuddy(buddy)
    return lab


def aligned_form(parent: QWidget | None = None) -> QFormLayout:
    """A QFormLayout set up like every other form in Hearth (use form_label for its labels)."""
    form = QFormLayout(parent) if parent is not None else QFormLayout()
    form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
    form.setLabelAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
    form.setFormAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
    form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.DontWrapRows)
    form.setHorizontalSpacing(SPACE_M)
    return form


def add_form_row(form: QFormLayout, label: str, field: QWidget) -> QLabel:
    """``label:`` and ``field`` on one row, the label at the shared width."""
    lab = form_label(f"{label}:" if label and not label.endswith(":") else label, field)
    form.addRow(lab, field)
    return lab
