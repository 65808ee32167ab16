"""The API through the real engine on real GGUF files (tiny random gpt-oss, gemma 270M)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx2 as httpx
import jsonschema
import openai
import pytest

from app.documents.embedder import Embedder
from tests.app.server.conftest import client, serving


def test_gptoss_both_endpoints_streamed_and_not(real_engine: Any, gptoss_mxfp4_path: Path) -> None:
    eng = real_engine(gptoss_mxfp4_path)
    with serving(eng) as srv:
        c = client(srv)
        model = c.models.list().data[0].id
        assert model == gptoss_mxfp4_path.stem
        r = c.chat.completions.create(model=model, messages=[{"role": "system", "content": "Be brief."},
                                                             {"role": "user", "content": "Hello"}],
                                      max_tokens=8, temperature=0, reasoning_effort="low")
        assert r.usage.prompt_tokens > 20 and 1 <= r.usage.completion_tokens <= 8
        assert r.choices[0].finish_reason in ("stop", "length", "tool_calls")
        chunks = list(c.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hello"}],
                                                max_tokens=8, temperature=0, stream=True,
                                                stream_options={"include_usage": True}))
        assert chunks[0].choices[0].delta.role == "assistant"
        assert chunks[-1].usage.completion_tokens <= 8 and chunks[-1].usage.prompt_tokens > 20
        resp = c.responses.create(model=model, input="Hello", max_output_tokens=8, temperature=0)
        assert resp.status in ("completed", "incomplete") and resp.usage.output_tokens <= 8
        events = list(c.responses.create(model=model, input="Hello", max_output_tokens=8, temperature=0,
                                         stream=True))
        assert events[0].type == "response.created"
        assert events[-1].type in ("response.completed", "response.incomplete")
        assert events[-1].response.usage.input_tokens == resp.usage.input_tokens


def test_gemma_chat_streamed_and_not(real_engine: Any, gemma_path: Path) -> None:
    eng = real_engine(gemma_path)
    with serving(eng) as srv:
        c = client(srv)
        msgs = [{"role": "user", "content": "Name three colours."}]
        r = c.chat.completions.create(model=gemma_path.stem, messages=msgs, max_tokens=12, temperature=0, seed=1)
        text = r.choices[0].message.content
        assert text.strip() and r.usage.completion_tokens <= 12
        assert "reasoning_content" not in (r.choices[0].message.model_extra or {})
        streamed = "".join(ch.choices[0].delta.content or "" for ch in c.chat.completions.create(
            model=gemma_path.stem, messages=msgs, max_tokens=12, temperature=0, seed=1, stream=True))
        assert streamed == text  # greedy: the same words either way


def test_json_schema_reply_parses_and_validates(real_engine: Any, gemma_path: Path) -> None:
    # Small on purpose: llama.cpp checks every one of gemma's 262k tokens against the grammar at
    # each step, about a second per token on this machine.
    schema = {"type": "object", "properties": {"answer": {"enum": ["yes", "no"]}, "sure": {"type": "boolean"}},
              "required": ["answer", "sure"], "additionalProperties": False}
    eng = real_engine(gemma_path)
    with serving(eng) as srv:
        r = client(srv, timeout=300).chat.completions.create(
            model=gemma_path.stem, messages=[{"role": "user", "content": "Is Paris in France? Answer in JSON."}],
            max_tokens=40, temperature=1.0, seed=3,
            response_format={"type": "json_schema", "json_schema": {"name": "verdict", "schema": schema}})
    assert r.choices[0].finish_reason == "stop", r.choices[0].message.content
    jsonschema.validate(json.loads(r.choices[0].message.content), schema)


def test_previous_response_id_evaluates_only_new_tokens(real_engine: Any, gptoss_mxfp4_path: Path) -> None:
    eng = real_engine(gptoss_mxfp4_path)
    with serving(eng) as srv:
        c = client(srv)
        model = gptoss_mxfp4_path.stem
        first = c.responses.create(model=model, input="Tell me about lighthouses.", instructions="Be brief.",
                                   max_output_tokens=6, temperature=0)
        second = c.responses.create(model=model, previous_response_id=first.id, instructions="Be brief.",
                                    input="And about harbours?", max_output_tokens=6, temperature=0)
    u1, u2 = first.usage, second.usage
    assert u1.input_tokens_details.cached_tokens == 0
    # Everything up to the first prompt comes from the state cache; only the answer and the new
    # question are evaluated.
    assert u2.input_tokens_details.cached_tokens >= u1.input_tokens
    evaluated = u2.input_tokens - u2.input_tokens_details.cached_tokens
    assert evaluated <= u2.input_tokens - u1.input_tokens + 1


def test_twenty_concurrent_streaming_clients_are_all_answered(real_engine: Any, gptoss_mxfp4_path: Path) -> None:
    eng = real_engine(gptoss_mxfp4_path)
    results: dict[int, Any] = {}
    with serving(eng) as srv:
        c = client(srv)

        def ask(i: int) -> None:
            try:
                stream = c.chat.completions.create(
                    model=gptoss_mxfp4_path.stem, messages=[{"role": "user", "content": f"Question {i}"}],
                    max_tokens=3, temperature=0, stream=True)
                results[i] = [ch.choices[0].finish_reason for ch in stream if ch.choices][-1]
            except Exception as exc:  # noqa: BLE001 - reported below
                results[i] = exc

        threads = [threading.Thread(target=ask, args=(i,)) for i in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    assert sorted(results) == list(range(20))
    assert all(r in ("stop", "length", "tool_calls") for r in results.values()), results


def test_client_disconnect_stops_generation(real_engine: Any, gemma_path: Path) -> None:
    eng = real_engine(gemma_path)
    with serving(eng) as srv:
        body = {"model": gemma_path.stem, "messages": [{"role": "user", "content": "Once upon a time"}],
                "max_tokens": 900, "temperature": 0.8, "stream": True}
        with httpx.stream("POST", srv.url + "/v1/chat/completions", json=body, timeout=60) as r:
            assert r.status_code == 200
            got = 0
            for line in r.iter_lines():
                if '"content":"' in line and '"content":""' not in line:
                    got += 1
                if got >= 3:
                    break
        deadline = time.monotonic() + 10
        while not srv.service.runner.finished and time.monotonic() < deadline:
            time.sleep(0.01)
        job = srv.service.runner.finished[-1]
        # And the engine is free for the next client at once.
        nxt = client(srv).chat.completions.create(model=gemma_path.stem, messages=[{"role": "user", "content": "Hi"}],
                                                  max_tokens=2)
    assert job.stats["stop_reason"] == "cancelled"
    assert job.stats["completion_tokens"] < 900
    assert job.cancel_latency_s is not None and job.cancel_latency_s < 0.1, job.cancel_latency_s
    assert nxt.usage.completion_tokens >= 1


def test_context_too_long_is_a_400_with_the_numbers(real_engine: Any, gptoss_mxfp4_path: Path) -> None:
    eng = real_engine(gptoss_mxfp4_path, n_ctx=256)
    with serving(eng) as srv:
        c = client(srv)
        for stream in (False, True):
            with pytest.raises(openai.BadRequestError) as exc:
                c.chat.completions.create(model=gptoss_mxfp4_path.stem, stream=stream,
                                          messages=[{"role": "user", "content": "word " * 400}])
            assert exc.value.body["code"] == "context_length_exceeded" and exc.value.body["param"] == "messages"
            assert "256" in exc.value.message and "tokens long" in exc.value.message
        with pytest.raises(openai.BadRequestError) as exc2:
            c.responses.create(model=gptoss_mxfp4_path.stem, input="word " * 400)
        assert exc2.value.body["param"] == "input"


def test_embeddings_when_an_embedding_model_is_installed(gemma_path: Path) -> None:
    from tests.ui.fake_engine import ScriptedEngine

    embedder = Embedder(gemma_path)
    try:
        with serving(ScriptedEngine([]), embedder=embedder) as srv:
            c = client(srv)
            assert gemma_path.stem in [m.id for m in c.models.list().data]
            r = c.embeddings.create(model=gemma_path.stem, input=["a lighthouse", "a harbour"])
            assert len(r.data) == 2 and len(r.data[0].embedding) == len(r.data[1].embedding) > 100
            norm = sum(x * x for x in r.data[0].embedding) ** 0.5
            assert abs(norm - 1.0) < 1e-3
            floats = c.embeddings.create(model=gemma_path.stem, input="a lighthouse", encoding_format="float")
            assert floats.data[0].embedding == pytest.approx(r.data[0].embedding, abs=1e-6)
        with serving(ScriptedEngine([])) as srv:
            with pytest.raises(openai.NotFoundError) as exc:
                client(srv).embeddings.create(model="anything", input="x")
            assert "No embedding model is installed" in exc.value.message
    finally:
        embedder.close()
