"""Background work for the Models page: short core jobs and the download queue, reported on the GUI thread.

Scans, searches, imports, deletions and fit estimates run on plain Python
threads; downloads run on DownloadQueue's worker. Everything they report goes
into one queue that a GUI-thread timer drains ~10 times a second, so progress
reaches the widgets at a calm rate and no worker ever touches a widget.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from app.errors import HearthError
from app.models import CancelToken, DownloadJob, DownloadProgress, DownloadQueue

log = logging.getLogger(__name__)

TICK_MS = 100  # progress reaches the GUI at most ~10 times a second

EventFn = Callable[[Any], None]
DoneFn = Callable[[Any, "Exception | None"], None]


@dataclass(eq=False)
class Task:
    """One background job; ``cancel`` is handed to the work so it can stop early."""

    name: str
    on_event: EventFn | None = None
    on_done: DoneFn | None = None
    cancel: CancelToken = field(default_factory=CancelToken)
    thread: threading.Thread | None = None


class ModelsWorker(QObject):
    """Runs the Models page's work off the GUI thread and hands results back on it."""

    download_event = Signal(object, object)  # DownloadJob, its latest DownloadProgress (one per tick)

    def __init__(self, parent: QObject | None = None, *, max_active_downloads: int = 1) -> None:
        super().__init__(parent)
        self._events: queue.Queue[tuple[Any, ...]] = queue.Queue()
        self._tasks: list[Task] = []
        self._closed = False
        self.downloads = DownloadQueue(max_active=max_active_downloads, listener=self._on_download)
        self._timer = QTimer(self)
        self._timer.setInterval(TICK_MS)
        self._timer.timeout.connect(self._drain)

    # ---- short jobs ------------------------------------------------------

    def call(self, name: str, fn: Callable[[CancelToken], Any], on_done: DoneFn) -> Task:
        """Run ``fn(cancel)`` on a thread; ``on_done(result, error)`` runs on the GUI thread."""
        return self._start(Task(name, None, on_done), lambda task: fn(task.cancel), streaming=False)

    def stream(self, name: str, gen: Callable[[CancelToken], Iterator[Any]], on_event: EventFn,
               on_done: DoneFn) -> Task:
        """Iterate ``gen(cancel)`` on a thread; each item goes to ``on_event``, then ``on_done(last, error)``."""
        return self._start(Task(name, on_event, on_done), lambda task: gen(task.cancel), streaming=True)

    def _start(self, task: Task, body: Callable[[Task], Any], *, streaming: bool) -> Task:
        if self._closed:
            log.debug("models page closing: %s not started", task.name)
            return task

        def run() -> None:
            try:
                if streaming:
                    last = None
                    for item in body(task):
                        last = item
                        self._events.put(("event", task, item))
                    result = last
                else:
                    result = body(task)
            except Exception as exc:  # noqa: BLE001 - every failure is shown on the page
                if not isinstance(exc, (HearthError, OSError)):
                    log.exception("models page task %s failed", task.name)
                self._events.put(("done", task, None, exc))
            else:
                self._events.put(("done", task, result, None))

        task.thread = threading.Thread(target=run, name=f"hearth-models-{task.name}", daemon=True)
        self._tasks.append(task)
        task.thread.start()
        self._kick()
        return task

    def busy(self, name: str) -> bool:
        return any(t.name == name for t in self._tasks)

    # ---- downloads -------------------------------------------------------

    def submit(self, job: DownloadJob) -> DownloadJob:
        """Queue (or re-queue) a download; ValueError when the same file is already queued."""
        self.downloads.submit(job)
        self._kick()
        return job

    def pause(self, job: DownloadJob) -> None:
        self.downloads.pause(job)
        self._kick()

    def cancel(self, job: DownloadJob) -> None:
        """Cancel a download; its part file is deleted (off the GUI thread: that can take a moment)."""

        def done(_result: Any, error: Exception | None) -> None:
            if error is not None:
                log.warning("cancelling %s failed: %s", job.job_id, error)

        self.call("cancel", lambda _cancel: self.downloads.cancel(job), done)

    def _on_download(self, job: DownloadJob, event: DownloadProgress) -> None:
        # Called on the queue's worker thread (and on the GUI thread for queue-side changes).
        self._events.put(("download", job, event))

    # ---- GUI-thread pump -------------------------------------------------

    def _kick(self) -> None:
        if not self._timer.isActive() and not self._closed:
            self._timer.start()

    def _drain(self) -> None:
        latest: dict[int, tuple[DownloadJob, DownloadProgress]] = {}
        while True:
            try:
                item = self._events.get_nowait()
            except queue.Empty:
                break
            kind = item[0]
            if kind == "download":
                # Only the newest state of each download matters to the screen.
                latest.pop(id(item[1]), None)
                latest[id(item[1])] = (item[1], item[2])
            elif kind == "event":
                task = item[1]
                if task.on_event is not None and not self._closed:
                    self._safely(task.on_event, item[2])
            elif kind == "done":
                task = item[1]
                if task.thread is not None:
                    task.thread.join(1.0)
                if task in self._tasks:
                    self._tasks.remove(task)
                if task.on_done is not None and not self._closed:
                    self._safely(task.on_done, item[2], item[3])
        if not self._closed:
            for job, event in latest.values():
                self.download_event.emit(job, event)
        idle = not self._tasks and not self.downloads.active() and not self.downloads.waiting()
        if (idle and self._events.empty()) or self._closed:
            self._timer.stop()

    @staticmethod
    def _safely(fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except Exception:  # noqa: BLE001 - a bug in one handler must not stop the pump
            log.exception("models page handler failed")

    # ---- shutdown --------------------------------------------------------

    def shutdown(self, timeout: float = 10.0) -> None:
        """Pause running downloads (their part files stay), cancel the other jobs, join every thread."""
        if self._closed:
            return
        self._closed = True
        self._timer.stop()
        for task in self._tasks:
            task.cancel.cancel()
        self.downloads.close(timeout)
        for task in list(self._tasks):
            if task.thread is not None:
                task.thread.join(timeout)
                if task.thread.is_alive():
                    log.warning("models page task %s did not finish in %.0f s", task.name, timeout)
        self._tasks.clear()
