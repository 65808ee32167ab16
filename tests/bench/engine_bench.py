"""Hearth's engine (worker process + harmony parser) against llama-cpp-python called directly.

Both run in a fresh spawned process with the same file, threads, context and
greedy sampling, alternated so that machine noise hits both; the median of the
rounds is reported.
"""

from __future__ import annotations

import multiprocessing as mp
import statistics
import time
from pathlib import Path
from typing import Any

from app.engine.client import EngineClient
from app.harmony.parser import HarmonyStreamParser
from app.prompt import Segment

PROMPT_WORDS = 200


def prompt_segments(harmony: bool) -> list[Segment]:
    words = " ".join(f"item{i % 50} is listed" for i in range(PROMPT_WORDS // 3))
    if harmony:
        return [Segment("<|start|>user<|message|>", True), Segment(f"Summarise this list: {words}", False),
                Segment("<|end|><|start|>assistant", True)]
    return [Segment(f"Summarise this list: {words}\n", False)]


def timed_generate(eng: EngineClient, req: dict[str, Any], segments: list[Segment],
                   parser: HarmonyStreamParser | None = None) -> tuple[float, float, float, dict[str, Any]]:
    """One request as the app sees it: (sent, first piece received, done, the reply's stats)."""
    t0 = time.perf_counter()
    t_first = None
    stats: dict[str, Any] = {}
    for ev in eng.generate(req, segments):
        if hasattr(ev, "text"):
            if parser is not None:
                parser.feed(ev.text)
            if t_first is None:
                t_first = time.perf_counter()
        else:
            stats = ev.stats
    t_end = time.perf_counter()
    assert t_first is not None, "no piece arrived"
    return t0, t_first, t_end, stats


def _raw_run(path: str, params: dict[str, Any], texts: list[tuple[str, bool]], n_gen: int, q: Any) -> None:
    """llama-cpp-python directly: Llama.generate, the library's own token loop."""
    import llama_cpp

    llm = llama_cpp.Llama(model_path=path, verbose=False, **params)
    toks: list[int] = []
    if llama_cpp.llama_vocab_get_add_bos(llama_cpp.llama_model_get_vocab(llm.model)):
        toks.append(llm.token_bos())
    for text, special in texts:
        toks += llm.tokenize(text.encode(), add_bos=False, special=special)
    results = []
    for _ in range(2):
        llm.reset()
        t0 = time.perf_counter()
        t_first = None
        n = 0
        for _tok in llm.generate(toks, temp=0.0, top_k=1, top_p=1.0, min_p=0.0, repeat_penalty=1.0, reset=True):
            n += 1
            piece = llm.detokenize([_tok], special=True)  # the text a caller would show
            del piece
            if t_first is None:
                t_first = time.perf_counter()
            if n >= n_gen:
                break
        t_end = time.perf_counter()
        assert t_first is not None
        results.append({
            "ttft_ms": (t_first - t0) * 1000,
            "prompt_tok_per_s": len(toks) / (t_first - t0),
            "gen_tok_per_s": (n - 1) / (t_end - t_first),
            "prompt_tokens": len(toks),
        })
    q.put(results[-1])  # the second run: caches warm, like Hearth's measured run


def raw_engine(path: str, params: dict[str, Any], segments: list[Segment], n_gen: int) -> dict[str, float]:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_raw_run, args=(path, params, [(s.text, s.special) for s in segments], n_gen, q))
    p.start()
    res = q.get(timeout=1800)
    p.join(60)
    return res


def hearth_engine(path: str, params: dict[str, Any], segments: list[Segment], n_gen: int,
                  harmony: bool) -> dict[str, float]:
    eng = EngineClient()
    try:
        eng.load_blocking(path, params)
        out = {}
        for _ in range(2):
            req = {"max_tokens": n_gen, "temperature": 0.0, "top_k": 1, "top_p": 1.0, "min_p": 0.0,
                   "use_cache": False, "ignore_eos": True}
            t0, t_first, t_end, stats = timed_generate(eng, req, segments,
                                                       HarmonyStreamParser() if harmony else None)
            n = int(stats["completion_tokens"])  # pieces arrive batched; count tokens, not messages
            assert n == n_gen, f"generated {n} of {n_gen} tokens"
            out = {
                "ttft_ms": (t_first - t0) * 1000,
                "prompt_tok_per_s": stats["prompt_tokens"] / (t_first - t0),
                "gen_tok_per_s": (n - 1) / (t_end - t_first),
                "prompt_tokens": stats["prompt_tokens"],
                "tokens": n,
            }
        return out
    finally:
        eng.close()


def engine_params(n_ctx: int, n_threads: int, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The load parameters every engine comparison uses (flash attention, batch 512)."""
    params = {"n_ctx": n_ctx, "n_threads": n_threads, "n_threads_batch": n_threads, "flash_attn": True,
              "swa_full": False, "n_batch": 512, "n_ubatch": 512}
    params.update(extra or {})
    return params


def hearth_passes(path: str, params: dict[str, Any], segments: list[Segment], n_gen: int, reps: int,
                  harmony: bool) -> dict[str, Any]:
    """One engine load: the prompt evaluated in full, then ``reps`` generations of ``n_gen`` tokens after it.

    Like llama-bench's runs: a warm-up pass first (a prompt as long, one token);
    then the prompt into an empty cache (the prompt figure, P / time to first
    token), which leaves the prompt's state cached; each generation pass restores
    that state and evaluates one token before generating, so every pass generates
    at the same depth as llama-bench's ``-d P``. Generation is timed as the app
    sees it: from the first piece received to the end of the request.
    """
    eng = EngineClient()
    base = {"temperature": 0.0, "top_k": 1, "top_p": 1.0, "min_p": 0.0, "ignore_eos": True}
    try:
        eng.load_blocking(path, params)
        # The warm-up prompt starts differently, so the measured prompt shares nothing with
        # the cache but the BOS token (a model that has one).
        warm = [Segment("Warm-up. " + segments[0].text, segments[0].special), *segments[1:]]
        list(eng.generate({**base, "max_tokens": 1, "use_cache": False}, warm))
        gen, overhead = [], []
        prompt_tps = 0.0
        prompt_tokens = 0
        for i in range(reps + 1):
            req = {**base, "max_tokens": 1 if i == 0 else n_gen, "use_cache": True, "conv_key": "bench"}
            t0, t_first, t_end, stats = timed_generate(eng, req, segments,
                                                       HarmonyStreamParser() if harmony else None)
            if i == 0:
                prompt_tokens = int(stats["prompt_tokens"])
                assert stats["prompt_tokens_evaluated"] >= prompt_tokens - 1, stats
                prompt_tps = int(stats["prompt_tokens_evaluated"]) / (t_first - t0)
                continue
            assert stats["prompt_tokens_evaluated"] == 1, f"the prompt's state was not reused: {stats}"
            assert int(stats["completion_tokens"]) == n_gen
            gen.append((n_gen - 1) / (t_end - t_first))
            overhead.append(float(stats["gen_overhead_ms"]))
        return {"prompt_tokens": prompt_tokens, "prompt_tok_per_s": prompt_tps, "gen_tok_per_s": gen,
                "gen_overhead_ms": overhead}
    finally:
        eng.close()


def compare(path: Path, *, n_ctx: int, n_threads: int, n_gen: int, rounds: int, harmony: bool,
            extra_params: dict[str, Any] | None = None) -> dict[str, Any]:
    params = engine_params(n_ctx, n_threads, extra_params)
    segs = prompt_segments(harmony)
    raws, ours = [], []
    for _ in range(rounds):
        raws.append(raw_engine(str(path), params, segs, n_gen))
        ours.append(hearth_engine(str(path), params, segs, n_gen, harmony))

    def med(rows: list[dict[str, float]], key: str) -> float:
        return statistics.median(r[key] for r in rows)

    out: dict[str, Any] = {"model": path.name, "n_ctx": n_ctx, "threads": n_threads, "gen_tokens": n_gen,
                           "prompt_tokens": ours[0]["prompt_tokens"], "rounds": rounds}
    for key in ("gen_tok_per_s", "prompt_tok_per_s", "ttft_ms"):
        out[key] = {"hearth": med(ours, key), "baseline": med(raws, key),
                    "ratio": med(ours, key) / med(raws, key)}
    out["ttft_ms"]["delta_ms"] = out["ttft_ms"]["hearth"] - out["ttft_ms"]["baseline"]
    return out
