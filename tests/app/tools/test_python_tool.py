"""The python tool as Hearth uses it: per-conversation sessions, the registry, the CLI, a chat turn."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from typing import Any

import pytest

from app.chat import ChatSession, ToolCallEvent
from app.cli import main as cli_main
from app.harmony.tools import default_registry
from app.paths import resolve_paths
from app.storage import ConversationStore, Database
from app.tools.python_tool import PythonSessions, add_python_tool, python_cache
from tests.app.tools.sandbox_support import shared_cache, small_limits
from tests.ui.fake_engine import ScriptedEngine


class _Engine(ScriptedEngine):
    def count_tokens(self, segments: Any) -> int:
        return sum(len(seg.text) for seg in segments) // 4


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_cache(tmp_path_factory)


@pytest.fixture
def sessions(cache: Path) -> Iterator[PythonSessions]:
    s = PythonSessions(resolve_paths().data_dir / "python", cache, limits=small_limits())
    yield s
    s.close_all()


def test_each_conversation_has_its_own_state_and_scratch_folder(sessions: PythonSessions) -> None:
    sessions.run(1, "x = 'one'\nopen('f.txt', 'w').write('1')")
    sessions.run(2, "x = 'two'")
    assert sessions.run(1, "x").output == "'one'\n"
    assert sessions.run(2, "x").output == "'two'\n"
    assert "FileNotFoundError" in (sessions.run(2, "open('f.txt').read()").error or "")
    data = resolve_paths().data_dir
    assert sessions.scratch_for(1) == data / "python" / "1"
    assert (data / "python" / "1" / "f.txt").read_text(encoding="utf-8") == "1"
    assert sorted(sessions.active()) == ["1", "2"]


def test_reset_and_close_drop_the_state(sessions: PythonSessions) -> None:
    sessions.run(5, "y = 1")
    sessions.reset(5)
    assert "NameError" in (sessions.run(5, "y").error or "")
    sessions.close(5)
    assert "5" not in sessions.active()


def test_idle_sessions_are_dropped(cache: Path) -> None:
    s = PythonSessions(resolve_paths().data_dir / "python", cache, limits=small_limits(), idle_s=0.3)
    try:
        s.run(3, "z = 1")
        deadline = time.monotonic() + 10
        while s.active() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert s.active() == []  # the reaper ended it
        assert "NameError" in (s.run(3, "z").error or "")
    finally:
        s.close_all()


def test_registry_call_output_and_ok(sessions: PythonSessions) -> None:
    tools = add_python_tool(default_registry(), sessions)
    assert tools.builtin_tools() == ["python"]
    good = tools.call("python", "print('hi')\n1 + 1", conversation_id=9)
    assert good.ok and good.output == "hi\n2" and good.duration_ms is not None
    bad = tools.call("python", "1/0", conversation_id=9)
    assert not bad.ok and bad.output.startswith("Traceback") and "ZeroDivisionError" in bad.output
    empty = tools.call("python", "   ", conversation_id=9)
    assert not empty.ok and "no code" in empty.output
    silent = tools.call("python", "q = 1", conversation_id=9)
    assert silent.ok and silent.output == "(no output)"


def test_unavailable_sandbox_is_a_tool_error_not_a_crash(tmp_path: Path) -> None:
    broken = tmp_path / "pyodide"
    broken.mkdir()
    (broken / "pyodide.mjs").write_text("throw new Error('broken')", encoding="utf-8")
    (broken / "pyodide.asm.wasm").write_bytes(b"\0asm")
    s = PythonSessions(tmp_path / "py", tmp_path / "cache", pyodide_dir=broken)
    try:
        res = add_python_tool(default_registry(), s).call("python", "print(1)", conversation_id=1)
        assert not res.ok and res.output.startswith("Error: the python tool is not available:")
    finally:
        s.close_all()


# ---- hearth tools run python ---------------------------------------------------------------


def _prime_cli_cache(cache: Path) -> None:
    # The CLI uses the app's cache dir; give it the snapshot already made for these tests.
    target = python_cache(resolve_paths())
    target.mkdir(parents=True, exist_ok=True)
    for snap in cache.glob("*.snapshot"):
        (target / snap.name).write_bytes(snap.read_bytes())


def test_cli_runs_each_code_in_one_session_json(cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _prime_cli_cache(cache)
    rc = cli_main(["tools", "run", "python", "--code", "x = 6 * 7", "--code", "print(x)\nx",
                   "--code", "1/0", "--json"])
    assert rc == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [set(d) for d in lines] == [{"output", "error", "duration_ms"}] * 3
    assert lines[0]["output"] == "" and lines[0]["error"] is None
    assert lines[1]["output"] == "42\n42\n" and lines[1]["error"] is None
    assert "ZeroDivisionError" in lines[2]["error"]  # the code raised, the tool ran: exit 0
    assert all(isinstance(d["duration_ms"], (int, float)) for d in lines)
    assert (resolve_paths().data_dir / "python" / "cli").is_dir()


def test_cli_plain_output(cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _prime_cli_cache(cache)
    assert cli_main(["tools", "run", "python", "--code", "print('plain')"]) == 0
    assert capsys.readouterr().out == "plain\n"


def test_cli_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["tools", "run", "python"]) == 2
    assert "give the code with --code" in capsys.readouterr().err
    assert cli_main(["tools", "run", "python", "--code", "1", "--args", "{}"]) == 2


def test_cli_cannot_run_exit_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "pyodide"
    broken.mkdir()
    (broken / "pyodide.mjs").write_text("throw new Error('broken')", encoding="utf-8")
    (broken / "pyodide.asm.wasm").write_bytes(b"\0asm")
    monkeypatch.setenv("HEARTH_PYODIDE_DIR", str(broken))
    assert cli_main(["tools", "run", "python", "--code", "print(1)", "--json"]) == 1
    assert "could not run" in capsys.readouterr().err


# ---- a chat turn: the model calls python twice, then answers ----------------------------


def test_chat_turn_calls_python_twice_with_state_kept(tmp_path: Path, sessions: PythonSessions) -> None:
    store = ConversationStore(Database(tmp_path / "chat.sqlite3"))
    conv = store.create("maths")
    engine = _Engine([
        "<|channel|>analysis<|message|>Let me compute.<|end|>"
        "<|start|>assistant<|channel|>analysis to=python code<|message|>n = 2**100\nprint(len(str(n)))<|call|>",
        "<|channel|>analysis to=python code<|message|>n % 97<|call|>",
        "<|channel|>final<|message|>2**100 has 31 digits.<|return|>",
    ], piece_delay=0)
    tools = add_python_tool(default_registry(), sessions)
    chat = ChatSession(store, engine, tools=tools)  # type: ignore[arg-type]
    events = list(chat.send(conv.id, "How many digits has 2**100?"))
    done = [e for e in events if isinstance(e, ToolCallEvent) and e.result is not None]
    assert [(e.name, e.result, e.ok) for e in done] == [("python", "31", True), ("python", str(2**100 % 97), True)]
    msgs = store.messages(conv.id)
    tool_msgs = [m for m in msgs if m.role == "tool"]
    assert [(m.name, m.content) for m in tool_msgs] == [("python", "31"), ("python", str(2**100 % 97))]
    # The second prompt carries the first call and its result in harmony's python form.
    second = engine.prompts[1]
    assert "<|start|>assistant to=python<|channel|>analysis code<|message|>n = 2**100\nprint(len(str(n)))<|call|>" \
        in second
    assert "<|start|>python to=assistant<|channel|>analysis<|message|>31<|end|>" in second
    assert msgs[-1].content == "2**100 has 31 digits."


