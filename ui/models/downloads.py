"""The Models page's download list: queue a file, show its progress, pause, resume, cancel, retry.

One download runs at a time (DownloadQueue); the rest wait in order. Resume
and Retry start a fresh DownloadJob for the same file so that settings changed
in the meantime (token, mirror, proxy) apply; the job picks up the part file.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QGroupBox, QMessageBox, QVBoxLayout

from app.models import DownloadJob, DownloadProgress, DownloadRequest, DownloadState
from app.models.units import format_bytes
from ui.models.widgets import DownloadRow

if TYPE_CHECKING:
    from ui.models.page import ModelsPage

log = logging.getLogger(__name__)

OFFLINE_DOWNLOAD = ("Offline mode is on, so Hearth does not download anything. Turn Offline mode off in "
                    "Settings to download; the models you have keep working.")


class DownloadsPanel(QGroupBox):
    """The "Downloads" box at the top of the Models page; hidden while empty."""

    progress = Signal(object)  # DownloadProgress of the current job of a row (~10 a second at most)
    changed = Signal()  # a download was added, finished or removed

    def __init__(self, page: ModelsPage) -> None:
        super().__init__("Downloads")
        self.page = page
        self.setAccessibleName("Downloads")
        self.jobs: dict[str, DownloadJob] = {}  # job_id -> the current job for that file
        self.rows: dict[str, DownloadRow] = {}
        self.titles: dict[str, str] = {}  # job_id -> what the user knows the download as
        self._col = QVBoxLayout(self)
        self.setVisible(False)
        page.worker.download_event.connect(self._on_worker_download_event)

    def job_for(self, request: DownloadRequest) -> DownloadJob | None:
        return self.jobs.get(request.job_id)

    def basenames(self) -> set[str]:
        return {j.request.basename for j in self.jobs.values()}

    # ---- actions ---------------------------------------------------------

    def download(self, request: DownloadRequest, title: str | None = None) -> DownloadJob | None:
        """Queue a download; None when offline or when it cannot be queued (the page says why)."""
        page = self.page
        if page.closing:
            return None
        if page.offline:
            page.show_notice(OFFLINE_DOWNLOAD, error=True)
            return None
        job_id = request.job_id
        old = self.jobs.get(job_id)
        if old is not None and not old.state.finished:
            page.show_notice(f"{request.basename} is already in the download list.")
            return old
        library = page.current_library()
        job = DownloadJob(request, library.models_dir, page.net(), policy=page.retry_policy, library=library)
        try:
            page.worker.submit(job)
        except ValueError as exc:
            if old is not None and (old.running or old in page.worker.downloads.active()):
                # The previous run of this file has just reported its pause or failure and is
                # letting go of the file: try again in a moment.
                QTimer.singleShot(50, self, lambda: self.download(request, title))
                return None
            page.show_notice(str(exc).capitalize() + ".", error=True)
            return None
        page.worker.downloads.clear_finished()
        self.jobs[job_id] = job
        self.titles[job_id] = title or self.titles.get(job_id) or request.basename
        row = self.rows.get(job_id)
        if row is None:
            row = DownloadRow(job, self.titles[job_id])
            row.pause_clicked.connect(self.pause)
            row.resume_clicked.connect(self.resume)
            row.retry_clicked.connect(self.resume)
            row.cancel_clicked.connect(self.cancel)
            row.load_clicked.connect(self._on_row_load_clicked)
            row.dismiss_clicked.connect(self.dismiss)
            self._col.addWidget(row)
            self.rows[job_id] = row
        else:
            row.job = job
            row.update_progress(job.last)
        self.setVisible(True)
        page.show_notice("")
        self.changed.emit()
        return job

    def pause(self, job: DownloadJob) -> None:
        self.page.worker.pause(job)

    def resume(self, job: DownloadJob) -> None:
        """Resume a paused download or retry a failed one."""
        self.download(job.request, self.titles.get(job.job_id))

    def cancel(self, job: DownloadJob) -> None:
        """Ask, then cancel: the part file is deleted."""
        name = self.titles.get(job.job_id, job.request.basename)
        done = job.last.bytes_done
        part = f" The partial file ({format_bytes(done)}) will be deleted." if done else ""
        answer = QMessageBox.question(self, "Cancel download", f"Cancel the download of {name}?{part}",
                                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                      QMessageBox.StandardButton.No)
        if answer == QMessageBox.StandardButton.Yes:
            self.page.worker.cancel(job)

    def dismiss(self, job: DownloadJob) -> None:
        """Take a finished download off the list."""
        row = self.rows.pop(job.job_id, None)
        if self.jobs.get(job.job_id) is job and not job.running:
            self.jobs.pop(job.job_id, None)
        if row is not None:
            row.hide()
            row.deleteLater()
        self.page.worker.downloads.clear_finished()
        self.setVisible(bool(self.rows))
        self.changed.emit()

    def _on_row_load_clicked(self, job: DownloadJob) -> None:
        if job.final_path is not None:
            self.page.load_path(str(job.final_path))

    # ---- progress (GUI thread, ~10 Hz) -------------------------------------

    def _on_worker_download_event(self, job: DownloadJob, ev: DownloadProgress) -> None:
        if self.jobs.get(job.job_id) is not job:
            return  # an older job for the same file (replaced by a resume or retry)
        row = self.rows.get(job.job_id)
        before = row.state if row is not None else None
        if row is not None:
            row.update_progress(ev)
        self.progress.emit(ev)
        title = self.titles.get(job.job_id, ev.filename)
        if ev.state is DownloadState.CANCELLED:
            self.page.show_notice(f"Download of {title} cancelled; the partial file was deleted.")
            self.dismiss(job)
        elif ev.state is DownloadState.COMPLETED and before is not DownloadState.COMPLETED:
            self.page.show_notice(f"{title} downloaded and verified.")
        elif ev.state is DownloadState.FAILED and before is not DownloadState.FAILED:
            log.info("download of %s failed: %s", title, ev.message)
        if ev.state.finished and before is not ev.state:
            self.changed.emit()
