"""Background work for the Models page: short core jobs and the download queue, reported on the GUI thread.

Scans, searches, imports, deletions and fit estimates run as JobRunner jobs
(ui/widgets/jobs.py); downloads run on DownloadQueue's worker, whose events are
posted into the same queue. The runner's timer drains it ~10 times a second and
only the newest state of each download reaches the widgets, so progress arrives
at a calm rate and no worker ever touches a widget.
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import QObject, Signal

from app.models import DownloadJob, DownloadProgress, DownloadQueue
from ui.widgets.jobs import JobRunner

log = logging.getLogger(__name__)

TICK_MS = 100  # progress reaches the GUI at most ~10 times a second


class ModelsWorker(JobRunner):
    """The Models page's JobRunner, plus the download queue whose progress it coalesces per tick."""

    download_event = Signal(object, object)  # DownloadJob, its latest DownloadProgress (one per tick)

    def __init__(self, parent: QObject | None = None, *, max_active_downloads: int = 1) -> None:
        super().__init__(parent, tick_ms=TICK_MS, name="models")
        self._latest: dict[int, tuple[DownloadJob, DownloadProgress]] = {}
        self.downloads = DownloadQueue(max_active=max_active_downloads, listener=self._on_download)

    # ---- downloads -------------------------------------------------------

    def submit(self, job: DownloadJob) -> DownloadJob:
        """Queue (or re-queue) a download; ValueError when the same file is already queued."""
        self.downloads.submit(job)
        self.kick()
        return job

    def pause(self, job: DownloadJob) -> None:
        self.downloads.pause(job)
        self.kick()

    def cancel(self, job: DownloadJob) -> None:
        """Cancel a download; its part file is deleted (off the GUI thread: that can take a moment)."""

        def done(_result: Any, error: BaseException | None) -> None:
            if error is not None:
                log.warning("cancelling %s failed: %s", job.job_id, error)

        self.call("cancel", lambda _cancel: self.downloads.cancel(job), done)

    def _on_download(self, job: DownloadJob, event: DownloadProgress) -> None:
        # Called on the queue's worker thread (and on the GUI thread for queue-side changes).
        self.post("download", job, event)

    # ---- JobRunner hooks (GUI thread) --------------------------------------

    def on_posted(self, item: tuple[Any, ...]) -> None:
        if item[0] == "download":
            # Only the newest state of each download matters to the screen.
            self._latest.pop(id(item[1]), None)
            self._latest[id(item[1])] = (item[1], item[2])

    def end_of_tick(self) -> None:
        latest, self._latest = self._latest, {}
        if not self.closed:
            for job, event in latest.values():
                self.download_event.emit(job, event)

    def idle(self) -> bool:
        return super().idle() and not self.downloads.active() and not self.downloads.waiting()

    # ---- shutdown --------------------------------------------------------

    def shutdown(self, timeout: float = 10.0) -> None:
        """Pause running downloads (their part files stay), cancel the other jobs, join every thread."""
        if self.closed:
            return
        self.cancel_all()
        self.downloads.close(timeout)
        super().shutdown(timeout)
