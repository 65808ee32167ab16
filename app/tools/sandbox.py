"""A stateful python interpreter that nothing it runs can escape: Pyodide (CPython in
WebAssembly) in a Deno process that may read Pyodide and one scratch folder, write that
folder, and do nothing else.

Why this shape: WebAssembly gives the interpreter no system calls of its own; what
Pyodide can reach of the host goes through JavaScript, and Deno checks every such access
against the permissions it was started with (no network, no processes, no FFI, no
environment). The process is long-lived so variables and imports survive between calls,
as in the Jupyter kernel gpt-oss was trained with. Limits: a wall-clock timeout per call
(the process is killed: the state is lost, and the output says so), a memory cap (the
driver refuses to grow WebAssembly memory past it, so Python raises MemoryError; the
process's resident size is watched as a backstop), and an output cap.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from app.errors import HearthError

log = logging.getLogger(__name__)

ENV_PYODIDE_DIR = "HEARTH_PYODIDE_DIR"
DRIVER = Path(__file__).with_name("sandbox_driver.mjs")
# Deno's own heap (the driver, Pyodide's JS) besides the WebAssembly memory.
JS_HEAP_MB = 256
# Resident size allowed above the WebAssembly cap before the watchdog kills the process:
# Deno, V8, the compiled module and the JS heap (measured ≈ 150-250 MB at rest).
RSS_MARGIN_BYTES = 512 * 1024 * 1024
START_TIMEOUT_S = 60.0
MAX_LINE_BYTES = 4 * 1024 * 1024


class SandboxError(HearthError):
    """The python sandbox could not be started (Deno or Pyodide missing, or it failed to load)."""


@dataclass(frozen=True)
class SandboxLimits:
    timeout_s: float = 30.0
    memory_bytes: int = 512 * 1024 * 1024
    output_chars: int = 20_000


@dataclass(frozen=True)
class RunResult:
    output: str  # what the code printed (stdout and stderr, in order), plus the last expression's repr
    error: str | None  # the traceback, or why the call did not finish; None when it ran through
    duration_ms: float
    session_lost: bool = False  # the interpreter was killed or died: variables and imports are gone

    def text(self) -> str:
        """The tool message the model reads: output, then the error."""
        parts = [self.output.rstrip("\n")] if self.output else []
        if self.error:
            parts.append(self.error.rstrip("\n"))
        return "\n".join(parts) if parts else "(no output)"


def find_pyodide() -> Path:
    """Pyodide's folder: $HEARTH_PYODIDE_DIR, else <sys.prefix>/pyodide, else next to the bundle."""
    candidates: list[Path] = []
    env = os.environ.get(ENV_PYODIDE_DIR)
    if env:
        candidates.append(Path(env))
    candidates.append(Path(sys.prefix) / "pyodide")
    if getattr(sys, "frozen", False):  # a PyInstaller bundle ships it beside the executable
        candidates.append(Path(getattr(sys, "_MEIPASS", Path(sys.executable).parent)) / "pyodide")
        candidates.append(Path(sys.executable).parent / "pyodide")
    for c in candidates:
        if (c / "pyodide.mjs").is_file() and (c / "pyodide.asm.wasm").is_file():
            return c.resolve()
    tried = ", ".join(str(c) for c in candidates)
    raise SandboxError(
        f"Pyodide (the python tool's interpreter) is not installed; looked in {tried}. "
        "Run `python packaging/fetch_pyodide.py .venv/pyodide` (make run does it), "
        f"or point {ENV_PYODIDE_DIR} at an unpacked pyodide npm package."
    )


def find_deno() -> Path:
    """The Deno binary: beside a bundle's executable, else the one the `deno` PyPI package installs."""
    if getattr(sys, "frozen", False):
        exe = "deno.exe" if sys.platform == "win32" else "deno"
        for folder in (Path(sys.executable).parent, Path(getattr(sys, "_MEIPASS", Path(sys.executable).parent))):
            if (folder / exe).is_file():
                return folder / exe
    try:
        import deno  # the PyPI package; its binary sits in the environment's scripts folder
    except ImportError as exc:
        raise SandboxError("Deno is not installed; the python tool needs it (pip install deno).") from exc
    try:
        return Path(deno.find_deno_bin())
    except (OSError, RuntimeError, FileNotFoundError) as exc:
        raise SandboxError(f"the deno package is installed but its binary is missing ({exc}); "
                           "reinstall it with pip install --force-reinstall deno") from exc


class PythonSandbox:
    """One interpreter with its scratch folder. Not thread-safe: one caller at a time.

    ``run`` never raises for anything the code does; ``start`` raises SandboxError when
    the sandbox itself cannot run.
    """

    def __init__(
        self,
        scratch: Path,
        *,
        limits: SandboxLimits | None = None,
        cache_dir: Path | None = None,
        pyodide_dir: Path | None = None,
        deno_bin: Path | None = None,
    ) -> None:
        self.scratch = Path(scratch)
        self.limits = limits or SandboxLimits()
        self._pyodide_dir = pyodide_dir
        self._deno_bin = deno_bin
        # Deno's own caches (compiled code) and the interpreter snapshot; never the user's home.
        self.cache_dir = Path(cache_dir) if cache_dir is not None else self.scratch.parent / ".cache"
        self._deno_dir = self.cache_dir / "deno"
        self._proc: subprocess.Popen[bytes] | None = None
        self._lines: queue.Queue[bytes | None] = queue.Queue()
        self._next_id = 0
        self.load_ms: float | None = None

    # ---- lifecycle -----------------------------------------------------------------

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def snapshot_path(self) -> Path:
        """The memory snapshot of a freshly loaded interpreter, for this Pyodide build."""
        pyodide = self._pyodide_dir or find_pyodide()
        try:
            st = (pyodide / "pyodide.asm.wasm").stat()
            key = f"{st.st_size}-{st.st_mtime_ns}-{(pyodide / 'python_stdlib.zip').stat().st_size}"
        except OSError:
            key = "incomplete"  # start() then fails with Deno's own message
        return self.cache_dir / f"pyodide-{key}.snapshot"

    def command(self, *, make_snapshot: bool = False) -> list[str]:
        """The Deno command line: what the interpreter is allowed to touch, and nothing more.

        A session may read Pyodide, the snapshot and its scratch folder, and write only the
        scratch folder. The snapshot maker (no user code runs in it) may write only the cache.
        """
        pyodide = self._pyodide_dir or find_pyodide()
        deno = self._deno_bin or find_deno()
        scratch = str(self.scratch.resolve())
        snapshot = self.snapshot_path().resolve()
        if make_snapshot:
            cache = str(self.cache_dir.resolve())
            read, write = f"{pyodide},{cache}", cache
        else:
            read, write = f"{pyodide},{scratch},{snapshot}", scratch
        return [
            str(deno), "run",
            "--no-prompt",  # a permission not granted fails at once; never a question on a terminal
            "--no-config", "--no-lock", "--no-remote", "--no-npm",
            f"--allow-read={read}",
            f"--allow-write={write}",
            f"--v8-flags=--max-old-space-size={JS_HEAP_MB}",
            str(DRIVER),
            str(pyodide), scratch, str(self.limits.memory_bytes), str(self.limits.output_chars),
            str(snapshot), *(["make"] if make_snapshot else []),
        ]

    def ensure_snapshot(self) -> bool:
        """Make the interpreter snapshot once (seconds); later starts take a fraction of a second.

        Returns False when it could not be made (sessions then load Pyodide the slow way).
        """
        path = self.snapshot_path()
        if path.is_file():
            return True
        with _SNAPSHOT_LOCK:
            if path.is_file():
                return True
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            t0 = time.perf_counter()
            try:
                done = subprocess.run(
                    self.command(make_snapshot=True), stdin=subprocess.DEVNULL, capture_output=True,
                    env=self._env(), cwd=str(self.cache_dir), timeout=START_TIMEOUT_S * 2,
                    creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                log.warning("could not make the python sandbox snapshot: %s", exc)
                return False
            if done.returncode != 0 or not path.is_file():
                log.warning("could not make the python sandbox snapshot (exit %s): %s", done.returncode,
                            done.stderr.decode("utf-8", "replace")[-2000:])
                return False
            log.info("python sandbox snapshot made in %.0f ms: %s", (time.perf_counter() - t0) * 1000, path)
            return True

    def _env(self) -> dict[str, str]:
        # A bare environment: nothing of the user's (tokens, proxies) is there to leak, even if
        # a permission were ever granted by mistake.
        env = {"DENO_DIR": str(self._deno_dir), "DENO_NO_UPDATE_CHECK": "1", "NO_COLOR": "1",
               "DENO_NO_PROMPT": "1"}
        if sys.platform == "win32":
            env["SYSTEMROOT"] = os.environ.get("SYSTEMROOT", r"C:\Windows")
        return env

    def start(self) -> None:
        """Start the interpreter and wait until it is ready (well under a second from the
        snapshot; the very first start also makes the snapshot, a few seconds)."""
        if self.alive:
            return
        self.scratch.mkdir(parents=True, exist_ok=True)
        self._deno_dir.mkdir(parents=True, exist_ok=True)
        self.ensure_snapshot()
        try:
            self._spawn()
        except SandboxError:
            snap = self.snapshot_path()
            if not snap.is_file():
                raise
            # A damaged snapshot must not break the tool for good: drop it, load the slow way.
            log.warning("python sandbox did not start from %s; removing it and retrying", snap)
            snap.unlink(missing_ok=True)
            self._spawn()

    def _spawn(self) -> None:
        cmd = self.command()
        env = self._env()
        t0 = time.perf_counter()
        try:
            self._proc = subprocess.Popen(
                cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                env=env, cwd=str(self.scratch),
                creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),
            )
        except OSError as exc:
            raise SandboxError(f"could not start Deno for the python tool ({cmd[0]}): {exc}") from exc
        self._lines = queue.Queue()
        proc = self._proc
        threading.Thread(target=self._read_stdout, args=(proc, self._lines), daemon=True,
                         name="python-sandbox-out").start()
        threading.Thread(target=self._read_stderr, args=(proc,), daemon=True,
                         name="python-sandbox-err").start()
        msg = self._next_message(time.monotonic() + START_TIMEOUT_S)
        if not (isinstance(msg, dict) and msg.get("ready")):
            self._kill()
            why = "it did not get ready in time" if msg is None else f"it answered {msg!r}"
            raise SandboxError(f"the python sandbox failed to start: {why}. Hearth's log has Deno's messages.")
        self.load_ms = round((time.perf_counter() - t0) * 1000, 1)
        log.info("python sandbox ready in %.0f ms (Pyodide load %s ms, snapshot %s), scratch %s",
                 self.load_ms, msg.get("load_ms"), msg.get("snapshot"), self.scratch)

    def close(self) -> None:
        """End the interpreter; its variables are gone, the scratch folder stays."""
        self._kill()

    def reset(self) -> None:
        """A fresh interpreter (the scratch folder's files stay)."""
        self._kill()
        self.start()

    # ---- calls -----------------------------------------------------------------------

    def run(self, code: str, timeout: float | None = None) -> RunResult:
        """Run ``code`` in the session; starts the interpreter if needed (SandboxError if it cannot)."""
        timeout = self.limits.timeout_s if timeout is None else timeout
        lost_before = False
        if self._proc is not None and not self.alive:
            lost_before = True  # died since the last call (e.g. the code called Deno.exit)
            self._kill()
        self.start()
        assert self._proc is not None and self._proc.stdin is not None
        self._next_id += 1
        call_id = self._next_id
        t0 = time.perf_counter()
        try:
            self._proc.stdin.write((json.dumps({"id": call_id, "code": code}) + "\n").encode("utf-8"))
            self._proc.stdin.flush()
        except OSError:
            self._kill()
            return RunResult("", "The python session ended unexpectedly; its variables are lost. "
                                 "Run the code again to start a new session.", _ms(t0), True)
        deadline = time.monotonic() + timeout
        rss_limit = self.limits.memory_bytes + RSS_MARGIN_BYTES
        while True:
            msg = self._next_message(min(deadline, time.monotonic() + 0.1))
            if isinstance(msg, dict) and msg.get("id") == call_id:
                return self._result(msg, t0, lost_before)
            if msg is _EOF:
                self._kill()
                return RunResult("", "The python session ended (the interpreter exited or crashed); its "
                                     "variables and imports are lost. The next call starts a new session.",
                                 _ms(t0), True)
            if time.monotonic() >= deadline:
                self._kill()
                return RunResult("", f"Timed out after {timeout:g} seconds; the python session was stopped "
                                     "and its variables and imports are lost. The next call starts a new "
                                     "session.", _ms(t0), True)
            if self._rss() > rss_limit:
                self._kill()
                return RunResult("", f"The code used more than the {self.limits.memory_bytes // 2**20} MB "
                                     "memory limit; the python session was stopped and its variables are "
                                     "lost. The next call starts a new session.", _ms(t0), True)
            # Anything else (a line the code wrote to the driver's stdout, a stale answer) is ignored.

    def _result(self, msg: dict[str, Any], t0: float, lost_before: bool) -> RunResult:
        output = str(msg.get("output") or "")
        cut = int(msg.get("truncated") or 0)
        if cut:
            output += (f"\n[output truncated: {cut} more characters were cut; the limit is "
                       f"{self.limits.output_chars}. Print less, e.g. a summary or a slice.]")
        error = msg.get("error")
        if lost_before:
            note = "[The previous python session had ended; this ran in a new one: earlier variables are gone.]\n"
            output = note + output
        return RunResult(output, str(error) if error else None,
                         float(msg.get("duration_ms") or _ms(t0)), lost_before)

    # ---- plumbing --------------------------------------------------------------------

    def _next_message(self, deadline: float) -> Any:
        """The next JSON line from the driver; None at the deadline; _EOF when the pipe closed."""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            try:
                line = self._lines.get(timeout=remaining)
            except queue.Empty:
                return None
            if line is None:
                return _EOF
            try:
                return json.loads(line)
            except ValueError:
                log.debug("python sandbox: ignoring a line that is not JSON: %r", line[:200])

    @staticmethod
    def _read_stdout(proc: subprocess.Popen[bytes], lines: queue.Queue[bytes | None]) -> None:
        assert proc.stdout is not None
        # Bounded reads: a line is at most an answer (the output cap, JSON-escaped); longer is
        # something the code wrote to the pipe itself, and is dropped as not-JSON.
        try:
            while line := proc.stdout.readline(MAX_LINE_BYTES):
                lines.put(line)
        except (ValueError, OSError):
            pass  # closed while this thread read: the end, as for end of file
        lines.put(None)

    @staticmethod
    def _read_stderr(proc: subprocess.Popen[bytes], limit: int = 200) -> None:
        # Deno's own messages (load failures, permission errors from the driver) go to the log;
        # bounded, since code in the sandbox can write there too.
        assert proc.stderr is not None
        n = 0
        try:
            for line in proc.stderr:
                if n < limit:
                    log.warning("python sandbox (deno): %s", line.decode("utf-8", "replace").rstrip())
                n += 1
        except (ValueError, OSError):
            pass  # the session was closed (its pipes with it) while this thread read

    def _rss(self) -> int:
        if self._proc is None:
            return 0
        try:
            return int(psutil.Process(self._proc.pid).memory_info().rss)
        except (psutil.Error, OSError):
            return 0

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            log.warning("python sandbox process %d did not exit after kill", proc.pid)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass


_EOF = object()
_SNAPSHOT_LOCK = threading.Lock()


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000, 1)
