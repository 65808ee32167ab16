"""A 100-turn chat at a 2k context: prompt tokens evaluated per turn, chunked trimming vs per-turn trimming.

Hearth moves the model's view on in chunks (after a trim the prompt takes at most half
the context), so the follow-up state cache, which needs an unchanged prefix, is
rebuilt only at a trim. The baseline trims just enough on every turn that needs it
(a sliding window, what a context shift without a cache amounts to): from the first
trim on, nearly every turn re-reads its whole prompt. Same engine, model, seed and
messages in one run; the figure is mean prompt tokens evaluated per turn (lower is
better).
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path
from typing import Any

import app.documents  # noqa: F401 - the full schema (conversation options)
from app import context_window as cw
from app.chat import ChatSession, ReplyFailed, ReplyFinished, SamplingSettings
from app.engine.client import EngineClient
from app.storage import ConversationStore, Database

TURNS = 100
N_CTX = 2048


def _chat(model: Path, target_share: float, turns: int = TURNS) -> dict[str, Any]:
    saved = cw.TRIM_TARGET_SHARE
    cw.TRIM_TARGET_SHARE = target_share
    engine = EngineClient()
    try:
        engine.load_blocking(str(model), {"n_ctx": N_CTX, "n_threads": 2, "flash_attn": True, "swa_full": False})
        with tempfile.TemporaryDirectory(prefix="hearth-ctx-bench-") as d:
            db = Database(Path(d) / "h.db")
            store = ConversationStore(db)
            s = ChatSession(store, engine, sampling=SamplingSettings(temperature=1.0, max_tokens=40, seed=11))
            conv = store.create()
            evaluated, prompt, failed = [], [], 0
            for i in range(turns):
                text = f"Turn {i}: the numbers " + " ".join(str(i * 13 + k) for k in range(30))
                evs = list(s.send(conv.id, text))
                done = next((e for e in evs if isinstance(e, ReplyFinished)), None)
                if done is None or any(isinstance(e, ReplyFailed) for e in evs):
                    failed += 1
                    continue
                evaluated.append(done.stats["prompt_tokens_evaluated"])
                prompt.append(done.stats["prompt_tokens"])
            trims = sum(1 for m in store.messages(conv.id) if m.role == "context")
            db.close()
    finally:
        engine.close()
        cw.TRIM_TARGET_SHARE = saved
    return {"mean_evaluated": statistics.mean(evaluated), "mean_prompt": statistics.mean(prompt),
            "trims": trims, "failed_turns": failed}


def context_part(b: Any, tiny: Path) -> None:
    def run() -> dict[str, Any]:
        return {"chunked": _chat(tiny, cw.TRIM_TARGET_SHARE), "per_turn": _chat(tiny, 1.0)}

    r = b.section(f"long chats: {TURNS} turns at a {N_CTX:,}-token context (gpt-oss tiny)", run)
    if r:
        c, p = r["chunked"], r["per_turn"]
        print(f"   chunked: {c['trims']} trims, {c['failed_turns']} failed turns; "
              f"per-turn: {p['trims']} trims, {p['failed_turns']} failed turns")
        b.add("long chat: prompt tokens evaluated per turn", c["mean_evaluated"], p["mean_evaluated"], "tok",
              "< 0.5x per-turn trimming", False, c["mean_evaluated"] < 0.5 * p["mean_evaluated"]
              and c["failed_turns"] == 0)
