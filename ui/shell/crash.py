"""Unexpected exceptions: a local crash report and a dialog; the app keeps running.

Nothing is sent anywhere: the report is a text file in the logs folder that the
user may read or share themselves.
"""

from __future__ import annotations

import logging
import platform
import sys
import time
import traceback
from pathlib import Path
from types import TracebackType

from PySide6.QtWidgets import QApplication, QMessageBox

from app import __version__

log = logging.getLogger(__name__)


def write_report(crash_dir: Path, exc_type: type[BaseException], exc: BaseException,
                 tb: TracebackType | None) -> Path:
    crash_dir.mkdir(parents=True, exist_ok=True)
    path = crash_dir / time.strftime("crash-%Y%m%d-%H%M%S.txt")
    text = "".join(traceback.format_exception(exc_type, exc, tb))
    path.write_text(
        f"Hearth {__version__} on {platform.platform()}, Python {platform.python_version()}\n\n{text}",
        encoding="utf-8",
    )
    return path


def install_excepthook(crash_dir: Path) -> None:
    previous = sys.excepthook

    def hook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            previous(exc_type, exc, tb)
            return
        log.error("unexpected error", exc_info=(exc_type, exc, tb))
        try:
            path = write_report(crash_dir, exc_type, exc, tb)
        except OSError:
            path = None
        if QApplication.instance() is None:
            previous(exc_type, exc, tb)
            return
        box = QMessageBox(QMessageBox.Icon.Critical, "Hearth ran into a problem",
                          f"Something went wrong: {exc}\n\nHearth keeps running. A report was saved on this "
                          f"computer{f' at {path}' if path else ''}; nothing was sent anywhere.")
        box.setModal(False)
        box.show()
        hook.last_box = box  # type: ignore[attr-defined]

    sys.excepthook = hook
