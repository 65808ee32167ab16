"""The API's shapes and rules through the official openai client, with a scripted engine.

The scripted engine replays harmony text as if gpt-oss wrote it, so the server's
handling of reasoning, tool calls and errors is checked exactly; test_api_real.py
runs the same paths through the real engine.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx2 as httpx
import jsonschema
import openai
import pytest

from tests.app.server.conftest import client, serving
from tests.ui.fake_engine import ScriptedEngine

WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
THINK_THEN_ANSWER = ("<|channel|>analysis<|message|>The user greets me.<|end|>"
                     "<|start|>assistant<|channel|>final<|message|>Hello there!<|return|>")
CALL_WEATHER = ("<|channel|>analysis<|message|>Need the weather.<|end|>"
                "<|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json"
                '<|message|>{"city":"Paris"}<|call|>')


class RecordingEngine(ScriptedEngine):
    """Also keeps each request's parameters (sampling, grammar, cache key)."""

    def __init__(self, scripts: list[str], **kw: Any) -> None:
        super().__init__(scripts, **kw)
        self.requests: list[dict[str, Any]] = []

    def generate(self, req: dict[str, Any], segments: list[Any]) -> Any:
        self.requests.append(dict(req))
        return super().generate(req, segments)


def test_chat_keeps_reasoning_out_of_content_streamed_and_not() -> None:
    eng = RecordingEngine([THINK_THEN_ANSWER, THINK_THEN_ANSWER], piece_delay=0.001)
    with serving(eng) as srv:
        c = client(srv)
        r = c.chat.completions.create(model="scripted", messages=[{"role": "user", "content": "hi"}],
                                      reasoning_effort="high", max_completion_tokens=50, temperature=0.2,
                                      top_p=0.9, seed=7)
        msg = r.choices[0].message
        assert msg.content == "Hello there!"
        assert msg.model_extra["reasoning_content"] == "The user greets me."
        assert r.choices[0].finish_reason == "stop"
        assert r.usage.prompt_tokens > 0 and r.usage.completion_tokens > 0
        assert "Reasoning: high" in eng.prompts[0]
        assert eng.requests[0]["max_tokens"] == 50 and eng.requests[0]["temperature"] == 0.2
        assert eng.requests[0]["top_p"] == 0.9 and eng.requests[0]["seed"] == 7

        chunks = list(c.chat.completions.create(model="scripted", messages=[{"role": "user", "content": "hi"}],
                                                stream=True, stream_options={"include_usage": True}))
        content = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
        reasoning = "".join((ch.choices[0].delta.model_extra or {}).get("reasoning_content") or ""
                            for ch in chunks if ch.choices)
        assert content == "Hello there!" and reasoning == "The user greets me."
        assert [ch.choices[0].finish_reason for ch in chunks if ch.choices][-1] == "stop"
        assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_chat_function_call_round_trip() -> None:
    eng = RecordingEngine([CALL_WEATHER, "<|channel|>final<|message|>It is sunny in Paris.<|return|>"],
                          piece_delay=0.001)
    with serving(eng) as srv:
        c = client(srv)
        messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
        r = c.chat.completions.create(model="scripted", messages=messages, tools=[WEATHER_TOOL])
        choice = r.choices[0]
        assert choice.finish_reason == "tool_calls"
        (call,) = choice.message.tool_calls
        assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Paris"}
        assert "namespace functions" in eng.prompts[0] and "get_weather" in eng.prompts[0]
        messages.append(choice.message.model_dump(exclude_none=True))
        messages.append({"role": "tool", "tool_call_id": call.id, "content": "sunny, 24 C"})
        r2 = c.chat.completions.create(model="scripted", messages=messages, tools=[WEATHER_TOOL])
        assert r2.choices[0].message.content == "It is sunny in Paris."
        second = eng.prompts[1]
        # The call and its result go back to the model in harmony form; the open chain keeps its analysis.
        assert ('<|start|>assistant to=functions.get_weather<|channel|>commentary json<|message|>{"city": "Paris"}'
                '<|call|>') in second
        assert '<|start|>functions.get_weather to=assistant<|channel|>commentary<|message|>"sunny, 24 C"<|end|>' in second
        assert "Need the weather." in second


def test_chat_streams_tool_call_deltas() -> None:
    eng = RecordingEngine([CALL_WEATHER], piece_delay=0.001)
    with serving(eng) as srv:
        chunks = list(client(srv).chat.completions.create(
            model="scripted", messages=[{"role": "user", "content": "Weather?"}], tools=[WEATHER_TOOL], stream=True))
    deltas = [tc for ch in chunks for tc in (ch.choices[0].delta.tool_calls or [])]
    assert deltas[0].id and deltas[0].function.name == "get_weather"
    assert json.loads("".join(d.function.arguments or "" for d in deltas)) == {"city": "Paris"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    assert not any(ch.choices[0].delta.content for ch in chunks)


def test_forced_tool_choice_prefills_the_call_header() -> None:
    eng = RecordingEngine(['{"city":"Oslo"}<|call|>'], piece_delay=0.001)
    with serving(eng) as srv:
        r = client(srv).chat.completions.create(
            model="scripted", messages=[{"role": "user", "content": "Oslo?"}], tools=[WEATHER_TOOL],
            tool_choice={"type": "function", "function": {"name": "get_weather"}})
    assert eng.prompts[0].endswith("<|start|>assistant to=functions.get_weather<|channel|>commentary json<|message|>")
    (call,) = r.choices[0].message.tool_calls
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Oslo"}


def test_stop_strings_cut_the_answer_and_stop_generation() -> None:
    eng = RecordingEngine(["<|channel|>final<|message|>one two THREE four five six seven<|return|>"],
                          piece_delay=0.02)
    with serving(eng) as srv:
        r = client(srv).chat.completions.create(model="scripted", messages=[{"role": "user", "content": "count"}],
                                                stop=["THREE"])
        job = srv.service.runner.finished[-1]
    assert r.choices[0].message.content == "one two " and r.choices[0].finish_reason == "stop"
    assert job.stats["stop_reason"] == "cancelled"  # the engine was stopped, not run to the end


def test_responses_stream_event_sequence_and_function_call_round_trip() -> None:
    eng = RecordingEngine([CALL_WEATHER, THINK_THEN_ANSWER], piece_delay=0.001)
    tool = {"type": "function", "name": "get_weather", "parameters": WEATHER_TOOL["function"]["parameters"]}
    with serving(eng) as srv:
        c = client(srv)
        events = list(c.responses.create(model="scripted", input="Weather in Paris?", tools=[tool],
                                         instructions="Be brief.", reasoning={"effort": "low"}, stream=True))
        types = [e.type for e in events]
        assert types[0] == "response.created" and types[-1] == "response.completed"
        for t in ("response.output_item.added", "response.reasoning_text.delta",
                  "response.function_call_arguments.delta", "response.function_call_arguments.done"):
            assert t in types
        assert [e.sequence_number for e in events] == list(range(len(events)))
        final = events[-1].response
        call = next(item for item in final.output if item.type == "function_call")
        assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "Paris"}
        assert "Reasoning: low" in eng.prompts[0] and "# Instructions\n\nBe brief." in eng.prompts[0]

        r2 = c.responses.create(model="scripted", previous_response_id=final.id, tools=[tool],
                                instructions="Be brief.", reasoning={"effort": "low"},
                                input=[{"type": "function_call_output", "call_id": call.call_id,
                                        "output": "sunny"}])
        assert r2.output_text == "Hello there!"
        assert r2.output[0].type == "reasoning" and r2.output[0].content[0].text == "The user greets me."
        second = eng.prompts[1]
        assert second.startswith(eng.prompts[0])  # the follow-up extends the first prompt: only new tokens
        assert '<|start|>functions.get_weather to=assistant<|channel|>commentary<|message|>"sunny"' in second
        assert eng.requests[1]["conv_key"] == eng.requests[0]["conv_key"]


def test_responses_text_and_message_items_stream_text_deltas() -> None:
    eng = RecordingEngine([THINK_THEN_ANSWER], piece_delay=0.001)
    with serving(eng) as srv:
        events = list(client(srv).responses.create(
            model="scripted", stream=True,
            input=[{"role": "developer", "content": "Answer kindly."},
                   {"role": "user", "content": [{"type": "input_text", "text": "hi"}]}]))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    thinking = "".join(e.delta for e in events if e.type == "response.reasoning_text.delta")
    assert text == "Hello there!" and thinking == "The user greets me."
    assert events[-1].response.usage.input_tokens > 0
    assert "# Instructions\n\nAnswer kindly." in eng.prompts[0]


def test_structured_output_sends_a_grammar_and_the_reply_validates() -> None:
    schema = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
              "required": ["name", "age"], "additionalProperties": False}
    reply = '<|channel|>analysis<|message|>Make JSON.<|end|><|start|>assistant<|channel|>final<|message|>' \
            '{"name": "Ada", "age": 36}<|return|>'
    eng = RecordingEngine([reply, reply], piece_delay=0.001)
    with serving(eng) as srv:
        c = client(srv)
        r = c.chat.completions.create(model="scripted", messages=[{"role": "user", "content": "Ada?"}],
                                      response_format={"type": "json_schema",
                                                       "json_schema": {"name": "person", "schema": schema}})
        jsonschema.validate(json.loads(r.choices[0].message.content), schema)
        r2 = c.responses.create(model="scripted", input="Ada?",
                                text={"format": {"type": "json_schema", "name": "person", "schema": schema}})
        jsonschema.validate(json.loads(r2.output_text), schema)
    for req in eng.requests:
        assert req["grammar"].startswith("root ::= ") and '"\\"age\\""' in req["grammar"]
        # gpt-oss reasons first; the grammar holds its final answer.
        assert req["grammar_trigger"] == "<|channel|>final<|message|>"


def test_error_statuses_in_openai_shape() -> None:
    eng = RecordingEngine([], piece_delay=0.001)
    with serving(eng, api_key="sekrit", max_body_bytes=2000) as srv:
        good = client(srv, "sekrit")
        with pytest.raises(openai.AuthenticationError) as e401:
            client(srv, "wrong").models.list()
        assert e401.value.status_code == 401 and "API key" in e401.value.message
        with pytest.raises(openai.NotFoundError) as e404:
            good.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
        assert "'scripted'" in e404.value.message
        with pytest.raises(openai.BadRequestError) as e400:
            good.chat.completions.create(model="scripted", messages=[{"role": "user", "content": "x"}],
                                         temperature=9)
        assert e400.value.body["param"] == "temperature"
        with pytest.raises(openai.BadRequestError) as e400b:
            good.chat.completions.create(model="scripted", messages=[{"role": "wizard", "content": "x"}])
        assert e400b.value.body["param"] == "messages[0].role"
        with pytest.raises(openai.BadRequestError) as e400c:
            good.responses.create(model="scripted", input="x", previous_response_id="resp_nope")
        assert e400c.value.body["param"] == "previous_response_id"
        with pytest.raises(openai.APIStatusError) as e413:
            good.chat.completions.create(model="scripted", messages=[{"role": "user", "content": "x" * 5000}])
        assert e413.value.status_code == 413
        r = httpx.get(srv.url + "/v2/nothing", headers={"Authorization": "Bearer sekrit"})
        assert r.status_code == 404 and "/v1/chat/completions" in r.json()["error"]["message"]
        eng.model_info = None  # the window has no model loaded
        with pytest.raises(openai.InternalServerError) as e503:
            good.chat.completions.create(model="scripted", messages=[{"role": "user", "content": "x"}])
        assert e503.value.status_code == 503 and "No model is loaded" in e503.value.message


def test_queue_full_gives_429_and_the_rest_are_answered() -> None:
    slow = "<|channel|>final<|message|>" + "word " * 20 + "<|return|>"
    eng = RecordingEngine([slow] * 3, piece_delay=0.02)
    with serving(eng, max_queue=2) as srv:
        c = client(srv)
        results: list[Any] = []

        def ask() -> None:
            try:
                results.append(c.chat.completions.create(model="scripted",
                                                         messages=[{"role": "user", "content": "x"}]))
            except openai.RateLimitError as exc:
                results.append(exc)

        threads = [threading.Thread(target=ask) for _ in range(2)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 5
        while srv.service.runner.pending < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        with pytest.raises(openai.RateLimitError) as e429:
            c.chat.completions.create(model="scripted", messages=[{"role": "user", "content": "x"}])
        assert e429.value.status_code == 429 and "busy" in e429.value.message
        for t in threads:
            t.join(30)
    assert len(results) == 2 and all(r.choices[0].message.content.startswith("word") for r in results)


def test_cors_is_off_unless_origins_are_listed() -> None:
    eng = RecordingEngine([])
    headers = {"Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST"}
    with serving(eng) as srv:
        r = httpx.options(srv.url + "/v1/chat/completions", headers=headers)
        assert "access-control-allow-origin" not in r.headers
    with serving(eng, cors_origins=("http://localhost:3000",)) as srv:
        r = httpx.options(srv.url + "/v1/chat/completions", headers=headers)
        assert r.headers["access-control-allow-origin"] == "http://localhost:3000"


def test_requests_reach_history_only_when_asked() -> None:
    saved: list[tuple[Any, ...]] = []
    eng = RecordingEngine([THINK_THEN_ANSWER, THINK_THEN_ANSWER], piece_delay=0.001)
    with serving(eng) as srv:
        client(srv).chat.completions.create(model="scripted", messages=[{"role": "user", "content": "hi"}])
    with serving(eng, save_exchange=lambda *a: saved.append(a)) as srv:
        client(srv).chat.completions.create(model="scripted", messages=[{"role": "user", "content": "hi"}])
    assert len(saved) == 1 and saved[0][2] == "Hello there!" and saved[0][3] == "The user greets me."
