"""A scripted engine for UI tests: replays harmony text as if a model wrote it.

Only for driving the UI; every feature also has a test through the real engine.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

from app.engine import protocol as P
from app.prompt import Segment, prompt_text


class ScriptedEngine:
    def __init__(self, scripts: list[str], *, piece_delay: float = 0.01, architecture: str = "gpt-oss",
                 n_ctx: int = 8192) -> None:
        self.scripts = list(scripts)
        self.piece_delay = piece_delay
        self.n_ctx = n_ctx
        self.model_info: dict[str, Any] | None = {
            "architecture": architecture, "name": "scripted", "n_ctx": n_ctx, "path": "/scripted.gguf",
            "chat_template": None, "bos_token": "", "eos_token": "",
        }
        self.prompts: list[str] = []
        self._cancel = threading.Event()
        self.last_exit = None

    @property
    def loaded(self) -> bool:
        return self.model_info is not None

    alive = loaded

    def count_tokens(self, segments: list[Segment]) -> int:
        """About four characters a token, as o200k averages on English prose (a stand-in, not a tokenizer)."""
        return self.count_tokens_of_text(prompt_text(segments))

    @staticmethod
    def count_tokens_of_text(text: str) -> int:
        return len(text) // 4 + 1

    def generate(self, req: dict[str, Any], segments: list[Segment]) -> Iterator[Any]:
        self._cancel.clear()
        self.prompts.append(prompt_text(segments))
        n_prompt = self.count_tokens(segments)
        script = self.scripts.pop(0) if self.scripts else "<|channel|>final<|message|>(no more script)<|return|>"
        stop_at = min((script.find(t) for t in ("<|return|>", "<|call|>") if t in script), default=-1)
        body = script if stop_at < 0 else script[:stop_at]
        pieces = [body[i:i + 3] for i in range(0, len(body), 3)]
        n = 0
        reason = "stop" if stop_at >= 0 else "length"
        for piece in pieces:
            if self._cancel.is_set():
                reason = "cancelled"
                break
            time.sleep(self.piece_delay)
            n += 1
            yield P.TokenPiece(0, piece)
        yield P.GenerationDone(0, {"prompt_tokens": n_prompt, "prompt_tokens_evaluated": n_prompt,
                                   "completion_tokens": n, "ttft_ms": 1.0, "gen_tok_per_s": 50.0, "total_s": 0.1,
                                   "stop_reason": reason, "raw": script, "n_ctx": self.n_ctx,
                                   "context_used": n_prompt + n})

    def cancel(self) -> None:
        self._cancel.set()

    def unload(self) -> None:
        self.model_info = None

    def close(self) -> None:
        self.model_info = None

    def save_states(self, *a: Any, **k: Any) -> int:
        return 0

    def stats(self) -> dict[str, Any]:
        return {"rss_bytes": 0, "peak_rss_bytes": 0, "states_cached": 0, "states_bytes": 0,
                "states_budget_bytes": 1 << 30, "states_max_entries": 8}
