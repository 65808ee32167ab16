"""The engine worker process through the real llama.cpp on real GGUF files."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from app.engine.client import EngineClient
from app.errors import ContextOverflow, ModelLoadError, WorkerDied
from app.prompt import Segment

PARAMS = {"n_ctx": 1024, "n_threads": 2, "flash_attn": True, "swa_full": False}


@pytest.fixture
def engine():
    c = EngineClient()
    yield c
    c.close()


def _run(c: EngineClient, segments, **req):
    req.setdefault("max_tokens", 16)
    req.setdefault("temperature", 0.0)
    text, done = "", None
    for ev in c.generate(req, segments):
        if hasattr(ev, "text"):
            text += ev.text
        else:
            done = ev.stats
    return text, done


def test_streams_a_reply_from_gemma(engine: EngineClient, gemma_path: Path) -> None:
    info = engine.load_blocking(str(gemma_path), PARAMS)
    assert info["architecture"] == "gemma3" and info["n_ctx"] == 1024
    text, st = _run(engine, [Segment("The capital of France is", False)], max_tokens=12)
    assert text.strip()
    assert st["completion_tokens"] == 12 and st["stop_reason"] == "length"
    assert st["prompt_tokens"] == st["prompt_tokens_evaluated"] > 3
    assert st["ttft_ms"] > 0 and st["gen_tok_per_s"] > 0


def test_follow_up_evaluates_only_new_tokens_and_matches_fresh_render(engine: EngineClient, gemma_path: Path) -> None:
    engine.load_blocking(str(gemma_path), PARAMS)
    first = [Segment("A short story about a lighthouse keeper:", False)]
    t1, s1 = _run(engine, first, conv_key="c", max_tokens=20)
    second = first + [Segment(t1 + "\nThe end. Another story:", False)]
    t2, s2 = _run(engine, second, conv_key="c", max_tokens=20)
    assert s2["prompt_tokens_evaluated"] < s2["prompt_tokens"] - s1["prompt_tokens"] + 12
    # Same greedy output as a fresh evaluation of the whole prompt.
    t2_fresh, s2_fresh = _run(engine, second, use_cache=False, max_tokens=20)
    assert s2_fresh["prompt_tokens_evaluated"] == s2_fresh["prompt_tokens"]
    assert t2 == t2_fresh


def test_switching_conversations_restores_a_snapshot(engine: EngineClient, gemma_path: Path) -> None:
    engine.load_blocking(str(gemma_path), PARAMS)
    a = [Segment("Conversation A talks about rivers and the sea." * 3, False)]
    b = [Segment("Conversation B is about mountains." * 3, False)]
    ta, sa = _run(engine, a, conv_key="a", max_tokens=8)
    _run(engine, b, conv_key="b", max_tokens=8)
    a2 = a + [Segment(ta + " More:", False)]
    ta2, sa2 = _run(engine, a2, conv_key="a", max_tokens=8)
    assert sa2["prompt_cache"] == "snapshot"
    assert sa2["prompt_tokens_evaluated"] <= sa2["prompt_tokens"] - sa["prompt_tokens"] + 1
    fresh, _ = _run(engine, a2, use_cache=False, max_tokens=8)
    assert ta2 == fresh
    st = engine.stats()
    assert 1 <= st["states_cached"] <= st["states_max_entries"]
    assert st["states_bytes"] <= st["states_budget_bytes"]


def test_cancel_stops_within_200_ms(engine: EngineClient, gemma_path: Path) -> None:
    engine.load_blocking(str(gemma_path), PARAMS)
    gen = engine.generate({"max_tokens": 900, "temperature": 0.8}, [Segment("Once upon a time", False)])
    n = 0
    t_cancel = None
    stats = None
    for ev in gen:
        if hasattr(ev, "text"):
            n += 1
            if n == 5:
                t_cancel = time.perf_counter()
                engine.cancel()
        else:
            stats = ev.stats
    assert t_cancel is not None and stats is not None
    assert time.perf_counter() - t_cancel < 0.2
    assert stats["stop_reason"] == "cancelled" and stats["completion_tokens"] < 900


def test_context_overflow_is_a_clear_error(engine: EngineClient, gemma_path: Path) -> None:
    engine.load_blocking(str(gemma_path), {**PARAMS, "n_ctx": 256})
    with pytest.raises(ContextOverflow, match="context holds 256"):
        _run(engine, [Segment("word " * 2000, False)])
    # the engine keeps working afterwards
    text, _ = _run(engine, [Segment("Hello", False)], max_tokens=3)
    assert text


def test_not_gguf_and_truncated_files_name_the_file(engine: EngineClient, tmp_path: Path, gemma_path: Path) -> None:
    bad = tmp_path / "notes.gguf"
    bad.write_bytes(b"this is not a model" * 100)
    with pytest.raises(ModelLoadError, match="notes.gguf"):
        engine.load_blocking(str(bad), PARAMS)
    cut = tmp_path / "cut.gguf"
    with open(gemma_path, "rb") as src:
        cut.write_bytes(src.read(5_000_000))
    with pytest.raises(ModelLoadError, match="cut.gguf"):
        engine.load_blocking(str(cut), PARAMS)
    assert not engine.alive  # a failed load leaves no worker behind


def test_killed_worker_is_reported_and_reloadable(engine: EngineClient, gemma_path: Path) -> None:
    engine.load_blocking(str(gemma_path), PARAMS)
    pid = engine.pid
    with pytest.raises(WorkerDied, match="killed"):
        for ev in engine.generate({"max_tokens": 500}, [Segment("Tell me a long story", False)]):
            if hasattr(ev, "text") and pid:
                os.kill(pid, signal.SIGKILL)
                pid = None
    assert not engine.loaded
    engine.load_blocking(str(gemma_path), PARAMS)
    assert _run(engine, [Segment("Hi", False)], max_tokens=2)[0]


def test_unload_gives_memory_back(engine: EngineClient, gemma_path: Path) -> None:
    engine.load_blocking(str(gemma_path), PARAMS)
    pid = engine.pid
    engine.unload()
    assert not engine.alive
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_plain_text_segments_never_become_control_tokens(engine: EngineClient, gptoss_mxfp4_path: Path) -> None:
    engine.load_blocking(str(gptoss_mxfp4_path), PARAMS)
    assert engine.count_tokens([Segment("<|end|>", True)]) == 1
    assert engine.count_tokens([Segment("<|end|>", False)]) > 1
    assert engine.count_tokens([Segment("<|start|>user<|message|>", False)]) > 3
    for special in ("<|start|>", "<|message|>", "<|end|>", "<|channel|>", "<|constrain|>", "<|return|>",
                    "<|call|>"):
        (control,) = engine.tokenize([Segment(special, True)])
        plain = engine.tokenize([Segment(f"user wrote {special} here", False)])
        assert control not in plain, special


def test_gptoss_generates_and_stops(engine: EngineClient, gptoss_path: Path) -> None:
    info = engine.load_blocking(str(gptoss_path), PARAMS)
    assert info["architecture"] == "gpt-oss"
    text, st = _run(engine, [Segment("<|start|>user<|message|>", True), Segment("hello", False),
                             Segment("<|end|><|start|>assistant", True)],
                    max_tokens=20, temperature=1.0, seed=3, stop_tokens=("<|return|>", "<|call|>"))
    assert st["completion_tokens"] <= 20
    assert st["stop_reason"] in ("stop", "length")


def test_stop_interrupts_prompt_processing(engine: EngineClient, gemma_path: Path) -> None:
    """A long prompt is being read (no token yet): Stop still ends the request at once."""
    import threading

    engine.load_blocking(str(gemma_path), {**PARAMS, "n_ctx": 8192, "n_batch": 2048, "n_ubatch": 2048})
    long_prompt = [Segment("The history of the lighthouse, chapter by chapter. " * 700, False)]
    timer = threading.Timer(0.3, engine.cancel)
    t0 = time.perf_counter()
    timer.start()
    stats = [ev.stats for ev in engine.generate({"max_tokens": 50}, long_prompt) if not hasattr(ev, "text")]
    took = time.perf_counter() - t0
    timer.join()
    assert stats and stats[0]["stop_reason"] == "cancelled" and stats[0]["completion_tokens"] == 0
    assert took < 0.3 + 0.5  # a full evaluation of this prompt takes several seconds here
    # the engine is usable afterwards, from a clean cache
    text, st = _run(engine, [Segment("Hello", False)], max_tokens=3)
    assert text and st["prompt_tokens_evaluated"] == st["prompt_tokens"]


def test_unknown_architecture_is_named(engine: EngineClient, tmp_path: Path) -> None:
    import gguf

    path = tmp_path / "exotic.gguf"
    w = gguf.GGUFWriter(str(path), "wizardnet")
    w.add_block_count(1)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with pytest.raises(ModelLoadError) as err:
        engine.load_blocking(str(path), PARAMS)
    assert "exotic.gguf" in str(err.value) and "wizardnet" in str(err.value)
    assert "architecture" in str(err.value)
