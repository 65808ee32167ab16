"""The API server's queue in front of the engine: one generation at a time, bounded.

HTTP handlers run on an asyncio loop; the engine is a blocking generator that
serialises its callers (the window's chats share it). One thread takes jobs in
order, runs each through a ReplyDecoder and hands the events to the job's asyncio
queue. Jobs beyond ``max_queue`` are refused (429), never piled up; a job whose
client went away is dropped from the queue or, when running, cancelled through the
engine's shared flag (the worker checks it between tokens and during prompt
processing, so generation stops within a token's time).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from app.errors import ContextOverflow, EngineError, WorkerDied
from app.prompt import Segment
from app.server.errors import APIError
from app.server.reply import Failed, ReplyDecoder, ReplyEvent

log = logging.getLogger(__name__)


class QueueFull(Exception):
    """More requests are waiting than the server accepts."""


@dataclass(eq=False)
class Job:
    req: dict[str, Any]
    segments: list[Segment]
    decoder: ReplyDecoder
    loop: asyncio.AbstractEventLoop
    events: asyncio.Queue[list[ReplyEvent]] = field(default_factory=asyncio.Queue)
    state: str = "queued"  # queued | running | done | cancelled
    submitted_at: float = field(default_factory=time.monotonic)
    cancel_requested_at: float | None = None
    finished_at: float | None = None
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def cancel_latency_s(self) -> float | None:
        """From the cancel request to the engine's last word (None if never cancelled)."""
        if self.cancel_requested_at is None or self.finished_at is None:
            return None
        return max(0.0, self.finished_at - self.cancel_requested_at)


class EngineRunner:
    """Runs queued jobs on the engine, one at a time, on its own thread."""

    def __init__(self, engine: Any, *, max_queue: int = 32, history: int = 64) -> None:
        self.engine = engine
        self.max_queue = max_queue
        self._jobs: collections.deque[Job] = collections.deque()
        self._cond = threading.Condition()
        self._current: Job | None = None
        self._thread: threading.Thread | None = None
        self._closing = False
        self.finished: collections.deque[Job] = collections.deque(maxlen=history)  # recent jobs, newest last

    @property
    def pending(self) -> int:
        """Jobs waiting or running."""
        with self._cond:
            return len(self._jobs) + (1 if self._current is not None else 0)

    def submit(self, req: dict[str, Any], segments: list[Segment], decoder: ReplyDecoder,
               loop: asyncio.AbstractEventLoop) -> Job:
        job = Job(req, segments, decoder, loop)
        with self._cond:
            if self._closing:
                raise QueueFull("the server is shutting down")
            if len(self._jobs) + (1 if self._current is not None else 0) >= self.max_queue:
                raise QueueFull(f"{self.max_queue} requests are already queued")
            self._jobs.append(job)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="hearth-api-runner", daemon=True)
                self._thread.start()
            self._cond.notify()
        return job

    def cancel(self, job: Job) -> None:
        """Stop ``job`` (any thread): out of the queue if waiting, the engine stopped if running."""
        with self._cond:
            if job.state in ("done", "cancelled"):
                return
            if job.cancel_requested_at is None:
                job.cancel_requested_at = time.monotonic()
            if job.state == "queued":
                job.state = "cancelled"
                job.finished_at = time.monotonic()
                try:
                    self._jobs.remove(job)
                except ValueError:
                    pass
            elif self._current is job:
                # Only while this job holds the engine: a cancel must never hit the window's turn.
                self.engine.cancel()

    def close(self, timeout: float = 10.0) -> None:
        with self._cond:
            self._closing = True
            waiting = list(self._jobs)
            self._jobs.clear()
            current = self._current
            self._cond.notify_all()
        for job in waiting:
            job.state = "cancelled"
            self._push(job, [Failed(APIError(503, "The server is shutting down."))])
        if current is not None:
            self.cancel(current)
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("the API runner did not stop within %.0f s", timeout)
            self._thread = None

    # -- the thread -------------------------------------------------------------------

    def _push(self, job: Job, events: list[ReplyEvent]) -> None:
        if not events:
            return
        try:
            job.loop.call_soon_threadsafe(job.events.put_nowait, events)
        except RuntimeError:
            pass  # the server's loop is gone (shutting down): nobody is listening

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._jobs and not self._closing:
                    self._cond.wait()
                if self._closing:
                    return
                job = self._jobs.popleft()
                job.state = "running"
                self._current = job
            try:
                self._generate(job)
            except Exception as exc:  # noqa: BLE001 - one failed request must not stop the server
                log.exception("API request failed")
                self._push(job, [Failed(APIError(500, f"The request failed: {exc}"))])
            finally:
                with self._cond:
                    if self._current is job:
                        self._current = None
                    if job.state == "running":
                        job.state = "done"
                    if job.finished_at is None:
                        job.finished_at = time.monotonic()
                    self.finished.append(job)

    def _generate(self, job: Job) -> None:
        decoder = job.decoder
        pending = decoder.feed("")  # a forced call's prefill events, if any
        self._push(job, pending)
        try:
            for ev in self.engine.generate(job.req, job.segments):
                if hasattr(ev, "text"):
                    out = decoder.feed(ev.text)
                    self._push(job, out)
                    if decoder.stopped:
                        self.cancel(job)  # a stop string ended the answer: the rest isn't needed
                    continue
                # GenerationDone: the engine is free once the generator returns; from here
                # a cancel must not reach it (it may already run someone else's turn).
                with self._cond:
                    self._current = None
                    job.finished_at = time.monotonic()
                    job.stats = dict(ev.stats)
                self._push(job, decoder.finish(job.stats))
        except ContextOverflow as exc:
            self._push(job, [Failed(APIError(400, str(exc), "messages", "context_length_exceeded"))])
        except WorkerDied as exc:
            self._push(job, [Failed(APIError(503, f"{exc} The server needs the model loaded again."))])
        except EngineError as exc:
            self._push(job, [Failed(APIError(500, str(exc)))])
