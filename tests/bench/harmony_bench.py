"""The harmony stream parser's speed (``make bench``)."""

from __future__ import annotations

import time

from app.harmony.parser import HarmonyStreamParser


def bench_parser(n_tokens: int = 20000) -> float:
    """Microseconds per token for a typical stream fed one token-sized piece at a time."""
    words = ["The", " user", " asks", " about", " the", " weather", ".", " We", " need", " to",
             " answer", " 2", "+", "2", "=", "4", "\n", " <", "b", ">", " x", " |", " done"]
    pieces = ["<|channel|>", "analysis", "<|message|>"]
    half = max(1, n_tokens // 2)
    pieces += [words[k % len(words)] for k in range(half)]
    pieces += ["<|end|>", "<|start|>", "assistant", "<|channel|>", "final", "<|message|>"]
    pieces += [words[k % len(words)] for k in range(n_tokens - half)]
    pieces.append("<|return|>")
    parser = HarmonyStreamParser()
    feed = parser.feed
    t0 = time.perf_counter()
    for piece in pieces:
        feed(piece)
    parser.finish()
    return (time.perf_counter() - t0) / len(pieces) * 1e6
