"""``hearth serve`` as a real process on 127.0.0.1, for tests that talk to it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class HearthServe:
    proc: subprocess.Popen[str]
    base: str  # http://127.0.0.1:PORT (the API is under /v1)
    port: int

    @property
    def url(self) -> str:
        return self.base + "/v1"


@contextmanager
def hearth_serve(data: Path, *args: str) -> Iterator[HearthServe]:
    """Start ``hearth serve --data-dir DATA ARGS`` (give ``--port 0``), wait for its "listening on"
    line, and stop it with Ctrl+C afterwards (killed after 30 s; ``proc.returncode`` tells)."""
    proc = subprocess.Popen([sys.executable, "-m", "app", "serve", "--data-dir", str(data), *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline().strip()
        m = re.fullmatch(r"listening on (http://127\.0\.0\.1:(\d+))", first)
        assert m, (first, proc.stderr.read() if proc.poll() is not None else "")
        yield HearthServe(proc, m.group(1), int(m.group(2)))
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(30)
