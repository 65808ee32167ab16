"""Document work off the GUI thread: ingestion, removal, recovery, page loads.

Every job goes through the one JobRunner (ui/widgets/jobs.py): ingestion is a
generator that yields BatchQueued and TaskEvents, the rest are single calls, and
what they produce reaches the GUI thread on the runner's timer, so the event
loop never waits on extraction, indexing or the database writes they make.
Progress is throttled at the source (~10 updates a second per file) and, per
tick, only a file's newest progress is delivered.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject

from app.documents.extract import expand_paths
from app.documents.index import DocumentIndex
from app.documents.models import IngestCancelled, IngestDone, IngestFailed, IngestProgress
from app.errors import DocumentError
from ui.widgets.jobs import JobRunner

log = logging.getLogger(__name__)

DRAIN_MS = 50
PROGRESS_S = 0.1  # at most ten progress updates a second per file
JOIN_TIMEOUT_S = 10.0


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


class DocumentJobs(QObject):
    """The documents core's long calls, run by a JobRunner; callbacks run on the GUI thread."""

    def __init__(self, index: DocumentIndex, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.index = index
        self.stopping = threading.Event()
        self.runner = JobRunner(self, tick_ms=DRAIN_MS, name="docs")

    @property
    def busy(self) -> bool:
        return self.runner.busy()

    def call(self, name: str, fn: Callable[[], Any], on_done: Callable[[Any], None] | None = None,
             on_error: Callable[[BaseException], None] | None = None) -> None:
        """A single call off the GUI thread (a removal, a page of text)."""
        if self.stopping.is_set():
            return
        self.runner.call(name, lambda _cancel: fn(), _outcome(name, on_done, on_error))

    # ---- ingestion ---------------------------------------------------------

    def ingest(self, paths: Sequence[str], conversation_id: int, on_event: Callable[[Any], None]) -> None:
        """Add files and folders to a conversation, one file after another.

        ``on_event`` first gets a BatchQueued, then TaskEvents; a bad file ends
        with its IngestFailed and the next one goes on.
        """
        given = list(paths)

        def work() -> Iterator[Any]:
            files, skipped = expand_paths(given)
            empty = [p for p in given if Path(p).is_dir() and not any(_inside(f, p) for f in files)]
            tasks = [IngestTask(next(_task_ids), str(f), f.name, conversation_id) for f in files]
            yield BatchQueued(tasks, len(skipped), empty)
            for task in tasks:
                yield from self._ingest_one(task)

        self._stream(work, on_event)

    def retry(self, task: IngestTask, on_event: Callable[[Any], None]) -> None:
        """Run one task again (with the password now set on it)."""
        task.cancel.clear()
        self._stream(lambda: self._ingest_one(task), on_event)

    def _stream(self, work: Callable[[], Iterator[Any]], on_event: Callable[[Any], None]) -> None:
        if self.stopping.is_set():
            return

        def on_batch(events: list[Any]) -> None:
            for ev in _coalesced(events):
                if self.stopping.is_set():
                    return
                on_event(ev)

        self.runner.stream("ingest", lambda _cancel: work(), on_batch=on_batch,
                           on_done=_outcome("ingest", None, None))

    def _ingest_one(self, task: IngestTask) -> Iterator[TaskEvent]:
        def cancelled() -> bool:
            return task.cancel.is_set() or self.stopping.is_set()

        if cancelled():
            yield TaskEvent(task, IngestCancelled(task.path, task.name))
            return
        last = 0.0
        try:
            for ev in self.index.ingest(task.path, task.conversation_id, password=task.password, cancel=cancelled):
                now = time.monotonic()
                if _is_final(ev) or now - last >= PROGRESS_S:
                    last = now
                    yield TaskEvent(task, ev)
        except Exception as exc:  # noqa: BLE001 - a bug in one file must not stop the others
            log.exception("adding %s failed unexpectedly", task.path)
            yield TaskEvent(task, IngestFailed(task.path, task.name, DocumentError(
                f"{task.name} could not be added because of an unexpected error ({exc}). The details are in "
                "Hearth's log (Help › Open logs folder).")))

    def shutdown(self, timeout: float = JOIN_TIMEOUT_S) -> None:
        """Cancel every ingestion and join every thread (at quit, before the database closes)."""
        self.stopping.set()
        self.runner.shutdown(timeout)


def _outcome(name: str, on_done: Callable[[Any], None] | None,
             on_error: Callable[[BaseException], None] | None) -> Callable[[Any, BaseException | None], None]:
    """A JobRunner on_done that calls ``on_done(result)`` or ``on_error(exc)``."""

    def done(result: Any, error: BaseException | None) -> None:
        if error is None:
            if on_done is not None:
                on_done(result)
        elif on_error is not None:
            on_error(error)
        else:
            log.warning("document job %s failed: %s", name, error)

    return done


def _coalesced(events: list[Any]) -> list[Any]:
    """One tick's events with each file's progress cut to its newest (in the first one's place)."""
    pending: list[Any] = []
    latest: dict[int, int] = {}
    for ev in events:
        if isinstance(ev, TaskEvent) and not _is_final(ev.event):
            at = latest.get(ev.task.id)
            if at is not None:
                pending[at] = ev
                continue
            latest[ev.task.id] = len(pending)
        elif isinstance(ev, TaskEvent):
            latest.pop(ev.task.id, None)
        pending.append(ev)
    return pending


def _is_final(ev: IngestProgress) -> bool:
    return isinstance(ev, (IngestDone, IngestFailed, IngestCancelled))


def _inside(f: Path, folder: str) -> bool:
    try:
        f.relative_to(Path(folder).expanduser())
    except ValueError:
        return False
    return True
