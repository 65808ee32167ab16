"""Follow-up turns cost only their new tokens (issue: conversations stay fast as they grow)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from app.chat import ChatSession, ReplyFinished, SamplingSettings
from app.engine.client import EngineClient
from app.storage import ConversationStore, Database

PARAMS = {"n_ctx": 4096, "n_threads": 2, "flash_attn": True, "swa_full": False}


def _turn(session: ChatSession, events) -> dict:
    done = [e for e in events if isinstance(e, ReplyFinished)]
    assert done, "the turn finished"
    return done[-1].stats


@pytest.fixture
def setup(tmp_path: Path, request):
    db = Database(tmp_path / "h.db")
    store = ConversationStore(db)
    eng = EngineClient()
    yield store, eng
    eng.close()
    db.close()


@pytest.mark.parametrize("model", ["gemma_path", "gptoss_mxfp4_path"])
def test_turns_regenerate_and_edit_reuse_the_prefix(setup, request, model: str) -> None:
    store, eng = setup
    path = request.getfixturevalue(model)
    eng.load_blocking(str(path), PARAMS)
    s = ChatSession(store, eng, sampling=SamplingSettings(temperature=0.0, max_tokens=24, seed=1))
    conv = store.create()
    long_text = " ".join(f"fact{i}" for i in range(120))
    t1 = _turn(s, s.send(conv.id, long_text))
    t2 = _turn(s, s.send(conv.id, "second " + long_text))
    t3 = _turn(s, s.send(conv.id, "third " + long_text))
    assert t1["prompt_tokens_evaluated"] == t1["prompt_tokens"]
    for prev, cur in ((t1, t2), (t2, t3)):
        assert cur["prompt_tokens_evaluated"] <= cur["prompt_tokens"] - prev["prompt_tokens"] + 1
    # Regenerate: the same prompt as turn 3 -> only the last token is re-evaluated.
    r = _turn(s, s.regenerate(conv.id))
    assert r["prompt_tokens"] == t3["prompt_tokens"] and r["prompt_tokens_evaluated"] <= 1
    # Edit the second user message: reuse up to the end of turn 1's prompt.
    second = [m for m in store.messages(conv.id) if m.role == "user"][1]
    e = _turn(s, s.edit_and_resend(conv.id, second.id, "edited " + long_text))
    assert e["prompt_tokens_evaluated"] < e["prompt_tokens"] - t1["prompt_tokens"] + 2


@pytest.mark.parametrize("model", ["gemma_path", "gptoss_f32_path"])
def test_reuse_gives_exactly_the_fresh_output(setup, request, model: str) -> None:
    store, eng = setup
    path = request.getfixturevalue(model)
    eng.load_blocking(str(path), PARAMS)
    s = ChatSession(store, eng, sampling=SamplingSettings(temperature=0.0, max_tokens=20, seed=1))
    conv = store.create()
    _turn(s, s.send(conv.id, "Tell me about the sea. " * 10))
    cached = _turn(s, s.send(conv.id, "And about rivers? " * 10))
    assert cached["prompt_tokens_evaluated"] < cached["prompt_tokens"]
    cached_text = store.messages(conv.id)[-1].content
    # The same conversation, evaluated from scratch in a fresh worker.
    eng.load_blocking(str(path), PARAMS)
    fresh = _turn(s, s.regenerate(conv.id))
    assert fresh["prompt_tokens_evaluated"] == fresh["prompt_tokens"]
    assert store.messages(conv.id)[-1].content == cached_text


def test_states_saved_on_exit_are_used_and_mismatches_discarded(setup, tmp_path: Path, gemma_path: Path) -> None:
    store, eng = setup
    states = tmp_path / "states"
    model = tmp_path / "model.gguf"
    os.link(gemma_path, model) if hasattr(os, "link") else model.write_bytes(gemma_path.read_bytes())
    eng.load_blocking(str(model), PARAMS, states_dir=str(states))
    s = ChatSession(store, eng, sampling=SamplingSettings(temperature=0.0, max_tokens=12, seed=1))
    conv = store.create()
    t1 = _turn(s, s.send(conv.id, "A long first message about gardens. " * 20))
    assert eng.save_states(str(states), [f"conv-{conv.id}"], 64 << 20) == 1
    # A new worker (the app restarted) continues without re-evaluating the conversation.
    eng.load_blocking(str(model), PARAMS, states_dir=str(states))
    t2 = _turn(s, s.send(conv.id, "short follow-up"))
    assert t2["prompt_cache"] == "snapshot"
    assert t2["prompt_tokens_evaluated"] <= t2["prompt_tokens"] - t1["prompt_tokens"] + 1
    # Too big for the cap: not saved.
    assert eng.save_states(str(states), [f"conv-{conv.id}"], 1000) == 0
    assert eng.save_states(str(states), [f"conv-{conv.id}"], 64 << 20) == 1
    # The model file changed: the saved state is discarded, never used.
    os.utime(model, (time.time() + 100, time.time() + 100))
    eng.load_blocking(str(model), PARAMS, states_dir=str(states))
    t3 = _turn(s, s.send(conv.id, "after the model changed"))
    assert t3["prompt_cache"] == "none" and t3["prompt_tokens_evaluated"] == t3["prompt_tokens"]
    assert list(states.glob("*.state")) == []


def test_state_cache_respects_its_bounds(setup, gemma_path: Path) -> None:
    store, eng = setup
    eng.load_blocking(str(gemma_path), PARAMS, state_max_entries=3, state_budget_bytes=64 << 20)
    s = ChatSession(store, eng, sampling=SamplingSettings(temperature=0.0, max_tokens=4))
    convs = [store.create() for _ in range(5)]
    for c in convs:
        _turn(s, s.send(c.id, f"conversation {c.id} " * 30))
    st = eng.stats()
    assert st["states_cached"] == 3 and st["states_bytes"] <= 64 << 20
    # The most recent conversations are kept: switching back to one costs only new tokens.
    back = _turn(s, s.send(convs[-2].id, "back again"))
    assert back["prompt_cache"] == "snapshot"
    old = _turn(s, s.send(convs[0].id, "the oldest one"))
    assert old["prompt_cache"] in ("none", "live") and old["prompt_tokens_evaluated"] > 30


def test_attached_documents_stay_cached_across_turns(setup, tmp_path: Path, gptoss_mxfp4_path: Path) -> None:
    """Whole documents sit right after the system prompt, so turn 2 does not re-read them."""
    from app.documents.chat_support import make_extra_context
    from app.documents.index import DocumentIndex
    from app.harmony.tools import default_registry

    store, eng = setup
    eng.load_blocking(str(gptoss_mxfp4_path), PARAMS)
    doc = tmp_path / "notes.txt"
    doc.write_text("The boiler was serviced on 3 March. " * 40)
    conv = store.create()
    index = DocumentIndex(store.db)
    for _ev in index.ingest(doc, conv.id):
        pass
    tools = default_registry()
    extra = make_extra_context(index, conv.id, budget_tokens=3000, tools=tools)
    s = ChatSession(store, eng, tools=tools, extra_context=extra,
                    sampling=SamplingSettings(temperature=0.0, max_tokens=12, seed=1))
    t1 = _turn(s, s.send(conv.id, "When was the boiler serviced?"))
    assert extra.last_mode == "whole" and t1["citations"][0]["file"] == "notes.txt"
    t2 = _turn(s, s.send(conv.id, "And who did it?"))
    assert t2["prompt_tokens_evaluated"] <= t2["prompt_tokens"] - t1["prompt_tokens"] + 1
