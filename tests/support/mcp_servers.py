"""Real MCP servers for tests: the test server over streamable HTTP on 127.0.0.1, mcp-server-time over stdio."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TIME_SERVER = f"{Path(sys.executable).parent / 'mcp-server-time'} --local-timezone UTC"
TEST_SERVER_STDIO = f"{sys.executable} -m tests.support.mcp_test_server --stdio"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def http_test_server(timeout: float = 20.0) -> Iterator[str]:
    """Start tests/support/mcp_test_server.py over streamable HTTP; yield its URL."""
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tests.support.mcp_test_server", "--port", str(port)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the MCP test server did not start") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
