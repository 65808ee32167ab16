"""One gpt-oss turn that uses python twice (state kept) and an MCP tool (issue 17).

The model is scripted (a random-weight file cannot be relied on to call tools); the
rest is real: ChatSession, the registry `hearth chat --tools python,mcp:time --yes`
builds, the Pyodide sandbox, `mcp-server-time` over stdio, and the CLI's JSON summary.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import app.documents  # noqa: F401 - the full schema
from app.chat import ChatSession, ReplyFinished, SamplingSettings, ToolCallEvent, tool_calls_summary
from app.paths import resolve_paths
from app.settings import Settings
from app.storage import ConversationStore, Database
from app.tools.mcp_config import McpConfig
from app.tools.selection import build_chat_tools
from tests.support.mcp_servers import TIME_SERVER
from tests.ui.fake_engine import ScriptedEngine

SCRIPT = [
    "<|channel|>analysis<|message|>Compute, then check the time.<|end|>"
    "<|start|>assistant<|channel|>analysis to=python code<|message|>days = [31, 28, 31]\nprint(sum(days))<|call|>",
    "<|channel|>analysis to=python code<|message|>sum(days) * 24<|call|>",
    "<|channel|>commentary to=functions.mcp__time__get_current_time <|constrain|>json<|message|>"
    '{"timezone": "Europe/Paris"}<|call|>',
    "<|channel|>final<|message|>90 days, 2160 hours.<|return|>",
]


class _Engine(ScriptedEngine):
    def count_tokens(self, segments: Any) -> int:
        return 100


def test_python_twice_and_an_mcp_tool_in_one_turn(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HEARTH_DATA_DIR", str(tmp_path / "d"))
    paths = resolve_paths(tmp_path / "d")
    McpConfig.for_paths(paths).add_command("time", TIME_SERVER)
    reg = build_chat_tools("python,mcp:time", Settings(), paths, yes=True)
    store = ConversationStore(Database(tmp_path / "h.sqlite3"))
    conv = store.create()
    engine = _Engine(SCRIPT, piece_delay=0)
    session = ChatSession(store, engine, tools=reg, sampling=SamplingSettings(max_tokens=64))  # type: ignore[arg-type]
    try:
        events = list(session.send(conv.id, "How many hours in the first quarter, and what time is it?"))
    finally:
        reg.close()
    results = [e for e in events if isinstance(e, ToolCallEvent) and e.result is not None]
    assert [(e.name, e.ok) for e in results] == [("python", True), ("python", True),
                                                 ("mcp__time__get_current_time", True)]
    assert results[0].result == "90" and results[1].result == "2160"  # the variable survived the first call
    assert "Europe/Paris" in results[2].result
    assert all(e.duration_ms is not None and e.duration_ms >= 0 for e in results)
    # python is declared as gpt-oss's built-in tool; the MCP tool as a function.
    assert "## python" in engine.prompts[0] and "mcp__time__get_current_time" in engine.prompts[0]
    assert isinstance(events[-1], ReplyFinished) and events[-1].message.content == "90 days, 2160 hours."
    summary = tool_calls_summary(store.messages(conv.id))
    assert [s["name"] for s in summary] == ["python", "python", "mcp__time__get_current_time"]
    assert summary[1]["output"] == "2160" and all(isinstance(s["duration_ms"], float) for s in summary)
    assert summary[2]["arguments"] == {"timezone": "Europe/Paris"}
