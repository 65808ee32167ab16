"""Guard against the PySide6 6.12.0 bug that crashed Hearth after a few thousand timer ticks.

That release dropped a reference to None on every QTimer callback and to True/False
on every signal emit; Python 3.11 then aborts ("deallocating None"). The app relies on
timers and signals while streaming, so a broken Qt binding must fail the suite.
"""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QApplication


class _Emitter(QObject):
    delta = Signal(int, str, str)
    anything = Signal(object)


def test_timer_callbacks_and_emits_keep_reference_counts(qtbot) -> None:
    app = QApplication.instance()
    calls = []
    timer = QTimer()
    timer.setInterval(0)
    timer.timeout.connect(lambda: calls.append(1))
    e = _Emitter()
    e.delta.connect(lambda a, b, c: None)
    e.anything.connect(lambda x: None)
    none0, true0, false0 = sys.getrefcount(None), sys.getrefcount(True), sys.getrefcount(False)
    timer.start()
    while len(calls) < 3000:
        app.processEvents()
    timer.stop()
    for _ in range(3000):
        e.delta.emit(1, "a", "b")
        e.anything.emit(None)
        e.anything.emit(True)
    assert abs(sys.getrefcount(None) - none0) < 100
    assert abs(sys.getrefcount(True) - true0) < 100
    assert abs(sys.getrefcount(False) - false0) < 100
