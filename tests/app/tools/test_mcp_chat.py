"""A gpt-oss turn that calls an MCP tool, through the real ChatSession, registry and server.

The model is scripted (a random-weight gpt-oss file cannot be relied on to call a tool);
everything after the model's text is real: the parser, the approval, the MCP server over
stdio, the stored tool message and the prompt of the next pass.
"""

from __future__ import annotations

import json
from pathlib import Path

from app.chat import ChatSession, ReplyFinished, SamplingSettings, ToolCallEvent
from app.harmony.tools import ApprovalRequest
from app.storage import ConversationStore, Database
from app.tools.mcp_config import McpConfig
from app.tools.selection import build_chat_tools
from app.paths import resolve_paths
from app.settings import Settings
from tests.support.mcp_servers import TIME_SERVER
from tests.ui.fake_engine import ScriptedEngine

CALL = ("<|channel|>analysis<|message|>Need the time in Tokyo.<|end|><|start|>assistant"
        "<|channel|>commentary to=functions.mcp__time__get_current_time <|constrain|>json<|message|>"
        '{"timezone": "Asia/Tokyo"}<|call|>')
AFTER = "<|channel|>final<|message|>It is evening in Tokyo.<|return|>"


class _Engine(ScriptedEngine):
    def count_tokens(self, prompt: object) -> int:  # the context check before a turn
        return 100


def _turn(tmp_path: Path, answer: str) -> tuple[list[object], ConversationStore, int, _Engine,
                                                 list[ApprovalRequest]]:
    paths = resolve_paths(tmp_path / "d")
    McpConfig.for_paths(paths).add_command("time", TIME_SERVER)
    asked: list[ApprovalRequest] = []
    reg = build_chat_tools("calculator,mcp:time", Settings(), paths, yes=False)

    def approver(req: ApprovalRequest) -> str:
        asked.append(req)
        return answer

    reg.approver = approver
    store = ConversationStore(Database(tmp_path / "h.sqlite3"))
    conv = store.create("t")
    eng = _Engine([CALL, AFTER], piece_delay=0)
    session = ChatSession(store, eng, tools=reg, sampling=SamplingSettings(max_tokens=64))  # type: ignore[arg-type]
    try:
        events = list(session.send(conv.id, "What time is it in Tokyo?"))
    finally:
        reg.close()
    return events, store, conv.id, eng, asked


def test_an_approved_mcp_call_feeds_the_server_answer_back(tmp_path: Path) -> None:
    events, store, conv_id, eng, asked = _turn(tmp_path, "once")
    assert [a.title for a in asked] == ["time › get_current_time"] and asked[0].conversation_id == conv_id
    done = [e for e in events if isinstance(e, ToolCallEvent) and e.result is not None]
    assert done and done[0].ok and json.loads(done[0].result)["timezone"] == "Asia/Tokyo"
    msgs = store.messages(conv_id)
    assert [m.role for m in msgs] == ["user", "assistant", "tool", "assistant"]
    assert msgs[2].name == "mcp__time__get_current_time" and '"Asia/Tokyo"' in msgs[2].content
    assert msgs[3].content == "It is evening in Tokyo."
    assert "mcp__time__get_current_time" in eng.prompts[0]  # offered to the model
    assert "<|start|>functions.mcp__time__get_current_time to=assistant" in eng.prompts[1]
    assert isinstance(events[-1], ReplyFinished)


def test_a_denied_call_tells_the_model_and_the_reply_goes_on(tmp_path: Path) -> None:
    events, store, conv_id, eng, asked = _turn(tmp_path, "deny")
    msgs = store.messages(conv_id)
    assert "The user denied this call to time › get_current_time" in msgs[2].content
    assert msgs[3].content == "It is evening in Tokyo." and isinstance(events[-1], ReplyFinished)
    assert "The user denied this call" in eng.prompts[1]
