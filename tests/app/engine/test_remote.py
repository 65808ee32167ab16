"""RemoteEngine against real OpenAI-compatible servers on 127.0.0.1 (llama-cpp-python's own server).

Faults come from a loopback proxy in front of the real server (tests/support/fault_proxy.py).
The stream parsing of reasoning and tool-call deltas is also checked on the exact
chunk shapes vLLM/llama-server/Ollama send, since the CPU server here has no reasoning parser.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.engine.protocol import GenerationDone
from app.engine.remote import (
    RemoteEngine, RemoteError, Timeouts, _StreamState, host_of, is_loopback, normalize_base_url, wire_messages,
)
from app.harmony.parser import SPECIAL_TOKENS, ContentDelta, ToolCall
from tests.support.fault_proxy import FaultProxy, self_signed_cert
from tests.support.llama_server import RunningServer, free_port, llama_server

# gemma's end-of-generation tokens (<eos>, <end_of_turn>) banned: a reply as long as asked.
GEMMA_NO_EOS = {"extra_body": {"logit_bias": {"1": -100, "106": -100}}}
STATS_KEYS = {"completion_tokens", "prompt_tokens", "prompt_tokens_evaluated", "gen_tok_per_s", "ttft_ms",
              "total_s", "stop_reason", "n_ctx", "context_used"}


@pytest.fixture(scope="module")
def gemma_server(gemma_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with llama_server(gemma_path, tmp_path_factory.mktemp("srv")) as srv:
        yield srv


@pytest.fixture(scope="module")
def gptoss_server(gptoss_mxfp4_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with llama_server(gptoss_mxfp4_path, tmp_path_factory.mktemp("srv")) as srv:
        yield srv


def _collect(events: Iterator[object]) -> tuple[list[object], dict]:
    out, stats = [], {}
    for ev in events:
        if isinstance(ev, GenerationDone):
            stats = ev.stats
        else:
            out.append(ev)
    return out, stats


def _text(events: list[object], channel: str = "final") -> str:
    return "".join(e.text for e in events if isinstance(e, ContentDelta) and e.channel == channel)


USER = [{"role": "system", "content": "You tell stories."}, {"role": "user", "content": "Once upon a time"}]


# ---- real server ---------------------------------------------------------------------------


def test_lists_models_and_tests_connection(gptoss_server: RunningServer) -> None:
    eng = RemoteEngine(gptoss_server.url, gptoss_server.model_id)
    models = eng.test_connection()
    assert [m.id for m in models] == [gptoss_server.model_id]
    assert eng.model_info["architecture"] == "remote" and eng.model_info["server"] == f"127.0.0.1:{gptoss_server.port}"
    wrong = RemoteEngine(gptoss_server.url, "no-such-model")
    with pytest.raises(RemoteError) as err:
        wrong.test_connection()
    assert err.value.kind == "model" and "no-such-model" in str(err.value) and "127.0.0.1" in str(err.value)


def test_streams_a_reply_with_the_local_engines_stats(gemma_server: RunningServer) -> None:
    eng = RemoteEngine(gemma_server.url, gemma_server.model_id)
    events, stats = _collect(eng.chat(USER, reasoning_effort="low",
                                      req={"max_tokens": 12, "temperature": 0.0, "seed": 1, **GEMMA_NO_EOS}))
    assert STATS_KEYS <= set(stats)
    assert stats["stop_reason"] == "length"
    assert stats["completion_tokens"] == 12
    assert len([e for e in events if isinstance(e, ContentDelta)]) >= 10  # streamed, not one lump
    text = _text(events)
    assert text.strip() and text == stats["raw"]
    assert stats["ttft_ms"] > 0 and stats["gen_tok_per_s"] > 0 and stats["prompt_tokens_evaluated"] == stats["prompt_tokens"]


def test_harmony_text_in_the_content_is_split_by_hearths_parser(gptoss_server: RunningServer) -> None:
    """The random gpt-oss file writes harmony control tokens into the content: none reaches the answer."""
    eng = RemoteEngine(gptoss_server.url, gptoss_server.model_id)
    seen_special = False
    for seed in range(1, 6):
        events, stats = _collect(eng.chat(USER, req={"max_tokens": 48, "temperature": 1.0, "seed": seed}))
        shown = "".join(e.text for e in events if isinstance(e, ContentDelta))
        assert not any(tok in shown for tok in ("<|channel|>", "<|message|>", "<|start|>", "<|end|>"))
        seen_special |= any(tok in stats["raw"] for tok in SPECIAL_TOKENS)
        assert stats["stop_reason"] in ("length", "stop", "tool_calls")
    assert seen_special, "the tiny gpt-oss model never wrote a harmony token: the parser path went untested"


def test_stop_closes_the_stream_at_once(gemma_server: RunningServer) -> None:
    eng = RemoteEngine(gemma_server.url, gemma_server.model_id)
    got = []
    t0 = time.perf_counter()
    stats = {}
    for ev in eng.chat(USER, req={"max_tokens": 400, "temperature": 0.0, **GEMMA_NO_EOS}):
        if isinstance(ev, GenerationDone):
            stats = ev.stats
        else:
            got.append(ev)
            if len(got) == 3:
                eng.cancel()
    assert stats["stop_reason"] == "cancelled"
    assert len(got) < 10 and time.perf_counter() - t0 < 10
    # The engine is usable again right after.
    events, stats = _collect(eng.chat(USER, req={"max_tokens": 4, "temperature": 0.0, **GEMMA_NO_EOS}))
    assert stats["stop_reason"] == "length"


def test_stop_from_another_thread_interrupts_a_blocked_read(gemma_server: RunningServer) -> None:
    """A server that is silent (a long prompt, a busy GPU): Stop still returns within a moment."""
    with FaultProxy(gemma_server.port, stall_s=20) as proxy:
        eng = RemoteEngine(proxy.url, gemma_server.model_id)
        timer = threading.Timer(0.5, eng.cancel)
        timer.start()
        t0 = time.perf_counter()
        _, stats = _collect(eng.chat(USER, req={"max_tokens": 8}))
        elapsed = time.perf_counter() - t0
        timer.join()
    assert stats["stop_reason"] == "cancelled"
    assert elapsed < 2.0


# ---- faults ------------------------------------------------------------------------------------


def test_dropped_stream_keeps_what_arrived_and_names_the_server(gemma_server: RunningServer) -> None:
    with FaultProxy(gemma_server.port, drop_after=2500) as proxy:
        eng = RemoteEngine(proxy.url, gemma_server.model_id)
        events: list[object] = []
        with pytest.raises(RemoteError) as err:
            for ev in eng.chat(USER, req={"max_tokens": 200, "temperature": 0.0, **GEMMA_NO_EOS}):
                events.append(ev)
        assert err.value.kind == "dropped"
        assert f"127.0.0.1:{proxy.port}" in str(err.value) and "Retry" in str(err.value)
        assert _text(events).strip(), "the part of the reply that arrived was lost"
        assert not any(isinstance(e, GenerationDone) for e in events)
        # Retry works: the same engine, the server healthy again.
        proxy.drop_after = None
        _, stats = _collect(eng.chat(USER, req={"max_tokens": 4, "temperature": 0.0, **GEMMA_NO_EOS}))
        assert stats["completion_tokens"] == 4


@pytest.mark.parametrize("status,message,kind,words", [
    (401, None, "auth", "API key"),
    (429, None, "rate", "wait 7 s"),
    (404, "The model `gpt-oss-120b` does not exist.", "model", "no model named"),  # vLLM's words
    (404, "Not Found", "url", "usually ends in /v1"),
    (500, "CUDA error: out of memory", "server", "out of memory"),
])
def test_http_errors_say_what_to_do(gemma_server: RunningServer, status: int, message: str | None, kind: str,
                                    words: str) -> None:
    with FaultProxy(gemma_server.port, status=status, retry_after="7", message=message) as proxy:
        eng = RemoteEngine(proxy.url, gemma_server.model_id, api_key="sk-test")
        with pytest.raises(RemoteError) as err:
            _collect(eng.chat(USER, req={"max_tokens": 4}))
    assert err.value.kind == kind and err.value.status == status
    assert words in str(err.value) and f"127.0.0.1:{proxy.port}" in str(err.value)
    assert "sk-test" not in str(err.value)


def test_slow_server_times_out_with_a_message(gemma_server: RunningServer) -> None:
    with FaultProxy(gemma_server.port, stall_s=5) as proxy:
        eng = RemoteEngine(proxy.url, gemma_server.model_id, timeouts=Timeouts(connect=2, read=0.5))
        t0 = time.perf_counter()
        with pytest.raises(RemoteError) as err:
            _collect(eng.chat(USER, req={"max_tokens": 4}))
    assert err.value.kind == "timeout" and "0.5 s" in str(err.value)
    assert time.perf_counter() - t0 < 3


def test_server_down() -> None:
    eng = RemoteEngine(f"http://127.0.0.1:{free_port()}", "m")
    with pytest.raises(RemoteError) as err:
        eng.list_models()
    assert err.value.kind == "down" and "Cannot connect to 127.0.0.1" in str(err.value)
    with pytest.raises(RemoteError) as err:
        _collect(eng.chat(USER))
    assert err.value.kind == "down"


def test_untrusted_certificate_is_refused(gemma_server: RunningServer, tmp_path: Path) -> None:
    with FaultProxy(gemma_server.port, tls_cert=self_signed_cert(tmp_path)) as proxy:
        eng = RemoteEngine(proxy.url, gemma_server.model_id)
        with pytest.raises(RemoteError) as err:
            eng.list_models()
    assert err.value.kind == "tls" and "certificate of 127.0.0.1" in str(err.value)


def test_offline_mode_blocks_other_machines_but_not_this_one(gemma_server: RunningServer) -> None:
    far = RemoteEngine("http://gpu-box.lan:8000", "gpt-oss-120b", is_offline=lambda: True)
    with pytest.raises(RemoteError) as err:
        _collect(far.chat(USER))
    assert err.value.kind == "offline" and "gpu-box.lan:8000" in str(err.value)
    with pytest.raises(RemoteError):
        far.list_models()
    near = RemoteEngine(gemma_server.url, gemma_server.model_id, is_offline=lambda: True)
    assert near.list_models()


# ---- the stream shapes other servers send ---------------------------------------------------------


def _chunks(st: _StreamState, chunks: list[dict]) -> list[object]:
    out: list[object] = []
    for c in chunks:
        out.extend(st.chunk(c))
    out.extend(st.flush())
    return out


def _delta(**d: object) -> dict:
    return {"choices": [{"index": 0, "delta": d, "finish_reason": None}]}


def test_reasoning_fields_and_streamed_tool_calls() -> None:
    st = _StreamState(["calculator"])
    events = _chunks(st, [
        _delta(role="assistant"),
        _delta(reasoning_content="Need "),  # llama-server, vLLM
        _delta(reasoning="math."),  # Ollama, LM Studio
        _delta(tool_calls=[{"index": 0, "id": "call_1", "type": "function",
                            "function": {"name": "calculator", "arguments": ""}}]),
        _delta(tool_calls=[{"index": 0, "function": {"arguments": "{\"expression\": "}}]),
        _delta(tool_calls=[{"index": 0, "function": {"arguments": "\"2+2\"}"}}]),
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
        {"choices": [], "usage": {"prompt_tokens": 50, "completion_tokens": 9}},
    ])
    assert _text(events, "analysis") == "Need math."
    calls = [e for e in events if isinstance(e, ToolCall)]
    assert calls == [ToolCall("functions.calculator", "calculator", '{"expression": "2+2"}')]
    stats = st.stats(0.0, 1.0, "tool_calls", 4096)
    assert stats["completion_tokens"] == 9 and stats["prompt_tokens"] == 50 and stats["context_used"] == 59


def test_harmony_split_across_chunks() -> None:
    st = _StreamState(["calculator"])
    pieces = ["<|chan", "nel|>analysis<|mess", "age|>think", "ing<|end|><|start|>assistant<|channel|>final",
              "<|message|>The answer", " is 4.<", "|return|>"]
    events = _chunks(st, [_delta(content=p) for p in pieces])
    assert _text(events, "analysis") == "thinking"
    assert _text(events, "final") == "The answer is 4."
    st = _StreamState(["calculator"])
    events = _chunks(st, [_delta(content=p) for p in [
        "<|channel|>commentary to=functions.calculator <|constrain|>json<|message|>", '{"expression":"1+1"}',
        "<|call|>"]])
    assert [e for e in events if isinstance(e, ToolCall)] == [
        ToolCall("functions.calculator", "calculator", '{"expression":"1+1"}')]


def test_plain_text_with_angle_brackets_passes_through() -> None:
    st = _StreamState([])
    events = _chunks(st, [_delta(content=p) for p in ["a <b> and 1 <", "| 2 and <|x", "|> end <|"]])
    assert _text(events) == "a <b> and 1 <| 2 and <|x|> end <|"


def test_addresses_and_messages() -> None:
    assert normalize_base_url("gpu-box.lan:8000") == "http://gpu-box.lan:8000/v1"
    assert normalize_base_url("https://api.example.com/openai/v1/") == "https://api.example.com/openai/v1"
    for bad in ("", "ftp://x", "http://", "http://h:99999", "http://h/v1?x=1"):
        with pytest.raises(ValueError):
            normalize_base_url(bad)
    assert host_of("http://gpu-box.lan:8000/v1") == "gpu-box.lan:8000" and host_of("https://a.b/v1") == "a.b"
    assert is_loopback("http://127.0.0.5:1/v1") and is_loopback("http://localhost/v1") and is_loopback("http://[::1]:8/v1")
    assert not is_loopback("http://10.0.0.2/v1") and not is_loopback("http://gpu-box.lan/v1")
    wire = wire_messages([
        {"role": "developer", "content": "Be brief."},
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "", "thinking": "use the tool",
         "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "calculator", "arguments": "{}"}}]},
        {"role": "tool", "content": "4", "tool_call_id": "c1", "name": "calculator"},
    ])
    assert wire[0] == {"role": "system", "content": "Be brief."}
    assert wire[2]["content"] is None and "thinking" not in wire[2] and wire[2]["tool_calls"][0]["id"] == "c1"
    assert wire[3] == {"role": "tool", "content": "4", "tool_call_id": "c1", "name": "calculator"}
