"""Sampling gpt-oss's way (temperature 1, the whole distribution): Hearth's NumPy sampler vs llama.cpp's chain.

Same process, same logits (gemma's 262k-entry vocabulary after a short prompt), alternating
blocks of calls; the figure is milliseconds per sampled token (lower is better). llama-bench
does not sample at all, so this cost is part of the generation gap to it.
"""

from __future__ import annotations

import multiprocessing as mp
import statistics
import time
from pathlib import Path
from typing import Any


def _measure(path: str, q: Any) -> None:
    import llama_cpp

    from app.engine import llama_internals as internals
    from app.engine.sampling import FullSampler

    llm = llama_cpp.Llama(model_path=path, n_ctx=256, n_threads=2, verbose=False)
    llm.eval(llm.tokenize(b"Once upon a time there was", add_bos=True))
    chain = internals.new_sampler(llm, top_k=0, top_p=1.0, min_p=0.0, temp=1.0, repeat_penalty=1.0)
    n_vocab = llm.n_vocab()
    full = FullSampler(n_vocab, 1.0, seed=1)
    runs: dict[str, list[float]] = {"chain": [], "hearth": []}
    calls = {"chain": lambda: internals.sample(llm, chain),
             "hearth": lambda: full(internals.last_logits(llama_cpp, llm, n_vocab))}
    for _ in range(5):
        for name, fn in calls.items():
            t0 = time.perf_counter()
            for _ in range(100):
                fn()
            runs[name].append((time.perf_counter() - t0) / 100 * 1000)
    q.put({k: statistics.median(v) for k, v in runs.items()} | {"n_vocab": n_vocab})


def sampling_part(b: Any, gemma: Path) -> None:
    def run() -> dict[str, Any]:
        ctx = mp.get_context("spawn")
        q = ctx.Queue()
        p = ctx.Process(target=_measure, args=(str(gemma), q))
        p.start()
        res = q.get(timeout=600)
        p.join(30)
        return res

    r = b.section("sampling the whole distribution (temperature 1), gemma's 262k vocabulary", run)
    if r:
        b.add("full-distribution sampling per token (Hearth vs llama.cpp chain)", r["hearth"], r["chain"], "ms",
              "<= llama.cpp", False, r["hearth"] <= r["chain"])
