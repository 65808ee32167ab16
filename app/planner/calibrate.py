"""Measure what a load really costs, to check and calibrate the planner's memory model.

Each measurement runs in a fresh child process (``sys.executable``): it loads the
model with llama-cpp-python using a plan's engine parameters, generates a few
tokens, and reports its peak RSS and the buffer sizes from llama.cpp's log. The
child is the only place llama_cpp is imported, so this module can be used from
the CLI, tests and the benchmark. One full-size gpt-oss load needs ~12 GB and a
minute or two: run measurements one at a time.

``python -m app.planner.calibrate MODEL [--ctx 4096 32768]`` prints predicted
against measured memory.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_REPO_ROOT = Path(__file__).resolve().parents[2]

# The child: load with the given params (expert overrides through
# app.engine.moe_offload), generate, report. Kept as text so no module of the
# app imports llama_cpp outside the engine worker.
_CHILD = r"""
import ctypes, json, os, sys, time
sys.path.insert(0, sys.argv[1])
import psutil
import llama_cpp
from app.engine.moe_offload import cpu_moe_overrides, overridden_tensors
from app.planner.calibrate import peak_rss

req = json.loads(sys.argv[2])
lines = []

@llama_cpp.llama_log_callback
def _cb(level, text, user):
    lines.append(text.decode("utf-8", "replace"))

llama_cpp.llama_log_set(_cb, ctypes.c_void_p(0))
proc = psutil.Process()
rss_start = proc.memory_info().rss
params = dict(req["params"])
cpu_moe = int(params.pop("cpu_moe_layers", 0) or 0)
t0 = time.perf_counter()
kwargs = dict(model_path=req["path"], verbose=False, **params)
if cpu_moe > 0:
    with cpu_moe_overrides(llama_cpp, cpu_moe):
        llm = llama_cpp.Llama(**kwargs)
else:
    llm = llama_cpp.Llama(**kwargs)
load_s = time.perf_counter() - t0
rss_loaded = proc.memory_info().rss
toks = llm.tokenize(req["prompt"].encode("utf-8"), add_bos=True, special=False)[: req["n_prompt"]]
t1 = time.perf_counter()
n = 0
first = None
for tok in llm.generate(toks, temp=0.0):
    n += 1
    if n == 1:
        first = time.perf_counter()
    if n >= req["n_gen"]:
        break
t2 = time.perf_counter()
rss_after = proc.memory_info().rss
maxrss = peak_rss()
text = "".join(lines)
print("@@RESULT@@" + json.dumps({
    "rss_start": rss_start, "rss_loaded": rss_loaded, "rss_after": rss_after, "peak_rss": maxrss,
    "load_s": load_s, "prompt_tokens": len(toks), "generated": n,
    "prompt_s": (first or t2) - t1,
    "gen_tok_per_s": (n - 1) / (t2 - first) if first and n > 1 and t2 > first else None,
    "n_ctx": llm.n_ctx(), "overridden": len(overridden_tensors(text)), "log": text,
}))
"""

_MIB = 1024 * 1024


def peak_rss() -> int:
    """This process's peak resident memory, in bytes, since it started its program.

    Not getrusage's ru_maxrss on Linux: the kernel carries the high-water mark of the
    process that forked over exec, so a child of a big pytest process reported the
    parent's size (439 MiB against 381 MiB predicted in a full test run, while the
    same measurement alone matched). /proc's VmHWM belongs to this program alone.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    if sys.platform == "win32":
        import psutil

        return int(psutil.Process().memory_info().peak_wset)
    import resource

    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(maxrss if sys.platform == "darwin" else maxrss * 1024)
_BUF_RE = re.compile(r"^\S+:\s+(\S+) (model buffer|KV buffer|compute buffer|output buffer) size =\s+([\d.]+) MiB", re.M)


@dataclass
class Measurement:
    path: str
    params: dict[str, Any]
    peak_rss: int
    rss_loaded: int
    rss_after: int
    rss_start: int
    load_s: float
    gen_tok_per_s: float | None
    prompt_tokens: int
    n_ctx: int
    overridden: int
    buffers: dict[str, int] = field(default_factory=dict)  # "CPU_REPACK model" -> bytes
    log: str = field(default="", repr=False)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("log")
        return d


def parse_buffers(log_text: str) -> dict[str, int]:
    """Buffer sizes llama.cpp reports while loading, summed per "<buffer type> <kind>"."""
    out: dict[str, int] = {}
    for m in _BUF_RE.finditer(log_text):
        key = f"{m.group(1)} {m.group(2).split()[0]}"
        out[key] = out.get(key, 0) + int(float(m.group(3)) * _MIB)
    return out


# Long enough that the prompt fills more than one 512-token micro-batch, so the
# compute buffer is used as in a real conversation, not just for a greeting.
DEFAULT_PROMPT = " ".join(f"Note {i}: the quick brown fox jumps over the lazy dog." for i in range(120))
DEFAULT_PROMPT_TOKENS = 600


def measure_load(path: str | os.PathLike[str], params: dict[str, Any], *, n_gen: int = 16,
                 prompt: str = DEFAULT_PROMPT, n_prompt: int = DEFAULT_PROMPT_TOKENS,
                 timeout: float = 900.0) -> Measurement:
    """Load ``path`` in a child process with engine ``params``, process a prompt of up
    to ``n_prompt`` tokens and generate ``n_gen``; return memory and speed."""
    req = {"path": str(path), "params": params, "n_gen": n_gen, "prompt": prompt, "n_prompt": n_prompt}
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(_REPO_ROOT), json.dumps(req)],
        capture_output=True, text=True, timeout=timeout, check=False,
    )
    marker = "@@RESULT@@"
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith(marker)), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(
            f"measuring {Path(path).name} failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}"
        )
    data = json.loads(line[len(marker):])
    return Measurement(
        path=str(path), params=params, peak_rss=data["peak_rss"], rss_loaded=data["rss_loaded"],
        rss_after=data["rss_after"], rss_start=data["rss_start"], load_s=data["load_s"],
        gen_tok_per_s=data["gen_tok_per_s"], prompt_tokens=data["prompt_tokens"], n_ctx=data["n_ctx"],
        overridden=data["overridden"], buffers=parse_buffers(data["log"]), log=data["log"],
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Print the planner's prediction next to a real measurement, per context size."""
    from app.gguf_info import read_gguf_info
    from app.hardware import detect_hardware
    from app.planner import ModelSpec, plan_load

    ap = argparse.ArgumentParser(prog="python -m app.planner.calibrate", description=main.__doc__)
    ap.add_argument("model")
    ap.add_argument("--ctx", type=int, nargs="+", default=[4096, 32768])
    ap.add_argument("--n-gen", type=int, default=16)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    spec = ModelSpec.from_gguf(read_gguf_info(args.model))
    hw = detect_hardware()
    rows = []
    for n_ctx in args.ctx:
        plan = plan_load(spec, hw, n_ctx=n_ctx)
        m = measure_load(args.model, plan.engine_params(), n_gen=args.n_gen)
        err = (plan.ram_bytes - m.peak_rss) / m.peak_rss
        row = {"n_ctx": n_ctx, "predicted_ram": plan.ram_bytes, "peak_rss": m.peak_rss,
               "rss_after": m.rss_after, "error": err, "gen_tok_per_s": m.gen_tok_per_s,
               "est_tok_per_s": plan.est_tok_per_s, "load_s": m.load_s, "buffers": m.buffers,
               "breakdown": plan.breakdown}
        rows.append(row)
        if not args.json:
            print(f"ctx {n_ctx:>6}: predicted {plan.ram_bytes / 2**30:6.2f} GiB, peak RSS "
                  f"{m.peak_rss / 2**30:6.2f} GiB ({err:+.1%}); {m.gen_tok_per_s or 0:.1f} tok/s "
                  f"(estimated {plan.est_tok_per_s:.1f}); load {m.load_s:.1f} s")
    if args.json:
        print(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
