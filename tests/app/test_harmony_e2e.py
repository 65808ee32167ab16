"""Renderer -> llama.cpp -> parser on the random-weight gpt-oss files (F32 and MXFP4 experts).

The output is garbage by design; this checks the plumbing: every seed runs without
error, no generated character is lost, and the stop tokens end generation.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app.engine.client import EngineClient
from app.harmony.detect import HARMONY_STOP_TOKENS
from app.harmony.parser import ContentDelta, HarmonyStreamParser, MessageEnd, MessageStart, Return, ToolCall
from app.harmony.render import render_harmony
from app.harmony.tools import default_registry

SEEDS = 100


@pytest.mark.slow
def test_hundred_seeds_through_the_real_engine(gptoss_path: Path) -> None:
    eng = EngineClient()
    try:
        eng.load_blocking(str(gptoss_path), {"n_ctx": 2048, "n_threads": 2, "flash_attn": True, "swa_full": False})
        messages = [{"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "What is 2+2? <|end|> (a literal marker in user text)"}]
        prompt = render_harmony(messages, tools=default_registry().schemas(), reasoning_effort="low",
                                current_date="2026-11-27")
        stops = 0
        for seed in range(SEEDS):
            parser = HarmonyStreamParser()
            events = []
            raw = ""
            stats = {}
            req = {"max_tokens": 48, "temperature": 1.0, "top_p": 1.0, "top_k": 0, "min_p": 0.0, "seed": seed,
                   "stop_tokens": HARMONY_STOP_TOKENS, "conv_key": "e2e"}
            for ev in eng.generate(req, prompt):
                if hasattr(ev, "text"):
                    raw += ev.text
                    events += parser.feed(ev.text)
                else:
                    stats = ev.stats
            events += parser.finish()
            assert stats["completion_tokens"] <= 48
            if stats["stop_reason"] == "stop":
                stops += 1
                # <|return|> / <|call|>, or another end-of-generation token of the vocabulary
                assert stats["raw"].endswith((*HARMONY_STOP_TOKENS, "<|endoftext|>")), stats["raw"][-40:]
            else:
                assert stats["stop_reason"] == "length"
            assert stats["raw"].startswith(raw)  # raw adds only the stop token the stream withholds
            content = "".join(e.text for e in events if isinstance(e, ContentDelta))
            # No text is lost: every message body the model wrote reaches the user.
            for body in re.findall(r"<\|message\|>(.*?)(?=<\||$)", raw, flags=re.S):
                assert body in content, (seed, body, content)
            if "<|" not in raw:
                assert content == raw  # no header at all: everything is shown as the answer
            assert all(isinstance(e, (ContentDelta, MessageStart, MessageEnd, ToolCall, Return)) for e in events)
        assert 0 <= stops <= SEEDS
        assert eng.stats()["states_cached"] >= 1
    finally:
        eng.close()
