"""Runs the core's long jobs (model load, chat turns) off the GUI thread.

Each job is a generator from app/ run on a plain Python thread; its events go
into a queue that a GUI-thread timer drains once per frame (~30 ms), so streamed
tokens reach the widgets in batches and the event loop never waits on inference.
"""

from __future__ import annotations

import gc
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from app.chat import ChatSession, Delta, ReplyFailed, ReplyFinished, ReplyStarted, SamplingSettings, ToolCallEvent
from app.context import AppContext
from app.engine.client import EngineClient
from app.errors import HearthError
from app.loading import LoadChoice, load_model

log = logging.getLogger(__name__)

FRAME_MS = 30


class _Job:
    def __init__(self, name: str, gen_factory: Callable[[], Iterator[Any]], out: "queue.Queue[Any]") -> None:
        self.name = name
        self._factory = gen_factory
        self._out = out
        self.thread = threading.Thread(target=self._run, name=f"hearth-{name}", daemon=True)

    def _run(self) -> None:
        try:
            for ev in self._factory():
                self._out.put((self, ev))
        except BaseException as exc:  # noqa: BLE001 - every failure reaches the GUI as an event
            log.exception("%s failed", self.name)
            self._out.put((self, exc))
        finally:
            self._out.put((self, _DONE))


_DONE = object()


class ChatController(QObject):
    """The GUI's handle on the engine and the chat core."""

    model_loading = Signal(str, float)  # path, fraction
    model_loaded = Signal(dict)
    model_failed = Signal(str, str)  # path, message
    model_unloaded = Signal(str)  # reason ("" when the user asked)
    reply_started = Signal(int, int)  # conversation id, message id
    reply_delta = Signal(int, str, str)  # message id, channel, text (batched per frame)
    tool_event = Signal(object)  # ToolCallEvent
    reply_finished = Signal(object, dict)  # Message, stats
    reply_failed = Signal(object, str, str)  # message id or None, error, kind
    busy_changed = Signal(bool)
    error = Signal(str)
    notice = Signal(str)  # something the user should know, not an error

    def __init__(self, ctx: AppContext, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.engine = EngineClient()
        self.model_path: str | None = None
        self.load_choice: Any = None
        self._queue: "queue.Queue[Any]" = queue.Queue()
        self._jobs: list[_Job] = []
        self._session: ChatSession | None = None
        self._timer = QTimer(self)
        self._timer.setInterval(FRAME_MS)
        self._timer.timeout.connect(self._drain)
        self._generating = False
        # extra_context_factory(conversation_id, tools) -> ChatSession.extra_context (documents)
        self.extra_context_factory: Callable[[int, Any], Any] | None = None
        # hardware_provider() -> HardwareInfo | None, so a load need not detect again
        self.hardware_provider: Callable[[], Any] | None = None
        self.tools_factory: Callable[[], Any] | None = None

    # ---- state -----------------------------------------------------------

    @property
    def generating(self) -> bool:
        return self._generating

    @property
    def loaded(self) -> bool:
        return self.engine.loaded

    @property
    def model_info(self) -> dict[str, Any] | None:
        return self.engine.model_info

    def _start(self, name: str, factory: Callable[[], Iterator[Any]]) -> _Job:
        job = _Job(name, factory, self._queue)
        self._jobs.append(job)
        job.thread.start()
        if not self._timer.isActive():
            self._timer.start()
        return job

    # ---- model -----------------------------------------------------------

    def load_model(self, path: str) -> None:
        if self._generating:
            self.stop()
        self.model_path = path
        self.model_loading.emit(path, 0.0)

        def run() -> Iterator[Any]:
            hw = self.hardware_provider() if self.hardware_provider else None
            for item in load_model(self.engine, path, self.ctx.settings, states_dir=str(self.ctx.paths.states_dir),
                                   hardware=hw):
                if isinstance(item, LoadChoice):
                    self.load_choice = item
                    if item.retry_note:
                        yield ("note", path, item.retry_note)
                else:
                    yield ("progress", path, item)
            yield ("loaded", path, self.engine.model_info)

        self._start("load", run)

    def unload(self) -> None:
        if self._generating:
            self.stop()
        path = self.model_path or ""

        def run() -> Iterator[Any]:
            self.engine.unload()
            yield ("unloaded", path, "")

        self._start("unload", run)

    # ---- chat ------------------------------------------------------------

    def _make_session(self, conversation_id: int) -> ChatSession:
        s = self.ctx.settings
        tools = self.tools_factory() if self.tools_factory else None
        extra = self.extra_context_factory(conversation_id, tools) if self.extra_context_factory else None
        self._session = ChatSession(
            self.ctx.store, self.engine, tools=tools, extra_context=extra,
            sampling=SamplingSettings(temperature=s.temperature, top_p=s.top_p, max_tokens=s.max_tokens,
                                      system_prompt=s.system_prompt),
        )
        return self._session

    def _run_turn(self, conversation_id: int, make: Callable[[ChatSession], Iterator[Any]]) -> bool:
        if self._generating:
            return False
        if not self.engine.loaded:
            self.error.emit("No model is loaded. Open a model first (File › Open model…).")
            return False
        session = self._make_session(conversation_id)
        self._generating = True
        self.set_streaming(True)
        self.busy_changed.emit(True)
        self._start("turn", lambda: make(session))
        return True

    def send(self, conversation_id: int, text: str) -> bool:
        return self._run_turn(conversation_id, lambda s: s.send(conversation_id, text))

    def regenerate(self, conversation_id: int) -> bool:
        return self._run_turn(conversation_id, lambda s: s.regenerate(conversation_id))

    def edit_and_resend(self, conversation_id: int, message_id: int, text: str) -> bool:
        return self._run_turn(conversation_id, lambda s: s.edit_and_resend(conversation_id, message_id, text))

    def stop(self) -> None:
        if self._session is not None:
            self._session.stop()
        else:
            self.engine.cancel()

    # ---- event pump (GUI thread) ----------------------------------------

    @staticmethod
    def set_streaming(on: bool) -> None:
        """While a reply streams, keep Python's full garbage collections off the GUI thread.

        A full collection walks every object the app holds (~40 ms here) and would show
        as a hitch in the stream; freezing the objects that already exist leaves the
        collector only the new ones. They are handed back when the reply ends.
        """
        if on:
            gc.freeze()
        else:
            gc.unfreeze()

    def _drain(self) -> None:
        deltas: dict[tuple[int, str], list[str]] = {}
        order: list[tuple[int, str]] = []

        def flush() -> None:
            for key in order:
                self.reply_delta.emit(key[0], key[1], "".join(deltas[key]))
            deltas.clear()
            order.clear()

        while True:
            try:
                job, ev = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(ev, Delta):
                key = (ev.message_id, ev.channel)
                if key not in deltas:
                    deltas[key] = []
                    order.append(key)
                deltas[key].append(ev.text)
                continue
            flush()
            self._dispatch(job, ev)
        flush()
        if not self._jobs and self._queue.empty():
            self._timer.stop()

    def _dispatch(self, job: _Job, ev: Any) -> None:
        if ev is _DONE:
            job.thread.join(timeout=1)
            if job in self._jobs:
                self._jobs.remove(job)
            if job.name == "turn":
                self._generating = False
                self._session = None
                self.set_streaming(False)
                self.busy_changed.emit(False)
            return
        if isinstance(ev, tuple):
            kind = ev[0]
            if kind == "progress":
                self.model_loading.emit(ev[1], float(ev[2]))
            elif kind == "loaded":
                self.ctx.settings.last_model = ev[1]
                try:
                    self.ctx.save_settings()
                except HearthError as exc:
                    log.warning("%s", exc)
                self.model_loaded.emit(dict(ev[2] or {}))
            elif kind == "unloaded":
                self.model_unloaded.emit(ev[2])
            elif kind == "note":
                self.notice.emit(ev[2])
            return
        if isinstance(ev, BaseException):
            if job.name == "load":
                msg = str(ev) if isinstance(ev, HearthError) else f"{self.model_path}: {ev}"
                self.model_failed.emit(self.model_path or "", msg)
            else:
                self.error.emit(str(ev) if isinstance(ev, HearthError) else f"Unexpected error: {ev}")
            return
        if isinstance(ev, ReplyStarted):
            self.reply_started.emit(ev.conversation_id, ev.message_id)
        elif isinstance(ev, ToolCallEvent):
            self.tool_event.emit(ev)
        elif isinstance(ev, ReplyFinished):
            self.reply_finished.emit(ev.message, ev.stats)
        elif isinstance(ev, ReplyFailed):
            self.reply_failed.emit(ev.message_id, ev.error, ev.kind)
            if ev.kind == "worker_died":
                self.model_unloaded.emit(ev.error)

    # ---- shutdown --------------------------------------------------------

    def shutdown(self, timeout: float = 10.0) -> None:
        """Cancel and join every job, then end the worker process."""
        self.stop()
        self.engine.cancel()
        for job in list(self._jobs):
            job.thread.join(timeout)
        self._jobs.clear()
        self._timer.stop()
        if self.ctx.settings.save_states_on_exit and self.engine.loaded:
            try:
                keys = [f"conv-{c.id}" for c in self.ctx.store.list(limit=8)]
                self.engine.save_states(str(self.ctx.paths.states_dir), keys, self.ctx.settings.saved_state_max_bytes)
            except HearthError as exc:
                log.warning("could not save conversation states: %s", exc)
        self.engine.close()

