"""Document work off the GUI thread: ingestion, removal, recovery, page loads.

Same shape as ui/controller.py: each job is a plain Python thread; what it
produces goes into a queue that a GUI-thread timer drains, so the event loop
never waits on extraction, indexing or the database writes they make. Progress
is throttled at the source (~10 updates a second per file).
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer

from app.documents.extract import expand_paths
from app.documents.index import DocumentIndex
from app.documents.models import IngestCancelled, IngestDone, IngestFailed, IngestProgress
from app.errors import DocumentError

log = logging.getLogger(__name__)

DRAIN_MS = 50
PROGRESS_S = 0.1  # at most ten progress updates a second per file
JOIN_TIMEOUT_S = 10.0

Emit = Callable[[Any], None]


@dataclass(eq=False)
class IngestTask:
    """One file being added. The worker reads ``path``, ``password`` and ``cancel``;
    the rest is GUI-thread state for its row."""

    id: int
    path: str
    name: str
    conversation_id: int
    password: str | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    fraction: float = 0.0
    phase: str = "Waiting…"


@dataclass(frozen=True)
class BatchQueued:
    """What a drop or a dialog choice turned into once folders were walked."""

    tasks: list[IngestTask]
    skipped: int  # files in folders Hearth cannot read, left out
    empty_folders: list[str]  # folders given that hold nothing Hearth can read


@dataclass(frozen=True)
class TaskEvent:
    task: IngestTask
    event: IngestProgress


_task_ids = itertools.count(1)


class _Job:
    def __init__(self, name: str, work: Callable[[Emit], Any], out: "queue.Queue[Any]",
                 on_event: Callable[[Any], None] | None, on_done: Callable[[Any], None] | None,
                 on_error: Callable[[BaseException], None] | None) -> None:
        self.name = name
        self.on_event = on_event
        self.on_done = on_done
        self.on_error = on_error
        self._work = work
        self._out = out
        self.thread = threading.Thread(target=self._run, name=f"hearth-docs-{name}", daemon=True)

    def _run(self) -> None:
        try:
            result = self._work(lambda ev: self._out.put((self, "event", ev)))
        except BaseException as exc:  # noqa: BLE001 - every failure reaches the GUI thread
            log.exception("document job %s failed", self.name)
            self._out.put((self, "error", exc))
        else:
            self._out.put((self, "done", result))


class DocumentJobs(QObject):
    """Runs the documents core's long calls on threads; callbacks run on the GUI thread."""

    def __init__(self, index: DocumentIndex, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.index = index
        self.stopping = threading.Event()
        self._queue: "queue.Queue[Any]" = queue.Queue()
        self._jobs: list[_Job] = []
        self._timer = QTimer(self)
        self._timer.setInterval(DRAIN_MS)
        self._timer.timeout.connect(self._drain)

    @property
    def busy(self) -> bool:
        return bool(self._jobs)

    def start(self, name: str, work: Callable[[Emit], Any], *, on_event: Callable[[Any], None] | None = None,
              on_done: Callable[[Any], None] | None = None,
              on_error: Callable[[BaseException], None] | None = None) -> None:
        """Run ``work(emit)`` on a thread; ``on_event`` gets what it emits, ``on_done``
        its return value, ``on_error`` what it raised (all on the GUI thread)."""
        if self.stopping.is_set():
            return
        job = _Job(name, work, self._queue, on_event, on_done, on_error)
        self._jobs.append(job)
        job.thread.start()
        if not self._timer.isActive():
            self._timer.start()

    def call(self, name: str, fn: Callable[[], Any], on_done: Callable[[Any], None] | None = None,
             on_error: Callable[[BaseException], None] | None = None) -> None:
        """A single call off the GUI thread (a removal, a page of text)."""
        self.start(name, lambda _emit: fn(), on_done=on_done, on_error=on_error)

    # ---- ingestion ---------------------------------------------------------

    def ingest(self, paths: Sequence[str], conversation_id: int, on_event: Callable[[Any], None]) -> None:
        """Add files and folders to a conversation, one file after another.

        ``on_event`` first gets a BatchQueued, then TaskEvents; a bad file ends
        with its IngestFailed and the next one goes on.
        """
        given = list(paths)

        def work(emit: Emit) -> None:
            files, skipped = expand_paths(given)
            empty = [p for p in given if Path(p).is_dir() and not any(_inside(f, p) for f in files)]
            tasks = [IngestTask(next(_task_ids), str(f), f.name, conversation_id) for f in files]
            emit(BatchQueued(tasks, len(skipped), empty))
            for task in tasks:
                self._ingest_one(task, emit)

        self.start("ingest", work, on_event=on_event)

    def retry(self, task: IngestTask, on_event: Callable[[Any], None]) -> None:
        """Run one task again (with the password now set on it)."""
        task.cancel.clear()
        self.start("ingest", lambda emit: self._ingest_one(task, emit), on_event=on_event)

    def _ingest_one(self, task: IngestTask, emit: Emit) -> None:
        def cancelled() -> bool:
            return task.cancel.is_set() or self.stopping.is_set()

        if cancelled():
            emit(TaskEvent(task, IngestCancelled(task.path, task.name)))
            return
        last = 0.0
        try:
            for ev in self.index.ingest(task.path, task.conversation_id, password=task.password, cancel=cancelled):
                now = time.monotonic()
                if isinstance(ev, (IngestDone, IngestFailed, IngestCancelled)) or now - last >= PROGRESS_S:
                    last = now
                    emit(TaskEvent(task, ev))
        except Exception as exc:  # noqa: BLE001 - a bug in one file must not stop the others
            log.exception("adding %s failed unexpectedly", task.path)
            emit(TaskEvent(task, IngestFailed(task.path, task.name, DocumentError(
                f"{task.name} could not be added because of an unexpected error ({exc}). The details are in "
                "Hearth's log (Help › Open logs folder)."))))

    # ---- GUI thread ----------------------------------------------------------

    def _drain(self) -> None:
        # Progress of one file is coalesced to its latest event per tick.
        pending: list[tuple[_Job, str, Any]] = []
        latest: dict[int, int] = {}
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            _job, kind, ev = item
            if kind == "event" and isinstance(ev, TaskEvent) and not _is_final(ev.event):
                at = latest.get(ev.task.id)
                if at is not None:
                    pending[at] = item
                    continue
                latest[ev.task.id] = len(pending)
            elif kind == "event" and isinstance(ev, TaskEvent):
                latest.pop(ev.task.id, None)
            pending.append(item)
        for job, kind, ev in pending:
            if self.stopping.is_set():
                return
            self._dispatch(job, kind, ev)
        if not self._jobs and self._queue.empty():
            self._timer.stop()

    def _dispatch(self, job: _Job, kind: str, value: Any) -> None:
        if kind == "event":
            if job.on_event is not None:
                job.on_event(value)
            return
        job.thread.join(timeout=1)
        if job in self._jobs:
            self._jobs.remove(job)
        if kind == "done" and job.on_done is not None:
            job.on_done(value)
        elif kind == "error" and job.on_error is not None:
            job.on_error(value)

    def shutdown(self, timeout: float = JOIN_TIMEOUT_S) -> None:
        """Cancel every ingestion and join every thread (at quit, before the database closes)."""
        self.stopping.set()
        deadline = time.monotonic() + timeout
        for job in list(self._jobs):
            job.thread.join(max(0.0, deadline - time.monotonic()))
            if job.thread.is_alive():
                log.warning("document job %s did not stop within %.0f s", job.name, timeout)
        self._jobs.clear()
        self._timer.stop()


def _is_final(ev: IngestProgress) -> bool:
    return isinstance(ev, (IngestDone, IngestFailed, IngestCancelled))


def _inside(f: Path, folder: str) -> bool:
    try:
        f.relative_to(Path(folder).expanduser())
    except ValueError:
        return False
    return True
