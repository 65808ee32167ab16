"""Escape attempts, through the path the model's calls take (ToolRegistry.call("python", …)).

Each attempt must fail inside the tool's output (the model reads why), leave the host
untouched, and the next call must work. Both doors are tried: Python's own APIs (which in
WebAssembly reach only a virtual filesystem) and Pyodide's JavaScript bridge (``import js``:
Deno's APIs, which Deno checks against the process's permissions).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.harmony.tools import ToolRegistry, default_registry
from app.paths import resolve_paths
from app.tools.python_tool import PythonSessions, add_python_tool
from tests.app.tools.sandbox_support import shared_cache, small_limits

CONV = 11
SECRET = "hearth-secret-7f3a"


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_cache(tmp_path_factory)


@pytest.fixture
def sessions(tmp_path: Path, cache: Path) -> Iterator[PythonSessions]:
    s = PythonSessions(resolve_paths().data_dir / "python", cache, limits=small_limits(timeout_s=2.5))
    yield s
    s.close_all()


@pytest.fixture
def tools(sessions: PythonSessions) -> ToolRegistry:
    return add_python_tool(default_registry(), sessions)


def py(tools: ToolRegistry, code: str) -> str:
    return tools.call("python", code, conversation_id=CONV).output


def still_works(tools: ToolRegistry) -> None:
    res = tools.call("python", "print(sum(range(10)))", conversation_id=CONV)
    assert res.ok and "45" in res.output, res.output


def test_no_network_socket_or_fetch(tools: ToolRegistry) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.5)
    port = server.getsockname()[1]
    try:
        out = py(tools, f"import socket\ns = socket.socket()\ns.connect(('127.0.0.1', {port}))")
        assert "OSError" in out and "unreachable" in out
        out = py(tools, f"import js\nawait js.fetch('http://127.0.0.1:{port}/')")
        assert "Requires net access" in out
        with pytest.raises(socket.timeout):
            server.accept()  # nothing ever connected
    finally:
        server.close()
    still_works(tools)


def test_cannot_read_home_or_the_hearth_database(tools: ToolRegistry) -> None:
    db = resolve_paths().db_path
    db.parent.mkdir(parents=True, exist_ok=True)
    db.write_text(SECRET, encoding="utf-8")
    home = Path.home()
    for target in (db, home / ".bashrc", home):
        out = py(tools, f"print(open({str(target)!r}).read())")
        assert SECRET not in out and ("FileNotFoundError" in out or "IsADirectoryError" in out), out
        out = py(tools, f"import js\nprint(js.Deno.readTextFileSync({str(target)!r}))")
        assert SECRET not in out and "Requires read access" in out, out
    out = py(tools, f"import os\nprint(os.listdir('/mnt/data/../../'), os.path.exists({str(db)!r}))")
    assert "False" in out and SECRET not in out
    still_works(tools)


def test_cannot_write_outside_the_scratch_folder(tools: ToolRegistry, sessions: PythonSessions,
                                                 tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    out = py(tools, f"open({str(outside)!r}, 'w').write('x')")
    assert "FileNotFoundError" in out
    out = py(tools, f"import js\njs.Deno.writeTextFileSync({str(outside)!r}, 'x')")
    assert "Requires write access" in out
    out = py(tools, "open('/mnt/data/../../escape.txt', 'w').write('x')\nimport os\nprint(os.path.abspath("
                    "'/mnt/data/../../escape.txt'))")
    assert "/escape.txt" in out  # inside the interpreter's own virtual filesystem
    assert not outside.exists()
    assert not (sessions.scratch_for(CONV).parent.parent / "escape.txt").exists()
    still_works(tools)


def test_cannot_start_processes(tools: ToolRegistry, tmp_path: Path) -> None:
    marker = tmp_path / "ran.txt"
    out = py(tools, f"import subprocess\nsubprocess.run(['touch', {str(marker)!r}])")
    assert "does not support processes" in out
    out = py(tools, f"import os\nos.system('touch {marker}')")
    assert "cannot start processes" in out
    out = py(tools, "import js\nfrom pyodide.ffi import to_js\n"
                    f"js.Deno.Command.new('/usr/bin/touch', to_js({{'args': [{str(marker)!r}]}}, "
                    "dict_converter=js.Object.fromEntries)).outputSync()")
    assert "Requires run access" in out
    assert not marker.exists()
    still_works(tools)


def test_no_ctypes_into_the_host(tools: ToolRegistry, tmp_path: Path) -> None:
    marker = tmp_path / "ctypes.txt"
    out = py(tools, "import ctypes\nctypes.CDLL('libc.so.6')")
    assert "OSError" in out
    # ctypes reaches only the WebAssembly libc; its system() asks Deno for a process, Deno
    # refuses, and Pyodide gives up: the session ends (the output says so), nothing runs.
    out = py(tools, f"import ctypes\nprint('rc', ctypes.CDLL(None).system(b'touch {marker}'))")
    assert "session ended" in out or "rc -1" in out, out
    out = py(tools, "import js\njs.Deno.dlopen('/lib/x86_64-linux-gnu/libc.so.6', js.Object.new())")
    assert "Requires ffi access" in out
    assert not marker.exists()
    still_works(tools)


def test_no_fork(tools: ToolRegistry) -> None:
    out = py(tools, "import os\nos.fork()")
    assert "OSError" in out
    still_works(tools)


def test_no_environment(tools: ToolRegistry, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEARTH_TEST_SECRET", SECRET)
    out = py(tools, "import os, js\nprint(dict(os.environ))\nprint(js.Deno.env.toObject())")
    assert SECRET not in out and "Requires env access" in out
    still_works(tools)


def test_infinite_loop_times_out(tools: ToolRegistry) -> None:
    py(tools, "before = 1")
    res = tools.call("python", "while True:\n    pass", conversation_id=CONV)
    assert not res.ok and "Timed out after 2.5 seconds" in res.output and "lost" in res.output
    still_works(tools)


def test_a_call_that_never_returns_times_out(tools: ToolRegistry) -> None:
    out = py(tools, "import asyncio\nawait asyncio.Event().wait()")
    assert "Timed out" in out
    out = py(tools, "x = input('waiting for a terminal')")
    assert "EOFError" in out  # no terminal: does not hang, does not read the driver's pipe
    still_works(tools)


def test_memory_bomb_hits_the_limit(tools: ToolRegistry) -> None:
    out = py(tools, "blocks = []\nwhile True:\n    blocks.append(bytearray(10_000_000))")
    assert "MemoryError" in out or "memory limit" in out
    still_works(tools)


def test_output_flood_is_cut(tools: ToolRegistry) -> None:
    res = tools.call("python", "for i in range(200_000):\n    print(i)", conversation_id=CONV)
    assert len(res.output) < 3000
    assert "[output truncated:" in res.output
    still_works(tools)


def test_escapes_from_several_conversations_at_once_stay_apart(tools: ToolRegistry,
                                                               sessions: PythonSessions) -> None:
    outs: dict[int, str] = {}

    def work(conv: int) -> None:
        tools.call("python", f"mine = {conv}\nopen('who.txt', 'w').write(str(mine))", conversation_id=conv)
        outs[conv] = tools.call("python", "print(mine, open('who.txt').read())", conversation_id=conv).output

    threads = [threading.Thread(target=work, args=(c,)) for c in (21, 22)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert outs == {21: "21 21", 22: "22 22"}
    assert sessions.scratch_for(21) != sessions.scratch_for(22)
