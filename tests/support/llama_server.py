"""llama-cpp-python's own OpenAI-compatible server on 127.0.0.1, as a real remote for tests and benches."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunningServer:
    port: int
    model_id: str  # what GET /v1/models calls the model
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def llama_server(model: Path, log_dir: Path, *, n_ctx: int = 512, threads: int = 2,
                 timeout_s: float = 120.0) -> Iterator[RunningServer]:
    """Start ``python -m llama_cpp.server`` on a free loopback port; stop it afterwards."""
    port = free_port()
    log_path = log_dir / f"llama-server-{port}.log"
    log_file = open(log_path, "wb")  # noqa: SIM115 - closed below
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1",
         "--port", str(port), "--n_ctx", str(n_ctx), "--n_threads", str(threads)],
        stdout=log_file, stderr=subprocess.STDOUT, env=env,
    )
    try:
        deadline = time.monotonic() + timeout_s
        model_id = ""
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited ({proc.returncode}); see {log_path}:\n"
                                   + log_path.read_text(errors="replace")[-2000:])
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2) as r:
                    model_id = json.loads(r.read())["data"][0]["id"]
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"llama_cpp.server did not start in {timeout_s:g} s; see {log_path}")
                time.sleep(0.2)
        yield RunningServer(port, model_id, log_path)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log_file.close()
