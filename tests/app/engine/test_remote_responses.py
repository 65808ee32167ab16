"""The remote engine speaks OpenAI's Responses API where the server has it (another Hearth),
and Chat Completions where it does not (llama-cpp-python's server)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.engine.protocol import GenerationDone
from app.engine.remote import RemoteEngine, responses_body
from app.harmony.parser import ContentDelta
from tests.support.hearth_serve import hearth_serve
from tests.support.llama_server import llama_server

USER = [{"role": "system", "content": "You tell stories."}, {"role": "user", "content": "Once upon a time"}]


@pytest.fixture
def hearth_server(tmp_path: Path, gptoss_mxfp4_path: Path) -> Iterator[str]:
    with hearth_serve(tmp_path / "srv", "--model", str(gptoss_mxfp4_path), "--port", "0", "--ctx", "1024") as srv:
        yield srv.url


def _run(engine: RemoteEngine, **kw) -> tuple[list, dict]:
    events, stats = [], {}
    for ev in engine.chat(USER, reasoning_effort="low", req={"max_tokens": 16, "temperature": 1.0}, **kw):
        if isinstance(ev, GenerationDone):
            stats = ev.stats
        else:
            events.append(ev)
    return events, stats


def test_another_hearth_is_asked_through_the_responses_api(hearth_server: str, gptoss_mxfp4_path: Path) -> None:
    engine = RemoteEngine(hearth_server, gptoss_mxfp4_path.stem)
    events, stats = _run(engine)
    assert engine.api == "responses"
    assert 0 < stats["completion_tokens"] <= 16 and stats["prompt_tokens"] > 0
    assert stats["stop_reason"] in ("stop", "length")
    final = "".join(e.text for e in events if isinstance(e, ContentDelta) and e.channel == "final")
    assert "<|channel|>" not in final and "<|message|>" not in final  # reasoning and answer arrive apart
    events2, stats2 = _run(engine)  # remembered: the second reply goes the same way
    assert engine.api == "responses" and stats2["completion_tokens"] > 0


def test_a_server_without_it_gets_chat_completions(gemma_path: Path, tmp_path: Path) -> None:
    (tmp_path / "srv").mkdir()
    with llama_server(gemma_path, tmp_path / "srv") as srv:
        engine = RemoteEngine(srv.url, srv.model_id)
        events, stats = _run(engine)
        assert engine.api == "chat" and stats["completion_tokens"] > 0
        assert any(isinstance(e, ContentDelta) for e in events)


def test_history_and_tools_become_responses_items() -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Oslo?"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Oslo"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "name": "weather", "content": "4 °C, rain"},
    ]
    tools = [{"type": "function", "function": {"name": "weather", "description": "Weather now",
                                               "parameters": {"type": "object", "properties": {}}}}]
    body = responses_body("m", messages, tools, "high", {"max_tokens": 64, "temperature": 0.5})
    assert body["instructions"] == "Be brief." and body["reasoning"] == {"effort": "high"}
    assert body["input"] == [
        {"role": "user", "content": "Weather in Oslo?"},
        {"type": "function_call", "call_id": "call_1", "name": "weather", "arguments": '{"city": "Oslo"}'},
        {"type": "function_call_output", "call_id": "call_1", "output": "4 °C, rain"},
    ]
    assert body["tools"][0]["name"] == "weather" and body["max_output_tokens"] == 64 and body["store"] is False
