"""The GUI's handle on the engine and the chat core: model load, chat turns, stop.

Loads and turns are generators from app/ run through ui/widgets/jobs.JobRunner,
drained once per frame (~30 ms): streamed tokens reach the widgets in batches,
one signal per message and channel per frame, and the event loop never waits on
inference.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable, Iterator
from typing import Any

from PySide6.QtCore import QObject, Signal

from app.chat import (
    ChatSession, ContextTrimmed, Delta, ReplyFailed, ReplyFinished, ReplyStarted, SamplingSettings, Summarizing,
    ToolCallEvent,
)
from app.context import AppContext
from app.documents.index import estimate_tokens
from app.engine.client import EngineClient
from app.errors import HearthError, SearchIndexDamaged
from app.loading import LoadChoice, load_model
from app.servers import ServerStore, parse_remote_ref
from ui.widgets.jobs import Job, JobRunner

log = logging.getLogger(__name__)

FRAME_MS = 30
RECENT_MODELS = 8


def remember_model(settings: Any, path: str) -> None:
    """Put ``path`` first in the recently opened models (Settings.extra["recent_models"])."""
    recent = [p for p in settings.extra.get("recent_models", []) if isinstance(p, str) and p != path]
    settings.extra["recent_models"] = [path, *recent][:RECENT_MODELS]


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
    stopping = Signal()  # Stop (or quit) was asked: questions waiting on the user are answered "no"
    tokens_streamed = Signal(int)  # tokens generated in the last frame (the context meter follows)
    index_damaged = Signal(str)  # the history's search index needs a rebuild (the message says so)
    servers_changed = Signal()  # a remote server was added, removed or listed its models anew
    error = Signal(str)
    notice = Signal(str)  # something the user should know, not an error
    context_trimmed = Signal(object)  # the context marker (Message): earlier messages left the model's view
    summarizing = Signal(int, int)  # conversation id, messages the model is summarising before its reply
    message_refused = Signal(int, str, str)  # conversation id, the text (neither sent nor saved), why

    def __init__(self, ctx: AppContext, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.engine = EngineClient()
        self.model_path: str | None = None
        self.load_choice: Any = None
        self.jobs = JobRunner(self, tick_ms=FRAME_MS, name="chat")
        self._session: ChatSession | None = None
        self._generating = False
        # extra_context_factory(conversation_id, tools) -> ChatSession.extra_context (documents)
        self.extra_context_factory: Callable[[int, Any], Any] | None = None
        # hardware_provider() -> HardwareInfo | None, so a load need not detect again
        self.hardware_provider: Callable[[], Any] | None = None
        self.tools_factory: Callable[[], Any] | None = None
        # A remote model replaces the local worker as ``engine`` while it is chosen.
        self._local_engine = self.engine
        self.servers = ServerStore(ctx.paths.config_dir, is_offline=lambda: bool(ctx.settings.offline))
        # confirm_send(host) -> bool: asked once, before the first message goes to a new server
        self.confirm_send: Callable[[str], bool] | None = None
        # About how many tokens each conversation's attached documents took in its last turn (the meter).
        self.document_tokens: dict[int, int] = {}

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

    def _start(self, name: str, factory: Callable[[], Iterator[Any]]) -> Job:
        return self.jobs.stream(name, lambda _cancel: factory(), on_batch=self._on_batch,
                                on_done=lambda _last, error: self._on_job_done(name, error))

    # ---- model -----------------------------------------------------------

    def load_model(self, path: str) -> None:
        if self._generating:
            self.stop()
        self.model_path = path
        self.model_loading.emit(path, 0.0)
        remote = parse_remote_ref(path)
        if remote is not None:
            self._start("load", lambda: self._load_remote(path, *remote))
            return

        def run() -> Iterator[Any]:
            self._use_engine(self._local_engine)
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

    def _use_engine(self, engine: Any) -> None:
        """Make ``engine`` the one turns go to; the previous one gives its memory or connection back."""
        previous, self.engine = self.engine, engine
        if previous is not engine:
            if previous is self._local_engine:
                previous.unload()
            else:
                previous.close()

    def _load_remote(self, ref: str, url: str, model: str) -> Iterator[Any]:
        """"Loading" a remote model: connect, check the server has it, then use it."""
        engine = self.servers.engine(url, model)
        try:
            engine.test_connection()
        except BaseException:
            engine.close()
            raise
        self._use_engine(engine)
        yield ("loaded", ref, dict(engine.model_info or {}, path=ref))

    def _approved_to_send(self) -> bool:
        """The first message to a server that is not on this computer asks once."""
        url, host = self.engine.base_url, self.engine.host
        if not self.servers.needs_approval(url):
            return True
        if self.confirm_send is None or not self.confirm_send(host):
            self.notice.emit(f"Nothing was sent to {host}.")
            return False
        entry = self.servers.find(url) or self.servers.add(host.replace(":", "-"), url)
        self.servers.approve(entry.name)
        return True

    def unload(self) -> None:
        if self._generating:
            self.stop()
        path = self.model_path or ""

        def run() -> Iterator[Any]:
            self.engine.unload()
            yield ("unloaded", path, "")

        self._start("unload", run)

    # ---- chat ------------------------------------------------------------

    def _new_session(self, tools: Any, extra: Any) -> ChatSession:
        s = self.ctx.settings
        return ChatSession(
            self.ctx.store, self.engine, tools=tools, extra_context=extra,
            sampling=SamplingSettings(temperature=s.temperature, top_p=s.top_p, max_tokens=s.max_tokens,
                                      system_prompt=s.system_prompt),
        )

    def _make_session(self, conversation_id: int) -> ChatSession:
        tools = self.tools_factory() if self.tools_factory else None
        extra = self.extra_context_factory(conversation_id, tools) if self.extra_context_factory else None
        if extra is not None:
            extra = _MeasuredContext(extra, self.document_tokens)
        self._session = self._new_session(tools, extra)
        return self._session

    def count_base(self, conversation_id: int | None, effort: str,
                   on_done: Callable[[int | None], None]) -> None:
        """What the model reads before the chat's first message (``ChatSession.base_tokens``), counted
        off the GUI thread; ``on_done(tokens or None)`` runs on it. Nothing while a reply runs."""
        if self._generating or not self.engine.loaded or getattr(self.engine, "is_remote", False):
            return
        # Its own session: Stop and the documents hook act on the turn's (self._session).
        session = self._new_session(self.tools_factory() if self.tools_factory else None, None)

        def done(n: int | None, error: BaseException | None) -> None:
            if error is not None:
                log.debug("counting the chat's instructions failed: %s", error)
                return
            on_done(n)

        self.jobs.call("count", lambda _cancel: session.base_tokens(conversation_id, effort), done)

    def _run_turn(self, conversation_id: int, make: Callable[[ChatSession], Iterator[Any]]) -> bool:
        if self._generating:
            return False
        if not self.engine.loaded:
            self.error.emit("No model is loaded. Choose one in the model menu at the top (or File › Open model…).")
            return False
        if getattr(self.engine, "is_remote", False) and not self._approved_to_send():
            return False
        session = self._make_session(conversation_id)
        self._generating = True
        self.set_streaming(True)
        self.busy_changed.emit(True)
        self._start("turn", lambda: make(session))
        return True

    def send(self, conversation_id: int, text: str) -> bool:
        return self._run_turn(conversation_id, lambda s: self._send_turn(s, conversation_id, text))

    @staticmethod
    def _send_turn(session: ChatSession, conversation_id: int, text: str) -> Iterator[Any]:
        """``session.send``, telling a message refused before anything was stored (too long on its
        own: the composer gives the text back) from a turn that failed after its message was saved."""
        before = session.store.message_count(conversation_id)
        for ev in session.send(conversation_id, text):
            if (isinstance(ev, ReplyFailed) and ev.kind == "context" and ev.message_id is None
                    and session.store.message_count(conversation_id) == before):
                yield ("refused", conversation_id, text, ev.error)
            yield ev

    def regenerate(self, conversation_id: int) -> bool:
        return self._run_turn(conversation_id, lambda s: s.regenerate(conversation_id))

    def edit_and_resend(self, conversation_id: int, message_id: int, text: str) -> bool:
        return self._run_turn(conversation_id, lambda s: s.edit_and_resend(conversation_id, message_id, text))

    def stop(self) -> None:
        self.stopping.emit()
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

    def _on_batch(self, events: list[Any]) -> None:
        """One frame's events of a job: text deltas joined per message and channel."""
        deltas: dict[tuple[int, str], list[str]] = {}
        tokens = 0

        def flush() -> None:
            nonlocal tokens
            for (message_id, channel), parts in deltas.items():
                self.reply_delta.emit(message_id, channel, "".join(parts))
            deltas.clear()
            if tokens:
                self.tokens_streamed.emit(tokens)
                tokens = 0

        for ev in events:
            if isinstance(ev, Delta):
                deltas.setdefault((ev.message_id, ev.channel), []).append(ev.text)
                tokens += ev.tokens
                continue
            flush()
            self._dispatch(ev)
        flush()

    def _on_job_done(self, name: str, error: BaseException | None) -> None:
        if error is not None:
            if name == "load":
                msg = str(error) if isinstance(error, HearthError) else f"{self.model_path}: {error}"
                self.model_failed.emit(self.model_path or "", msg)
            elif isinstance(error, SearchIndexDamaged):
                self.index_damaged.emit(str(error))
            else:
                self.error.emit(str(error) if isinstance(error, HearthError) else f"Unexpected error: {error}")
        if name == "turn":
            self._generating = False
            self._session = None
            self.set_streaming(False)
            self.busy_changed.emit(False)

    def _dispatch(self, ev: Any) -> None:
        if isinstance(ev, tuple):
            kind = ev[0]
            if kind == "progress":
                self.model_loading.emit(ev[1], float(ev[2]))
            elif kind == "loaded":
                self.ctx.settings.last_model = ev[1]
                remember_model(self.ctx.settings, ev[1])
                try:
                    self.ctx.save_settings()
                except HearthError as exc:
                    log.warning("%s", exc)
                self.model_loaded.emit(dict(ev[2] or {}))
            elif kind == "unloaded":
                self.model_unloaded.emit(ev[2])
            elif kind == "note":
                self.notice.emit(ev[2])
            elif kind == "refused":
                self.message_refused.emit(ev[1], ev[2], ev[3])
            return
        if isinstance(ev, ReplyStarted):
            self.reply_started.emit(ev.conversation_id, ev.message_id)
        elif isinstance(ev, ToolCallEvent):
            self.tool_event.emit(ev)
        elif isinstance(ev, ContextTrimmed):
            self.context_trimmed.emit(ev.marker)
        elif isinstance(ev, Summarizing):
            self.summarizing.emit(ev.conversation_id, ev.messages)
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
        self.jobs.shutdown(timeout)
        if self.ctx.settings.save_states_on_exit and self.engine.loaded and self.engine is self._local_engine:
            try:
                keys = [f"conv-{c.id}" for c in self.ctx.store.list(limit=8)]
                self.engine.save_states(str(self.ctx.paths.states_dir), keys, self.ctx.settings.saved_state_max_bytes)
            except HearthError as exc:
                log.warning("could not save conversation states: %s", exc)
        self.engine.close()
        self._local_engine.close()



class _MeasuredContext:
    """ChatSession's ``extra_context`` (documents), noting about how many tokens it put in the prompt.

    Runs on the turn's thread; the meter reads the number once the reply is in.
    Everything else (``last_mode``) is the wrapped object's.
    """

    def __init__(self, inner: Any, sink: dict[int, int]) -> None:
        self._inner = inner
        self._sink = sink

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def __call__(self, conversation_id: int, question: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        messages, citations = self._inner(conversation_id, question)
        self._sink[conversation_id] = sum(estimate_tokens(str(m.get("content") or "")) for m in messages)
        return messages, citations
