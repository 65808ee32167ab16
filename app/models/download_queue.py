"""A queue of downloads run on background threads, one at a time unless configured otherwise.

The listener gets every DownloadProgress from the worker thread; ui/ turns
those into Qt signals. Worker threads exist only while there is work, and
``close()`` pauses running jobs (their part files stay for next time) and
joins the threads.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable

from app.models.download import DownloadJob, DownloadProgress, DownloadState

log = logging.getLogger(__name__)

Listener = Callable[[DownloadJob, DownloadProgress], None]


class DownloadQueue:
    def __init__(self, *, max_active: int = 1, listener: Listener | None = None) -> None:
        if max_active < 1:
            raise ValueError("max_active must be at least 1")
        self.max_active = max_active
        self._listener = listener
        self._cond = threading.Condition()
        self._waiting: deque[DownloadJob] = deque()
        self._active: set[DownloadJob] = set()
        self._all: list[DownloadJob] = []
        self._threads: set[threading.Thread] = set()
        self._closed = False

    # --- queries -------------------------------------------------------------------

    def jobs(self) -> list[DownloadJob]:
        """Every job submitted and not yet cleared, in submission order."""
        with self._cond:
            return list(self._all)

    def active(self) -> list[DownloadJob]:
        with self._cond:
            return list(self._active)

    def waiting(self) -> list[DownloadJob]:
        with self._cond:
            return list(self._waiting)

    # --- control -------------------------------------------------------------------

    def submit(self, job: DownloadJob) -> DownloadJob:
        """Queue a job (or re-queue a paused/failed one). A second job for the same file is refused."""
        with self._cond:
            if self._closed:
                raise RuntimeError("the download queue is closed")
            for other in list(self._waiting) + list(self._active):
                if other is not job and other.target == job.target:
                    raise ValueError(f"{job.target.name} is already queued for download")
            if job in self._waiting or job in self._active:
                return job
            if job not in self._all:
                self._all.append(job)
            self._waiting.append(job)
            self._emit(job, job.last if job.state is DownloadState.QUEUED else
                       DownloadProgress(job.job_id, job.request.basename, DownloadState.QUEUED,
                                        job.last.bytes_done, job.last.total))
            self._spawn()
        return job

    def resume(self, job: DownloadJob) -> DownloadJob:
        return self.submit(job)

    def pause(self, job: DownloadJob) -> None:
        """Pause a running job (keeps its part file) or take a waiting one off the queue."""
        with self._cond:
            if job in self._waiting:
                self._waiting.remove(job)
                job.state = DownloadState.PAUSED
                self._emit(job, DownloadProgress(job.job_id, job.request.basename, DownloadState.PAUSED,
                                                 job.last.bytes_done, job.last.total, message="Paused."))
                return
        job.pause()

    def cancel(self, job: DownloadJob) -> None:
        """Cancel a job wherever it is; its part file is deleted."""
        with self._cond:
            queued = job in self._waiting
            if queued:
                self._waiting.remove(job)
        job.cancel()
        if queued or not job.running:
            self._emit(job, DownloadProgress(job.job_id, job.request.basename, DownloadState.CANCELLED,
                                             message="Download cancelled."))

    def clear_finished(self) -> None:
        with self._cond:
            self._all = [j for j in self._all if j in self._waiting or j in self._active or not j.state.finished]

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until nothing is running or waiting; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._waiting and not self._active, timeout)

    def close(self, timeout: float | None = 10.0) -> None:
        """Stop: waiting jobs stay unstarted, running ones are paused; worker threads are joined."""
        with self._cond:
            self._closed = True
            self._waiting.clear()
            running = list(self._active)
            threads = list(self._threads)
        for job in running:
            job.pause()
        for t in threads:
            t.join(timeout)

    # --- workers -------------------------------------------------------------------

    def _spawn(self) -> None:
        # Called with the lock held.
        while len(self._threads) < self.max_active and len(self._threads) < len(self._waiting) + len(self._active):
            t = threading.Thread(target=self._work, name="hearth-download", daemon=True)
            self._threads.add(t)
            t.start()

    def _work(self) -> None:
        me = threading.current_thread()
        while True:
            with self._cond:
                if self._closed or not self._waiting:
                    self._threads.discard(me)
                    self._cond.notify_all()
                    return
                job = self._waiting.popleft()
                self._active.add(job)
            try:
                for event in job.run():
                    self._emit(job, event)
            except Exception:  # a bug, not a download failure (those end in a FAILED event)
                log.exception("download job %s crashed", job.job_id)
            finally:
                with self._cond:
                    self._active.discard(job)
                    self._cond.notify_all()

    def _emit(self, job: DownloadJob, event: DownloadProgress) -> None:
        if self._listener is None:
            return
        try:
            self._listener(job, event)
        except Exception:
            log.exception("download listener failed on %s", event.state.value)
