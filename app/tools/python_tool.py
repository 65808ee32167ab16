"""gpt-oss's built-in ``python`` tool: one sandboxed, stateful interpreter per conversation.

The model was trained against a Jupyter-like kernel: variables and imports survive from
one call to the next. Each conversation gets its own PythonSandbox and scratch folder
(``<data dir>/python/<conversation id>``, mounted at /mnt/data); a session is dropped
when the conversation is closed, on "Reset python", or after ``idle_s`` without calls.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from app.harmony.tools import MAX_TOOL_OUTPUT_CHARS, BuiltinTool, ToolRegistry, ToolResult
from app.paths import AppPaths
from app.tools.sandbox import PythonSandbox, RunResult, SandboxError, SandboxLimits

log = logging.getLogger(__name__)

PYTHON_TOOL_NAME = "python"
DEFAULT_IDLE_S = 30 * 60.0
CLI_SESSION = "cli"  # the scratch folder of `hearth tools run python` (no conversation)


def python_root(paths: AppPaths) -> Path:
    """Where the scratch folders live: under the app's data dir, never elsewhere."""
    return paths.data_dir / "python"


def python_cache(paths: AppPaths) -> Path:
    return paths.cache_dir / "python-sandbox"


@dataclass
class _Session:
    sandbox: PythonSandbox
    lock: threading.Lock = field(default_factory=threading.Lock)
    last_used: float = field(default_factory=time.monotonic)


class PythonSessions:
    """The python sessions of this process, by conversation. Thread-safe.

    Calls for one conversation run one at a time; different conversations run in parallel.
    """

    def __init__(
        self,
        root: Path,
        cache_dir: Path,
        *,
        limits: SandboxLimits | None = None,
        idle_s: float = DEFAULT_IDLE_S,
        pyodide_dir: Path | None = None,
    ) -> None:
        self.root = Path(root)
        self.cache_dir = Path(cache_dir)
        self.limits = limits or SandboxLimits()
        self.idle_s = idle_s
        self._pyodide_dir = pyodide_dir
        self._sessions: dict[str, _Session] = {}
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._reaper: threading.Thread | None = None

    @classmethod
    def for_paths(cls, paths: AppPaths, **kwargs: object) -> "PythonSessions":
        return cls(python_root(paths), python_cache(paths), **kwargs)  # type: ignore[arg-type]

    @staticmethod
    def _key(conversation_id: int | str | None) -> str:
        return CLI_SESSION if conversation_id is None else str(conversation_id)

    def scratch_for(self, conversation_id: int | str | None) -> Path:
        return self.root / self._key(conversation_id)

    def copy_in(self, conversation_id: int | str | None, files: list[Path]) -> list[str]:
        """Copy files (a chat's attachments) into its scratch folder, where the model's code
        finds them (the working directory, /mnt/data). Returns the names they got there.

        Names are reduced to plain file names; a file that is gone is skipped.
        """
        import shutil

        from app.models.filenames import UnsafeFileNameError, local_file_name

        scratch = self.scratch_for(conversation_id)
        scratch.mkdir(parents=True, exist_ok=True)
        copied = []
        for f in files:
            try:
                name = local_file_name(Path(f).name)
            except UnsafeFileNameError:
                continue
            if not Path(f).is_file():
                continue
            shutil.copyfile(f, scratch / name)
            copied.append(name)
        return copied

    def _session(self, key: str) -> _Session:
        with self._lock:
            s = self._sessions.get(key)
            if s is None:
                s = _Session(PythonSandbox(self.root / key, limits=self.limits, cache_dir=self.cache_dir,
                                           pyodide_dir=self._pyodide_dir))
                self._sessions[key] = s
                self._start_reaper()
            return s

    # ---- what callers use ------------------------------------------------------------

    def run(self, conversation_id: int | str | None, code: str, timeout: float | None = None) -> RunResult:
        """Run code in the conversation's session (started if needed). SandboxError if it cannot run."""
        s = self._session(self._key(conversation_id))
        with s.lock:
            s.last_used = time.monotonic()
            try:
                return s.sandbox.run(code, timeout)
            finally:
                s.last_used = time.monotonic()

    def prewarm(self, conversation_id: int | str | None) -> None:
        """Start the conversation's interpreter in the background, so the first call is quick."""
        s = self._session(self._key(conversation_id))

        def warm() -> None:
            with s.lock:
                try:
                    s.sandbox.start()
                except SandboxError as exc:
                    log.warning("python tool: could not pre-start the sandbox: %s", exc)

        threading.Thread(target=warm, daemon=True, name="python-sandbox-warm").start()

    def reset(self, conversation_id: int | str | None) -> None:
        """"Reset python": the conversation's variables and imports are dropped (files stay)."""
        self.close(conversation_id)

    def close(self, conversation_id: int | str | None) -> None:
        """The conversation was closed (or reset): end its interpreter."""
        with self._lock:
            s = self._sessions.pop(self._key(conversation_id), None)
        if s is not None:
            with s.lock:
                s.sandbox.close()

    def active(self) -> list[str]:
        with self._lock:
            return [k for k, s in self._sessions.items() if s.sandbox.alive]

    def close_all(self) -> None:
        self._closed.set()
        with self._lock:
            sessions, self._sessions = list(self._sessions.values()), {}
        for s in sessions:
            s.sandbox.close()
        reaper = self._reaper
        if reaper is not None and reaper is not threading.current_thread():
            reaper.join(timeout=5)
        self._reaper = None

    def drop_idle(self) -> list[str]:
        """End sessions unused for ``idle_s``; returns their keys."""
        now = time.monotonic()
        dropped = []
        with self._lock:
            idle = [(k, s) for k, s in self._sessions.items() if now - s.last_used >= self.idle_s]
        for key, s in idle:
            if not s.lock.acquire(blocking=False):
                continue  # running a call right now: not idle
            try:
                if time.monotonic() - s.last_used < self.idle_s:
                    continue
                with self._lock:
                    if self._sessions.get(key) is s:
                        del self._sessions[key]
                s.sandbox.close()
                dropped.append(key)
            finally:
                s.lock.release()
        if dropped:
            log.info("python tool: dropped idle sessions %s", ", ".join(dropped))
        return dropped

    def _start_reaper(self) -> None:
        if self._reaper is not None or self._closed.is_set():
            return

        def reap() -> None:
            interval = max(0.05, min(30.0, self.idle_s / 4))
            while not self._closed.wait(interval):
                self.drop_idle()

        self._reaper = threading.Thread(target=reap, daemon=True, name="python-sandbox-reaper")
        self._reaper.start()

    # ---- the tool the model calls ------------------------------------------------------

    def call(self, code: str, conversation_id: int | None) -> ToolResult:
        """One model call: the output it reads (errors included), never an exception."""
        if not code.strip():
            return ToolResult(False, "Error: the python call had no code. Send the code as the message.", 0.0)
        t0 = time.perf_counter()
        try:
            res = self.run(conversation_id, code)
        except SandboxError as exc:
            return ToolResult(False, f"Error: the python tool is not available: {exc}",
                              round((time.perf_counter() - t0) * 1000, 1))
        text = res.text()
        if len(text) > MAX_TOOL_OUTPUT_CHARS:
            cut = len(text) - MAX_TOOL_OUTPUT_CHARS
            text = text[:MAX_TOOL_OUTPUT_CHARS] + f"\n[... {cut} more characters cut]"
        return ToolResult(res.error is None, text, res.duration_ms)

    def builtin(self) -> BuiltinTool:
        """The tool object for ToolRegistry.register_builtin."""
        return BuiltinTool(PYTHON_TOOL_NAME, self.call)


def add_python_tool(registry: ToolRegistry, sessions: PythonSessions) -> ToolRegistry:
    """Offer gpt-oss's python tool through ``registry`` (declared in the system message)."""
    registry.register_builtin(sessions.builtin())
    return registry
