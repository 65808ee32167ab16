"""The app's side of the engine: starts the worker process and talks to it.

Qt-free and synchronous: calls are generators or blocking calls meant to run
off the GUI thread (the UI wraps them in a QThread). ``cancel()`` may be called
from any thread; it flips a shared byte that the worker checks between tokens
and inside prompt processing.
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing as mp
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from app.engine import protocol as P
from app.engine import worker as worker_module
from app.errors import ContextOverflow, EngineError, ModelLoadError, WorkerDied
from app.prompt import Segment

log = logging.getLogger(__name__)

_POLL_S = 0.05


def describe_exit(exitcode: int | None) -> str:
    """Why a worker process ended, in words."""
    if exitcode is None:
        return "it stopped responding"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        if -exitcode == getattr(signal, "SIGKILL", 9):
            return f"it was killed ({name}); the system may have run out of memory"
        if -exitcode == getattr(signal, "SIGSEGV", 11):
            return f"it crashed ({name})"
        return f"it was stopped by {name}"
    return f"it exited with code {exitcode}"


@contextmanager
def _main_module_hidden() -> Iterator[None]:
    """Start the worker without re-running the parent's main script in it.

    ``spawn`` normally re-imports ``__main__`` in the child. The worker needs none of
    it, and importing an arbitrary script there has crashed CUDA loads (seen on an
    H200) and breaks scripts that lack an ``if __name__ == "__main__"`` guard.
    """
    main = sys.modules.get("__main__")
    if main is None:
        yield
        return
    saved = {k: main.__dict__[k] for k in ("__spec__", "__file__") if k in main.__dict__}
    main.__dict__["__spec__"] = None
    main.__dict__.pop("__file__", None)
    try:
        yield
    finally:
        main.__dict__.pop("__spec__", None)
        main.__dict__.update(saved)


class EngineClient:
    """One worker process holding at most one model."""

    def __init__(self, log_level: int = logging.WARNING) -> None:
        self._ctx = mp.get_context("spawn")
        self._proc: Any = None
        self._conn: Any = None
        # {cancel, 0}: the worker checks byte 0; the trailing zero lets C's strlen read
        # it as the abort callback of prompt processing (see Engine._set_abort).
        self._cancel = self._ctx.Array("b", 2, lock=False)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()  # one request at a time on the pipe
        self._log_level = log_level
        self.model_info: dict[str, Any] | None = None
        self.last_exit: str | None = None
        self._owner: int | None = None  # the thread whose generate() holds the engine

    # ---- process ---------------------------------------------------------

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.is_alive()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def loaded(self) -> bool:
        return self.alive and self.model_info is not None

    def _start(self) -> None:
        parent, child = self._ctx.Pipe(duplex=True)
        self._cancel[0] = 0
        proc = self._ctx.Process(
            target=worker_module.main,
            args=(child, self._cancel, self._log_level),
            name="hearth-engine",
            daemon=True,
        )
        with _main_module_hidden():
            proc.start()
        child.close()
        self._proc, self._conn = proc, parent
        log.info("engine worker started (pid %s)", proc.pid)

    def _recv(self, deadline: float | None = None) -> Any:
        """Next message from the worker; raises WorkerDied if the process is gone."""
        conn = self._conn
        while True:
            try:
                if conn.poll(_POLL_S):
                    return conn.recv()
            except (EOFError, OSError, ConnectionResetError):
                pass
            else:
                if self._proc.is_alive():
                    if deadline is not None and time.monotonic() > deadline:
                        raise EngineError("The model process did not answer in time.")
                    continue
            self._proc.join(timeout=2)
            why = describe_exit(self._proc.exitcode)
            self.last_exit = why
            self.model_info = None
            self._conn = None
            raise WorkerDied(f"The model process stopped: {why}.")

    def _send(self, msg: Any) -> None:
        if not self.alive or self._conn is None:
            raise WorkerDied("The model process is not running. Load the model again.")
        try:
            self._conn.send(msg)
        except (BrokenPipeError, OSError) as exc:
            raise WorkerDied(f"The model process stopped: {describe_exit(self._proc.exitcode)}.") from exc

    # ---- model -----------------------------------------------------------

    def load(
        self,
        path: str,
        params: dict[str, Any],
        *,
        state_budget_bytes: int = 1 << 30,
        state_max_entries: int = 8,
        states_dir: str | None = None,
    ) -> Iterator[float]:
        """Load a model in a fresh worker, yielding progress fractions; sets ``model_info``.

        A new process per model: unloading or switching gives all memory back.
        """
        with self._lock:
            self._stop_process()
            self._start()
            self._send(P.LoadRequest(path, dict(params), state_budget_bytes, state_max_entries, states_dir))
            while True:
                try:
                    msg = self._recv()
                except WorkerDied as exc:
                    raise ModelLoadError(
                        f"{path}: the model process stopped while loading "
                        f"({self.last_exit}). Try a smaller context size or another model."
                    ) from exc
                if isinstance(msg, P.LoadProgress):
                    yield msg.fraction
                elif isinstance(msg, P.Loaded):
                    self.model_info = msg.info
                    return
                elif isinstance(msg, P.LoadFailed):
                    self._stop_process()
                    err = ModelLoadError(msg.message)
                    err.kind = msg.kind  # type: ignore[attr-defined]
                    err.log_tail = msg.log_tail  # type: ignore[attr-defined]
                    raise err

    def load_blocking(self, path: str, params: dict[str, Any], **kw: Any) -> dict[str, Any]:
        for _ in self.load(path, params, **kw):
            pass
        assert self.model_info is not None
        return self.model_info

    # ---- requests --------------------------------------------------------

    def generate(self, req_kwargs: dict[str, Any], segments: list[Segment]) -> Iterator[P.TokenPiece | P.GenerationDone]:
        """Stream a reply: yields TokenPiece, then one GenerationDone.

        Raises ContextOverflow, WorkerDied or EngineError. Cancellation ends with a
        GenerationDone whose ``stop_reason`` is "cancelled".
        """
        with self._lock:
            rid = next(self._ids)
            self._cancel[0] = 0
            self._owner = threading.get_ident()
            self._send(P.GenerateRequest(req_id=rid, segments=[(s.text, s.special) for s in segments], **req_kwargs))
            finished = False
            try:
                while True:
                    msg = self._recv()
                    if getattr(msg, "req_id", None) != rid:
                        continue
                    if isinstance(msg, P.TokenPiece):
                        yield msg
                    elif isinstance(msg, P.GenerationDone):
                        finished = True
                        yield msg
                        return
                    elif isinstance(msg, P.RequestFailed):
                        finished = True
                        if msg.kind == "context":
                            raise ContextOverflow(msg.message)
                        raise EngineError(msg.message)
            finally:
                self._owner = None
                if not finished and self.alive:
                    self._drain(rid)

    def _drain(self, rid: int) -> None:
        """A consumer left a stream early: stop it and read up to its end."""
        self._cancel[0] = 1
        deadline = time.monotonic() + 10
        try:
            while True:
                msg = self._recv(deadline)
                if getattr(msg, "req_id", None) == rid and isinstance(msg, (P.GenerationDone, P.RequestFailed)):
                    return
        except EngineError:
            log.warning("the model process did not finish a stopped request; restarting it")
            self._stop_process()

    def cancel(self) -> None:
        """Stop the running request (any thread); the worker checks between tokens."""
        self._cancel[0] = 1

    def cancel_if_running_for(self, thread_id: int) -> None:
        """Stop the running request only if ``thread_id`` started it.

        The window's chats and the local API server share one engine: a Stop pressed in
        the window while an API request holds the engine must not end that request.
        """
        if self._owner == thread_id:
            self._cancel[0] = 1

    def _call(self, make: Any) -> Any:
        with self._lock:
            rid = next(self._ids)
            self._send(make(rid))
            while True:
                msg = self._recv()
                if getattr(msg, "req_id", None) != rid:
                    continue
                if isinstance(msg, P.RequestFailed):
                    raise EngineError(msg.message)
                return msg

    def count_tokens(self, segments: list[Segment]) -> int:
        msg = self._call(lambda rid: P.CountRequest(rid, [(s.text, s.special) for s in segments]))
        return int(msg.n_tokens)

    def tokenize(self, segments: list[Segment]) -> list[int]:
        """The exact token ids the engine feeds the model for these segments."""
        msg = self._call(lambda rid: P.CountRequest(rid, [(s.text, s.special) for s in segments]))
        return list(msg.tokens)

    def embed(self, texts: list[str]) -> list[list[float]]:
        return self._call(lambda rid: P.EmbedRequest(rid, list(texts))).vectors

    def stats(self) -> dict[str, Any]:
        return dict(self._call(lambda rid: P.StatsRequest(rid)).stats)

    def save_states(self, directory: str, conv_keys: list[str], max_bytes_per_state: int) -> int:
        msg = self._call(lambda rid: P.SaveStatesRequest(rid, directory, max_bytes_per_state, tuple(conv_keys)))
        return int(msg.stats.get("saved", 0))

    # ---- shutdown --------------------------------------------------------

    def _stop_process(self, timeout: float = 3.0) -> None:
        proc, conn = self._proc, self._conn
        self.model_info = None
        if proc is None:
            return
        if proc.is_alive() and conn is not None:
            try:
                conn.send(P.ShutdownRequest())
            except (BrokenPipeError, OSError):
                pass
            proc.join(timeout)
        if proc.is_alive():
            proc.terminate()
            proc.join(1.0)
        if proc.is_alive():
            proc.kill()
            proc.join(1.0)
        if conn is not None:
            conn.close()
        self._proc, self._conn = None, None

    def unload(self) -> None:
        """End the worker: the model's memory goes back to the system."""
        self.cancel()
        with self._lock:
            self._stop_process()

    def close(self) -> None:
        self.cancel()
        # Don't wait on the lock forever if a generator was abandoned mid-stream.
        got = self._lock.acquire(timeout=5)
        try:
            self._stop_process()
        finally:
            if got:
                self._lock.release()
