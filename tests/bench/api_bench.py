"""The local API server against the engine called directly: streamed tok/s and time to first token.

One engine, loaded once; each round streams the same kind of request both ways
(greedy, ``ignore_eos`` so both generate exactly ``n_gen`` tokens, a fresh prompt
each time so neither gains from the prompt cache). The API side is what a client
sees: an HTTP request to ``/v1/chat/completions`` with ``stream: true`` on
127.0.0.1, timed from sending the request to the first content chunk and to the
last one. Medians of the rounds are reported.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

import httpx2 as httpx

from app.chat import PromptBuilder
from app.engine.client import EngineClient
from app.server.app import APIService, ServerOptions
from app.server.local import LocalServer
from tests.bench.engine_bench import timed_generate

PROMPT_WORDS = 200


def _question(tag: str) -> str:
    words = " ".join(f"item{i % 50} is listed" for i in range(PROMPT_WORDS // 3))
    return f"[{tag}] Summarise this list: {words}"


def _direct(eng: EngineClient, text: str, n_gen: int) -> dict[str, float]:
    builder = PromptBuilder(eng.model_info or {})
    segments = builder.build([{"role": "user", "content": text}])
    req = {"max_tokens": n_gen, "temperature": 0.0, "top_k": 1, "top_p": 1.0, "min_p": 0.0, "use_cache": False,
           "ignore_eos": True, "stop_tokens": builder.stop_tokens}
    t0, t_first, t_end, stats = timed_generate(eng, req, segments)
    n = int(stats["completion_tokens"])
    return {"ttft_ms": (t_first - t0) * 1000, "gen_tok_per_s": (n - 1) / (t_end - t_first), "tokens": n}


def _api(http: httpx.Client, url: str, model: str, text: str, n_gen: int) -> dict[str, float]:
    body = {"model": model, "messages": [{"role": "user", "content": text}], "max_tokens": n_gen,
            "temperature": 0.0, "stream": True, "ignore_eos": True, "stream_options": {"include_usage": True}}
    t0 = time.perf_counter()
    t_first = t_last = None
    n = 0
    with http.stream("POST", url + "/v1/chat/completions", json=body, timeout=600) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if chunk.get("usage"):
                n = int(chunk["usage"]["completion_tokens"])
                continue
            delta = chunk["choices"][0]["delta"]
            if delta.get("content") or delta.get("reasoning_content"):
                t_last = time.perf_counter()
                if t_first is None:
                    t_first = t_last
    assert t_first is not None and t_last is not None
    return {"ttft_ms": (t_first - t0) * 1000, "gen_tok_per_s": (n - 1) / (t_last - t_first), "tokens": n}


def compare(path: Path, *, n_ctx: int, n_threads: int, n_gen: int, rounds: int) -> dict[str, Any]:
    params = {"n_ctx": n_ctx, "n_threads": n_threads, "n_threads_batch": n_threads, "flash_attn": True,
              "swa_full": False, "n_batch": 512, "n_ubatch": 512}
    eng = EngineClient()
    try:
        eng.load_blocking(str(path), params)
        server = LocalServer(APIService(eng, ServerOptions()))
        server.start()
        direct, api = [], []
        try:
            with httpx.Client() as http:
                _api(http, server.url, path.stem, _question("warm-up"), 8)  # first request: connection, imports
                for r in range(rounds):
                    direct.append(_direct(eng, _question(f"d{r}"), n_gen))
                    api.append(_api(http, server.url, path.stem, _question(f"a{r}"), n_gen))
        finally:
            server.stop()
    finally:
        eng.close()
    assert all(x["tokens"] == n_gen for x in direct + api), (direct, api)

    def med(rows: list[dict[str, float]], key: str) -> float:
        return statistics.median(x[key] for x in rows)

    out: dict[str, Any] = {"model": path.name, "n_ctx": n_ctx, "threads": n_threads, "gen_tokens": n_gen,
                           "rounds": rounds}
    for key in ("gen_tok_per_s", "ttft_ms"):
        out[key] = {"api": med(api, key), "direct": med(direct, key), "ratio": med(api, key) / med(direct, key)}
    out["ttft_ms"]["delta_ms"] = out["ttft_ms"]["api"] - out["ttft_ms"]["direct"]
    return out


def api_part(b: Any, model: Path, label: str, *, n_ctx: int = 2048, n_gen: int = 128, rounds: int = 3,
             threads: int = 2) -> dict[str, Any] | None:
    """The bench rows (tests/bench/run.py)."""
    r = b.section(f"API server: {label}", lambda: compare(model, n_ctx=n_ctx, n_threads=threads, n_gen=n_gen,
                                                          rounds=rounds))
    if not r:
        return None
    b.add(f"{label}: streamed tok/s through the API (vs engine)", r["gen_tok_per_s"]["api"],
          r["gen_tok_per_s"]["direct"], "tok/s", ">= 0.95", True, r["gen_tok_per_s"]["ratio"] >= 0.95)
    b.add(f"{label}: API time to first token (vs engine)", r["ttft_ms"]["api"], r["ttft_ms"]["direct"], "ms",
          "<= baseline + 30 ms", False, r["ttft_ms"]["delta_ms"] <= 30)
    return r
