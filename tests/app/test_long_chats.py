"""Long chats never hit a wall (issue 14): the view moves on in chunks, or is summarised.

Through the real engine on the tiny gpt-oss file and gemma, and through `hearth chat`.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

import app.documents  # noqa: F401 - the full schema (the conversation options column)
from app import context_window as cw
from app.chat import ChatSession, ContextTrimmed, ReplyFailed, ReplyFinished, SamplingSettings, Summarizing
from app.engine.client import EngineClient
from app.storage import ConversationStore, Database
from app.storage.conversations import CONTEXT_ROLE

ROOT = Path(__file__).resolve().parents[2]


def _params(n_ctx: int) -> dict:
    return {"n_ctx": n_ctx, "n_threads": 2, "flash_attn": True, "swa_full": False}


@pytest.fixture
def store(tmp_path: Path):
    db = Database(tmp_path / "h.db")
    yield ConversationStore(db)
    db.close()


@pytest.fixture
def engine():
    e = EngineClient()
    yield e
    e.close()


def _run(events) -> tuple[list, ReplyFinished | None, ReplyFailed | None]:
    evs = list(events)
    done = next((e for e in evs if isinstance(e, ReplyFinished)), None)
    failed = next((e for e in evs if isinstance(e, ReplyFailed)), None)
    return evs, done, failed


def _question(i: int) -> str:
    return f"Question {i}: what do you make of the numbers " + " ".join(str(i * 7 + k) for k in range(30))


def test_a_hundred_turns_at_a_2k_context_keep_working(store: ConversationStore, engine: EngineClient,
                                                       gptoss_mxfp4_path: Path) -> None:
    engine.load_blocking(str(gptoss_mxfp4_path), _params(2048))
    s = ChatSession(store, engine, sampling=SamplingSettings(temperature=1.0, max_tokens=40, seed=3))
    conv = store.create()
    trims = 0
    for i in range(100):
        evs, done, failed = _run(s.send(conv.id, _question(i)))
        assert failed is None, f"turn {i}: {failed.error}"
        assert done is not None
        st = done.stats
        assert st["prompt_tokens"] + 1 <= 2048
        markers = [e for e in evs if isinstance(e, ContextTrimmed)]
        trims += len(markers)
        for e in markers:
            # A marker starts the view at a whole turn, and everything before it is out of view.
            msgs = store.messages(conv.id)
            start = e.marker.stats["view_from_seq"]
            assert next(m for m in msgs if m.seq == start).role == "user"
            assert e.marker.stats["dropped_messages"] == sum(1 for m in msgs if m.seq < start and m.role != CONTEXT_ROLE)
    msgs = store.messages(conv.id)
    assert sum(1 for m in msgs if m.role == "user") == 100  # nothing the user wrote was lost
    # In chunks: each trim frees about half the context, so trims are rare.
    assert 3 <= trims <= 100 // 4, trims
    assert done.stats["dropped_messages"] == cw.out_of_view(msgs, cw.current_view(msgs).start_seq) > 0


def test_summary_mode_stores_the_summary_and_the_model_sees_it(store: ConversationStore, engine: EngineClient,
                                                                gemma_path: Path) -> None:
    engine.load_blocking(str(gemma_path), _params(1024))
    s = ChatSession(store, engine, sampling=SamplingSettings(temperature=0.0, max_tokens=24, seed=1))
    conv = store.create(options={"overflow": "summarize"})
    seen: list[str] = []
    real_generate = engine.generate

    def recording(req, segments):
        seen.append("".join(seg.text for seg in segments))
        return real_generate(req, segments)

    engine.generate = recording  # type: ignore[method-assign]
    summarized = None
    for i in range(40):
        evs, done, failed = _run(s.send(conv.id, f"My cat number {i} is called Whisker{i}. " + _question(i)))
        assert failed is None, failed.error
        trimmed = [e for e in evs if isinstance(e, ContextTrimmed)]
        if trimmed:
            assert any(isinstance(e, Summarizing) for e in evs)
            summarized = trimmed[0].marker
            break
    assert summarized is not None, "the chat outgrew 1,024 tokens"
    assert summarized.stats["kind"] == "summary" and summarized.content.strip()
    stored = [m for m in store.messages(conv.id) if m.role == CONTEXT_ROLE]
    assert stored and stored[-1].content == summarized.content
    # The reply after the trim was generated from a prompt holding the summary, not the old turns.
    assert summarized.content.strip() in seen[-1] and cw.SUMMARY_HEADING in seen[-1]
    assert "Whisker0." not in seen[-1]
    # Edited by the user: the next prompt holds the edited text.
    store.update_message(summarized.id, content="The user has cats named Whisker.")
    _run(s.send(conv.id, "How many cats?"))
    assert "The user has cats named Whisker." in seen[-1]


def test_a_single_message_too_long_is_refused_before_anything_is_sent(
        store: ConversationStore, engine: EngineClient, gptoss_f32_path: Path) -> None:
    engine.load_blocking(str(gptoss_f32_path), _params(1024))
    s = ChatSession(store, engine, sampling=SamplingSettings(max_tokens=64))
    conv = store.create()
    calls = []
    engine.generate = lambda *a, **k: calls.append(a) or iter(())  # type: ignore[method-assign]
    evs, done, failed = _run(s.send(conv.id, "word " * 3000))
    assert done is None and failed is not None and failed.kind == "context" and failed.message_id is None
    assert "1,024" in failed.error and "tokens" in failed.error and "document" in failed.error
    assert not calls  # nothing reached the engine
    with pytest.raises(KeyError):
        store.get(conv.id)  # the chat made for it is not left behind, empty


def _hearth(*args: str, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ui.shell.entry", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


@pytest.mark.slow
def test_sixty_scripted_turns_at_ctx_2048_never_fail_and_rarely_reread(tmp_path: Path,
                                                                       gptoss_mxfp4_path: Path) -> None:
    prompts = [_question(i) for i in range(60)]
    r = _hearth("--data-dir", str(tmp_path), "chat", "--model", str(gptoss_mxfp4_path), "--ctx", "2048",
                "--max-tokens", "48", "--seed", "5", "--json", *prompts)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(rows) == 60
    for row in rows:
        assert {"context_used", "n_ctx", "dropped_messages", "prompt_tokens_evaluated"} <= set(row)
        assert row["n_ctx"] == 2048 and row["context_used"] <= 2048
    assert rows[-1]["dropped_messages"] > 0
    dropped = [row["dropped_messages"] for row in rows]
    assert dropped == sorted(dropped)  # the view only moves forward
    ratios = [row["prompt_tokens_evaluated"] / row["prompt_tokens"] for row in rows[9:]]
    assert statistics.mean(ratios) < 0.5, ratios


def test_cli_refuses_an_oversized_message_and_takes_presets(tmp_path: Path, gptoss_f32_path: Path) -> None:
    r = _hearth("--data-dir", str(tmp_path), "chat", "--model", str(gptoss_f32_path), "--ctx", "512",
                "--json", "word " * 2000)
    assert r.returncode == 2
    assert "context holds 512" in r.stderr and "document" in r.stderr
    r = _hearth("--data-dir", str(tmp_path), "chat", "--model", str(gptoss_f32_path), "--preset", "nope", "hi")
    assert r.returncode == 2 and "no preset named 'nope'" in r.stderr and "Quick answers" in r.stderr
    r = _hearth("--data-dir", str(tmp_path), "chat", "--model", str(gptoss_f32_path), "--ctx", "2048",
                "--max-tokens", "8", "--preset", "quick answers", "--overflow", "summarize", "--json", "hi")
    assert r.returncode == 0, r.stderr
    conv_id = json.loads(r.stdout.splitlines()[-1])["conversation_id"]
    from app.context import AppContext

    ctx = AppContext.create(tmp_path)
    try:
        conv = ctx.store.get(conv_id)
        assert conv.reasoning_effort == "low" and conv.system_prompt.startswith("Answer briefly")
        assert conv.options["preset"] == "Quick answers" and conv.options["overflow"] == "summarize"
        assert conv.options["max_tokens"] == 1024
    finally:
        ctx.close()


def test_the_meter_counts_instructions_and_tools_before_the_first_message(
        store: ConversationStore, engine: EngineClient, gptoss_mxfp4_path: Path) -> None:
    """A new chat already holds its instructions and tool definitions: base_tokens counts them, and the
    first turn's prompt is that plus the message."""
    from app.harmony.tools import default_registry

    engine.load_blocking(str(gptoss_mxfp4_path), _params(2048))
    sampling = SamplingSettings(temperature=1.0, max_tokens=8, seed=1)
    bare = ChatSession(store, engine, sampling=sampling).base_tokens(None)
    s = ChatSession(store, engine, tools=default_registry(), sampling=sampling)
    with_tools = s.base_tokens(None)
    assert bare is not None and with_tools is not None
    assert 0 < bare < with_tools
    conv = store.create()
    assert s.base_tokens(conv.id) == with_tools
    _, done, failed = _run(s.send(conv.id, "hi"))
    assert failed is None and done is not None
    # The first prompt: the same start, then "<|start|>user<|message|>hi<|end|>" and the reply's header.
    assert with_tools < done.stats["prompt_tokens"] <= with_tools + 12
    store.set_options(conv.id, tools=False)
    assert s.base_tokens(conv.id) == bare
    store.update(conv.id, system_prompt="Answer in French. " * 20)
    assert s.base_tokens(conv.id) > bare + 60  # the chat's own instructions count too
