"""The one way ui/ runs work off the GUI thread.

A job is a plain function or a generator from app/, run on a Python thread with a
cancel token. What it yields or returns goes into a queue that a GUI-thread timer
drains once per tick, so handlers always run on the GUI thread, progress reaches
the widgets at a calm rate, and no worker ever touches a widget (Anki's
CollectionOp, napari's GeneratorWorker).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, QTimer

from app.errors import HearthError
from app.models import CancelToken

log = logging.getLogger(__name__)

EventFn = Callable[[Any], None]
BatchFn = Callable[[list[Any]], None]
DoneFn = Callable[[Any, "BaseException | None"], None]


@dataclass(eq=False)
class Job:
    """One background job; ``cancel`` is handed to the work so it can stop early."""

    name: str
    on_event: EventFn | None = None
    on_batch: BatchFn | None = None
    on_done: DoneFn | None = None
    cancel: CancelToken = field(default_factory=CancelToken)
    thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()


class JobRunner(QObject):
    """Runs jobs on threads and hands their events and results back on the GUI thread."""

    def __init__(self, parent: QObject | None = None, *, tick_ms: int = 100, name: str = "jobs") -> None:
        super().__init__(parent)
        self.name = name
        self._events: queue.Queue[tuple[Any, ...]] = queue.Queue()
        self._jobs: list[Job] = []
        self.closed = False
        self._timer = QTimer(self)
        self._timer.setInterval(tick_ms)
        self._timer.timeout.connect(self._drain)

    # ---- starting --------------------------------------------------------

    def call(self, name: str, fn: Callable[[CancelToken], Any], on_done: DoneFn) -> Job:
        """Run ``fn(cancel)``; ``on_done(result, error)`` runs on the GUI thread."""
        return self._start(Job(name, on_done=on_done), lambda job: fn(job.cancel), streaming=False)

    def stream(self, name: str, gen: Callable[[CancelToken], Iterator[Any]], *, on_event: EventFn | None = None,
               on_batch: BatchFn | None = None, on_done: DoneFn | None = None) -> Job:
        """Iterate ``gen(cancel)``: each item goes to ``on_event`` (or, per tick, all of them to
        ``on_batch``), then ``on_done(last item, error)``."""
        return self._start(Job(name, on_event, on_batch, on_done), lambda job: gen(job.cancel), streaming=True)

    def _start(self, job: Job, body: Callable[[Job], Any], *, streaming: bool) -> Job:
        if self.closed:
            log.debug("%s closing: %s not started", self.name, job.name)
            return job

        def run() -> None:
            try:
                if streaming:
                    last = None
                    for item in body(job):
                        last = item
                        self._events.put(("event", job, item))
                    result = last
                else:
                    result = body(job)
            except BaseException as exc:  # noqa: BLE001 - every failure reaches the GUI thread
                if not isinstance(exc, (HearthError, OSError)):
                    log.exception("%s: job %s failed", self.name, job.name)
                self._events.put(("done", job, None, exc))
            else:
                self._events.put(("done", job, result, None))

        job.thread = threading.Thread(target=run, name=f"hearth-{self.name}-{job.name}", daemon=True)
        self._jobs.append(job)
        job.thread.start()
        self.kick()
        return job

    def post(self, kind: str, *payload: Any) -> None:
        """Hand an event from any thread to ``on_posted`` on the GUI thread (subclasses)."""
        self._events.put((kind, *payload))
        # the timer cannot be started from another thread; kick() runs on the next tick anyway

    def busy(self, name: str | None = None) -> bool:
        return any(name is None or j.name == name for j in self._jobs)

    @property
    def jobs(self) -> list[Job]:
        return list(self._jobs)

    # ---- GUI-thread pump -------------------------------------------------

    def kick(self) -> None:
        if not self._timer.isActive() and not self.closed:
            self._timer.start()

    def idle(self) -> bool:
        """Whether the pump may stop (subclasses with work of their own say so)."""
        return not self._jobs

    def on_posted(self, item: tuple[Any, ...]) -> None:  # noqa: B027 - optional hook
        """Events put with ``post`` arrive here, on the GUI thread."""

    def end_of_tick(self) -> None:  # noqa: B027 - optional hook
        """Called after each drain (subclasses flush coalesced state here)."""

    def drain(self) -> None:
        """Deliver everything queued so far (tests and shutdown call it directly)."""
        self._drain()

    def _drain(self) -> None:
        batches: dict[Job, list[Any]] = {}

        def flush() -> None:
            for job, items in batches.items():
                if job.on_batch is not None and not self.closed:
                    self._safely(job.on_batch, items)
            batches.clear()

        while True:
            try:
                item = self._events.get_nowait()
            except queue.Empty:
                break
            kind = item[0]
            if kind == "event":
                job = item[1]
                if job.on_batch is not None:
                    batches.setdefault(job, []).append(item[2])
                elif job.on_event is not None and not self.closed:
                    self._safely(job.on_event, item[2])
            elif kind == "done":
                flush()  # a job's events always arrive before its end
                job = item[1]
                if job.thread is not None:
                    job.thread.join(1.0)
                if job in self._jobs:
                    self._jobs.remove(job)
                if job.on_done is not None and not self.closed:
                    self._safely(job.on_done, item[2], item[3])
            else:
                self._safely(self.on_posted, item)
        flush()
        self.end_of_tick()
        if (self.idle() and self._events.empty()) or self.closed:
            self._timer.stop()

    def _safely(self, fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except Exception:  # noqa: BLE001 - a bug in one handler must not stop the pump
            log.exception("%s: handler failed", self.name)

    # ---- shutdown --------------------------------------------------------

    def cancel_all(self) -> None:
        for job in self._jobs:
            job.cancel.cancel()

    def shutdown(self, timeout: float = 10.0) -> None:
        """Cancel every job and join its thread; nothing is delivered afterwards."""
        if self.closed:
            return
        self.closed = True
        self._timer.stop()
        self.cancel_all()
        for job in list(self._jobs):
            if job.thread is not None:
                job.thread.join(timeout)
                if job.thread.is_alive():
                    log.warning("%s: job %s did not finish in %.0f s", self.name, job.name, timeout)
        self._jobs.clear()
