"""gpt-oss's built-in python tool in the harmony renderer and parser.

The declaration is checked byte for byte against the official template; the call and the
result (which the template cannot write) against the harmony format, and round-tripped:
what the parser reads from the model is what the renderer writes back.
"""

from __future__ import annotations

from typing import Any, Callable

import pytest

from app.harmony.parser import ContentDelta, HarmonyStreamParser, ToolCall
from app.harmony.render import render_harmony
from app.harmony.tools import BuiltinTool, ToolRegistry, ToolResult, default_registry
from app.prompt import prompt_text

DATE = "2025-08-05"
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


def ours(messages: list[dict[str, Any]], **kw: Any) -> str:
    kw.setdefault("current_date", DATE)
    return prompt_text(render_harmony(messages, **kw))


@pytest.mark.parametrize("tools", [None, [WEATHER], "registry"])
@pytest.mark.parametrize("system", [None, "Be brief."])
def test_python_declaration_matches_template(reference: Callable[..., str], tools: Any, system: Any) -> None:
    if tools == "registry":
        tools = default_registry().schemas()
    msgs = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": "2**100?"}]
    expected = reference(msgs, tools=tools, builtin_tools=["python"], current_date=DATE)
    got = ours(msgs, tools=tools, builtin_tools=["python"])
    assert got == expected
    system_msg = got.split("<|end|>", 1)[0]
    assert "# Tools\n\n## python\n\n" in system_msg
    assert "stateful Jupyter notebook environment" in system_msg
    assert "'/mnt/data'" in system_msg


def test_no_builtin_tools_renders_as_before(reference: Callable[..., str]) -> None:
    msgs = [{"role": "user", "content": "hi"}]
    assert ours(msgs) == reference(msgs, current_date=DATE) == ours(msgs, builtin_tools=[])
    assert "## python" not in ours(msgs)


def test_unknown_builtin_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown built-in tool.*'browser'.*supported: python"):
        render_harmony([{"role": "user", "content": "hi"}], builtin_tools=["browser"])


CODE = 'x = 2**100\nprint(x)\n"<|end|> stays text"'
OUTPUT = "1267650600228229401496703205376\n'<|end|> stays text'\n"
GENERATED_CODE = "import math\nx = 2**100  # a < b, a | b\nprint(math.log2(x))"  # what a model can emit


def _python_turn(final: bool) -> list[dict[str, Any]]:
    msgs: list[dict[str, Any]] = [
        {"role": "user", "content": "What is 2**100?"},
        {"role": "assistant", "thinking": "Use python.", "tool_calls": [
            {"id": "call_a", "type": "function", "function": {"name": "python", "arguments": CODE}}]},
        {"role": "tool", "tool_call_id": "call_a", "name": "python", "content": OUTPUT},
    ]
    if final:
        msgs.append({"role": "assistant", "content": "It is 1267650600228229401496703205376."})
        msgs.append({"role": "user", "content": "Thanks"})
    return msgs


def test_python_call_and_result_use_the_harmony_form() -> None:
    text = ours(_python_turn(final=False), builtin_tools=["python"])
    assert text.endswith(
        "<|start|>user<|message|>What is 2**100?<|end|>"
        "<|start|>assistant<|channel|>analysis<|message|>Use python.<|end|>"
        f"<|start|>assistant to=python<|channel|>analysis code<|message|>{CODE}<|call|>"
        f"<|start|>python to=assistant<|channel|>analysis<|message|>{OUTPUT}<|end|>"
        "<|start|>assistant"
    )
    # Code and output are plain text: not JSON-encoded like function arguments and results.
    assert "functions.python" not in text


def test_finished_turn_drops_python_analysis_like_the_template_drops_function_analysis() -> None:
    text = ours(_python_turn(final=True), builtin_tools=["python"])
    assert "Use python." not in text  # the chain ended with a final answer
    assert "to=python<|channel|>analysis code<|message|>" in text
    assert "<|start|>python to=assistant<|channel|>analysis<|message|>" in text
    assert text.endswith("<|start|>assistant<|channel|>final<|message|>It is 1267650600228229401496703205376."
                         "<|end|><|start|>user<|message|>Thanks<|end|><|start|>assistant")


def test_special_tokens_in_code_and_output_stay_plain_text() -> None:
    prompt = render_harmony(_python_turn(final=False), builtin_tools=["python"], current_date=DATE)
    specials = [seg.text for seg in prompt if seg.special]
    assert all("stays text" not in t for t in specials)
    plain = "".join(seg.text for seg in prompt if not seg.special)
    assert CODE in plain and OUTPUT in plain


def test_a_declared_function_named_python_stays_a_function() -> None:
    fn = {"type": "function", "function": {"name": "python", "description": "Run.",
                                           "parameters": {"type": "object", "properties": {}}}}
    msgs = [{"role": "user", "content": "run"},
            {"role": "assistant", "tool_calls": [{"id": "c", "type": "function",
                                                  "function": {"name": "python", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c", "name": "python", "content": "ok"}]
    text = ours(msgs, tools=[fn])
    assert "<|start|>assistant to=functions.python<|channel|>commentary json<|message|>{}<|call|>" in text
    assert '<|start|>functions.python to=assistant<|channel|>commentary<|message|>"ok"<|end|>' in text


def _parse(text: str, piecewise: bool) -> list[Any]:
    p = HarmonyStreamParser(["get_weather"])
    events: list[Any] = []
    for piece in (list(text) if piecewise else [text]):
        events += p.feed(piece)
    return events + p.finish()


@pytest.mark.parametrize("piecewise", [False, True])
@pytest.mark.parametrize("header", [
    "<|channel|>analysis to=python code<|message|>",  # how gpt-oss writes it
    " to=python<|channel|>analysis code<|message|>",  # how harmony renders it
    "<|channel|>analysis to=python<|message|>",  # no content type
])
def test_parser_reads_python_calls(header: str, piecewise: bool) -> None:
    text = "<|channel|>analysis<|message|>Compute it.<|end|><|start|>assistant" + header + GENERATED_CODE + "<|call|>"
    events = _parse(text, piecewise)
    calls = [e for e in events if isinstance(e, ToolCall)]
    assert calls == [ToolCall("python", "python", GENERATED_CODE)]
    thinking = "".join(e.text for e in events if isinstance(e, ContentDelta) and e.recipient is None)
    assert thinking == "Compute it."


def test_what_the_parser_reads_renders_back_as_the_model_wrote_it() -> None:
    generated = "<|channel|>analysis to=python code<|message|>" + GENERATED_CODE + "<|call|>"
    call = [e for e in _parse(generated, False) if isinstance(e, ToolCall)][0]
    msgs = [{"role": "user", "content": "q"},
            {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function",
                                                  "function": {"name": call.name, "arguments": call.arguments}}]}]
    assert ours(msgs, builtin_tools=["python"]).endswith(
        "<|start|>assistant to=python<|channel|>analysis code<|message|>" + GENERATED_CODE
        + "<|call|><|start|>assistant")


def test_function_calls_still_parse_with_json() -> None:
    text = "<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{\"city\":\"Paris\"}<|call|>"
    assert [e for e in _parse(text, True) if isinstance(e, ToolCall)] == [
        ToolCall("functions.get_weather", "get_weather", '{"city":"Paris"}')]


def test_registry_routes_builtin_calls_with_raw_text_and_conversation() -> None:
    seen: list[tuple[str, int | None]] = []

    def run(code: str, conversation_id: int | None) -> ToolResult:
        seen.append((code, conversation_id))
        return ToolResult(True, "ran", 1.0)

    reg = default_registry()
    reg.register_builtin(BuiltinTool("python", run))
    assert reg.builtin_tools() == ["python"]
    assert "python" not in [s["function"]["name"] for s in reg.schemas()]  # not a function
    assert reg.call("python", "print('not JSON')", conversation_id=7) == ToolResult(True, "ran")
    assert seen == [("print('not JSON')", 7)]
    with pytest.raises(ValueError, match="already registered"):
        reg.register_builtin(BuiltinTool("python", run))
    assert ToolRegistry().builtin_tools() == []
