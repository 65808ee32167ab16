"""Widgets of the Models page: the fit badge, a model card, and a download row with its controls."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from app.hardware import HardwareInfo
from app.models import DownloadJob, DownloadProgress, DownloadState
from app.models.units import format_bytes, format_duration, format_rate
from app.planner import ModelSpec, plan_load
from ui.widgets.labels import VERDICT_BADGES

PENDING = "pending"
UNKNOWN = "unknown"
_GREY = "#757575"
_QUANT = re.compile(r"(?<![A-Za-z0-9])(I?Q\d(?:_[A-Z0-9]+)*|MXFP4|BF16|F16|F32)(?![A-Za-z0-9])", re.IGNORECASE)


@dataclass(frozen=True)
class Fit:
    """The planner's verdict for one model on this computer, with the memory it predicts."""

    verdict: str  # app.planner FITS / FITS_SLOWER / DOES_NOT_FIT, or PENDING / UNKNOWN
    summary: str
    ram_bytes: int = 0
    vram_bytes: int = 0


FIT_PENDING = Fit(PENDING, "Hearth is still detecting this computer's hardware; the verdict follows in a moment.")


def plan_fit(spec: ModelSpec, hw: HardwareInfo, n_ctx: int | None = None) -> Fit:
    """Plan a load of ``spec`` on ``hw`` (what app.models.catalog.planner_fit does, keeping the memory)."""
    plan = plan_load(spec, hw, n_ctx=n_ctx)
    return Fit(plan.verdict, plan.explanation, plan.ram_bytes, plan.vram_bytes)


def fit_tooltip(fit: Fit) -> str:
    if fit.verdict in (PENDING, UNKNOWN):
        return fit.summary
    memory = f"Predicted memory: {format_bytes(fit.ram_bytes)} of RAM"
    if fit.vram_bytes:
        memory += f" and {format_bytes(fit.vram_bytes)} of GPU memory"
    return f"{fit.summary}\n{memory}."


def guess_quantization(filename: str) -> str:
    """The quantization a GGUF file name announces (``…-Q4_K_M.gguf`` -> ``Q4_K_M``), or ''."""
    hits = _QUANT.findall(filename.rsplit("/", 1)[-1])
    return hits[-1].upper() if hits else ""


def size_text(n: int | None) -> str:
    return format_bytes(n) if n else "size unknown"


def context_text(n: int | None) -> str:
    return f"{n:,}-token context" if n else "context unknown"


class FitBadge(QLabel):
    """Green "Fits", amber "Fits, slower", red "Too large"; the tooltip says why and how much memory."""

    def __init__(self, fit: Fit = FIT_PENDING) -> None:
        super().__init__()
        self.setObjectName("fitBadge")
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.fit = fit
        self.set_fit(fit)
        # One width for every verdict, so badges form a column down a list of cards.
        self.setFixedWidth(badge_width(self))

    def set_fit(self, fit: Fit) -> None:
        self.fit = fit
        if fit.verdict == PENDING:
            text, colour = "Checking…", _GREY
        else:
            text, colour = VERDICT_BADGES.get(fit.verdict, ("Not estimated", _GREY))
        self.setText(text)
        self.setStyleSheet(f"QLabel#fitBadge {{ background: {colour}; color: white; border-radius: 9px; "
                           "padding: 2px 10px; }")
        self.setToolTip(fit_tooltip(fit))
        self.setAccessibleName(f"Fit: {text}")
        self.setAccessibleDescription(fit_tooltip(fit))


def badge_width(label: QLabel) -> int:
    """The width of the widest badge text in ``label``'s font, with the badge's padding."""
    texts = ["Checking…", "Not estimated", *(t for t, _ in VERDICT_BADGES.values())]
    fm = label.fontMetrics()
    return max(fm.horizontalAdvance(t) for t in texts) + 2 * 10 + 8


class ModelCard(QFrame):
    """One model: a title, a line of facts, an optional detail, a fit badge and action buttons."""

    def __init__(self, title: str, facts: list[str], *, detail: str = "", fit: Fit | None = None,
                 tag: str = "") -> None:
        super().__init__()
        self.setObjectName("modelCard")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAccessibleName(title)
        self.buttons: dict[str, QPushButton] = {}
        col = QVBoxLayout(self)
        col.setContentsMargins(12, 8, 12, 8)
        col.setSpacing(4)
        head = QHBoxLayout()
        head.setSpacing(10)
        # The fit badge comes first, at a fixed width: a column at one x down the whole list,
        # whatever the title's length or the buttons' widths.
        self.badge = FitBadge(fit) if fit is not None else None
        if self.badge is not None:
            head.addWidget(self.badge, 0, Qt.AlignmentFlag.AlignVCenter)
        self.title = QLabel(f"<b>{_html(title)}</b>" + (f"  <i>{_html(tag)}</i>" if tag else ""))
        self.title.setAccessibleName("Model name")
        head.addWidget(self.title, 1)
        self._actions = QHBoxLayout()
        self._actions.setSpacing(6)
        head.addLayout(self._actions)
        col.addLayout(head)
        self.facts = QLabel(" · ".join(f for f in facts if f))
        self.facts.setObjectName("messageFooter")
        self.facts.setWordWrap(True)
        self.facts.setAccessibleName("Model details")
        self.facts.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        col.addWidget(self.facts)
        self.detail = QLabel(detail)
        self.detail.setWordWrap(True)
        self.detail.setVisible(bool(detail))
        self.detail.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        col.addWidget(self.detail)
        self.extra = QVBoxLayout()  # room for what a card grows (a repository's file list)
        col.addLayout(self.extra)

    def add_button(self, key: str, text: str, slot: Callable[[], Any], *, tip: str = "",
                   accessible: str = "") -> QPushButton:
        b = QPushButton(text)
        b.setAccessibleName(accessible or text)
        if tip:
            b.setToolTip(tip)
        b.clicked.connect(lambda _checked=False: slot())
        self._actions.addWidget(b)
        self.buttons[key] = b
        return b


class DownloadRow(QFrame):
    """A download in the Downloads list: progress with speed and ETA; pause, resume, cancel, retry."""

    pause_clicked = Signal(object)  # DownloadJob
    resume_clicked = Signal(object)
    cancel_clicked = Signal(object)
    retry_clicked = Signal(object)
    load_clicked = Signal(object)
    dismiss_clicked = Signal(object)

    def __init__(self, job: DownloadJob, title: str) -> None:
        super().__init__()
        self.job = job
        self.state = job.state
        self.setObjectName("downloadRow")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAccessibleName(f"Download of {title}")
        col = QVBoxLayout(self)
        col.setContentsMargins(12, 6, 12, 6)
        col.setSpacing(4)
        head = QHBoxLayout()
        self.title = QLabel(f"<b>{_html(title)}</b>")
        head.addWidget(self.title, 1)
        self.buttons: dict[str, QPushButton] = {}
        for key, text, signal in (("pause", "Pause", self.pause_clicked), ("resume", "Resume", self.resume_clicked),
                                  ("retry", "Retry", self.retry_clicked), ("load", "Load", self.load_clicked),
                                  ("cancel", "Cancel", self.cancel_clicked), ("dismiss", "Dismiss",
                                                                              self.dismiss_clicked)):
            b = QPushButton(text)
            b.setAccessibleName(f"{text} download of {title}")
            b.clicked.connect(lambda _c=False, s=signal: s.emit(self.job))
            head.addWidget(b)
            self.buttons[key] = b
        col.addLayout(head)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.progress.setAccessibleName(f"Progress of {title}")
        col.addWidget(self.progress)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setAccessibleName("Download status")
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        col.addWidget(self.status)
        self.update_progress(job.last)

    def update_progress(self, ev: DownloadProgress) -> None:
        self.state = ev.state
        s = ev.state
        frac = ev.fraction
        if s is DownloadState.COMPLETED:
            frac = 1.0
        self.progress.setRange(0, 1000 if frac is not None or s.finished else 0)  # busy bar while unknown
        if frac is not None:
            self.progress.setValue(int(frac * 1000))
        self.status.setText(progress_text(ev))
        set_error_style(self.status, s is DownloadState.FAILED)
        running = not s.finished
        self.buttons["pause"].setVisible(running)
        self.buttons["resume"].setVisible(s is DownloadState.PAUSED)
        self.buttons["retry"].setVisible(s is DownloadState.FAILED)
        self.buttons["load"].setVisible(s is DownloadState.COMPLETED)
        self.buttons["cancel"].setVisible(s not in (DownloadState.COMPLETED, DownloadState.CANCELLED))
        self.buttons["dismiss"].setVisible(s in (DownloadState.COMPLETED, DownloadState.FAILED,
                                                 DownloadState.CANCELLED))
        self.progress.setVisible(s not in (DownloadState.FAILED, DownloadState.CANCELLED))


def progress_text(ev: DownloadProgress) -> str:
    """One line for a download's state: amounts, speed and time left while bytes flow."""
    s = ev.state
    amounts = (f"{format_bytes(ev.bytes_done)} of {format_bytes(ev.total)}" if ev.total
               else format_bytes(ev.bytes_done))
    if s is DownloadState.QUEUED:  # one download runs at a time
        return "Waiting to start…" if not ev.bytes_done else f"Waiting to resume ({amounts} done)…"
    if s is DownloadState.DOWNLOADING:
        line = amounts
        if ev.speed_bps:
            line += f" · {format_rate(ev.speed_bps)}"
        if ev.eta_s is not None:
            line += f" · {format_duration(ev.eta_s)} left"
        return line
    if s is DownloadState.CHECKING:
        return f"{ev.message or 'Checking the partial download'}… ({amounts})"
    if s is DownloadState.PAUSED:
        return f"Paused at {amounts}. Resume continues where it stopped."
    if s is DownloadState.COMPLETED:
        return ev.message or "Downloaded and verified."
    if s is DownloadState.CANCELLED:
        return ev.message or "Download cancelled."
    if s is DownloadState.FAILED:
        return ev.message or "The download failed."
    return ev.message or s.value.capitalize()


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def set_error_style(label: QLabel, error: bool) -> None:
    """Red text (the theme's #errorLabel) for errors; re-polished so the change shows at once."""
    name = "errorLabel" if error else ""
    if label.objectName() != name:
        label.setObjectName(name)
        label.style().unpolish(label)
        label.style().polish(label)


def section_label(text: str) -> QLabel:
    lab = QLabel(f"<b>{_html(text)}</b>")
    lab.setContentsMargins(0, 8, 0, 2)
    return lab


def muted_label(text: str) -> QLabel:
    lab = QLabel(text)
    lab.setObjectName("messageFooter")  # the theme's muted text
    lab.setWordWrap(True)
    return lab


def clear_layout(layout: Any) -> None:
    """Remove and delete every widget in ``layout`` (lists are rebuilt when their data changes)."""
    while layout.count():
        item = layout.takeAt(0)
        w: QWidget | None = item.widget()
        if w is not None:
            w.hide()
            w.deleteLater()
        elif item.layout() is not None:
            clear_layout(item.layout())
