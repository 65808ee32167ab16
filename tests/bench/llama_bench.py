"""llama.cpp's own ``llama-bench``, built from the llama.cpp that the pinned llama-cpp-python vendors.

The engine figures elsewhere compare Hearth with llama-cpp-python called
directly; this module gives the engine's own limit: the same llama.cpp sources
(``vendor/llama.cpp`` in the llama-cpp-python sdist the Makefile downloads),
built once with CMake into ``build/llama-bench/`` (git-ignored) and run with
the same file, threads, flash attention and batch sizes as Hearth's run.

* :func:`build_llama_bench` builds once and returns the binary's path; it raises
  :class:`LlamaBenchUnavailable` with the reason (no sdist, no CMake, no
  compiler, a failed build, with the log's tail) and remembers a failure, so that
  a later bench says why at once instead of compiling again (delete
  ``build/llama-bench`` to retry).
* :func:`run_llama_bench` runs it with ``-o json`` and returns the parsed tests.
* :func:`compare_interleaved` measures Hearth's engine and llama-bench in
  alternating blocks: generation of the same number of tokens after the same
  prompt length (``-d`` = the prompt's length), many passes each, and prompt
  processing of the same number of tokens into an empty context.

Run by hand: ``python -m tests.bench.llama_bench [--build-only] [--model FILE]``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any, Sequence

ROOT = Path(__file__).resolve().parents[2]
LLAMA_VERSION = "0.3.36"  # the Makefile's LLAMA_VERSION
DEFAULT_SDIST = ROOT / ".venv" / "sdist" / f"llama_cpp_python-{LLAMA_VERSION}.tar.gz"
DEFAULT_OUT = ROOT / "build" / "llama-bench"
VENDOR = "vendor/llama.cpp/"
BUILD_INFO = "build-info.json"
FAILED = "build-failed.json"

# Only the llama-bench target (and what it links: ggml, llama, llama-common) is
# compiled. Static libraries: one self-contained binary that cannot pick up
# another libllama. No OpenSSL/curl: llama-bench only reads local files here.
BASE_CMAKE_ARGS = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DBUILD_SHARED_LIBS=OFF",
    "-DGGML_NATIVE=ON",
    "-DLLAMA_CURL=OFF",
    "-DLLAMA_OPENSSL=OFF",
    "-DLLAMA_BUILD_COMMON=ON",
    "-DLLAMA_BUILD_TOOLS=ON",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_SERVER=OFF",
    "-DLLAMA_BUILD_APP=OFF",
)
# The same backend as the venv's llama-cpp-python (Makefile: LLAMA_CMAKE_ARGS).
BACKEND_CMAKE_ARGS = {"cpu": (), "cuda": ("-DGGML_CUDA=ON",), "metal": ("-DGGML_METAL=ON",)}


class LlamaBenchUnavailable(RuntimeError):
    """llama-bench could not be built or run here; the message says why."""


def detect_backend() -> str:
    try:
        out = subprocess.run(["sh", str(ROOT / "packaging" / "detect-backend.sh")], capture_output=True,
                             text=True, timeout=30, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "cpu"
    return out if out in BACKEND_CMAKE_ARGS else "cpu"


def default_cmake_args(backend: str | None = None) -> list[str]:
    return [*BASE_CMAKE_ARGS, *BACKEND_CMAKE_ARGS.get(backend or detect_backend(), ())]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _binary_in(build_dir: Path) -> Path:
    name = "llama-bench.exe" if sys.platform == "win32" else "llama-bench"
    for cand in (build_dir / "bin" / name, build_dir / "bin" / "Release" / name):
        if cand.exists():
            return cand
    return build_dir / "bin" / name


def _extract_vendor(sdist: Path, dest: Path) -> Path:
    """vendor/llama.cpp of the sdist into dest/llama.cpp (nothing else is unpacked)."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    with tarfile.open(sdist) as tf:
        members = []
        for m in tf.getmembers():
            parts = m.name.split("/", 1)
            if len(parts) == 2 and parts[1].startswith(VENDOR) and (m.isfile() or m.isdir()):
                m.name = "llama.cpp/" + parts[1][len(VENDOR):]
                members.append(m)
        if not members:
            raise LlamaBenchUnavailable(f"{sdist.name} has no {VENDOR}")
        kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tf.extractall(dest, members=members, **kwargs)
    src = dest / "llama.cpp"
    if not (src / "tools" / "llama-bench").is_dir():
        raise LlamaBenchUnavailable(f"the llama.cpp vendored by {sdist.name} has no tools/llama-bench")
    return src


def _run_logged(cmd: list[str], log: Path, *, nice: bool, env: dict[str, str] | None = None) -> None:
    if nice and shutil.which("nice") and sys.platform != "win32":
        cmd = ["nice", "-n", "19", *cmd]
    with log.open("a") as f:
        f.write(f"\n$ {' '.join(cmd)}\n")
        f.flush()
        rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env).returncode
    if rc != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        raise LlamaBenchUnavailable(f"`{' '.join(cmd[:3])} ...` failed (exit {rc}); see {log}:\n{tail}")


def build_llama_bench(out: str | os.PathLike[str] | None = None, *, sdist: str | os.PathLike[str] | None = None,
                      jobs: int | None = None, cmake_args: Sequence[str] | None = None, nice: bool = True,
                      retry_failed: bool = False) -> Path:
    """Build llama-bench once into ``out`` (default build/llama-bench) and return the binary.

    A build made from the same sdist with the same CMake arguments is reused.
    ``jobs`` defaults to $HEARTH_BUILD_JOBS or 2. Raises LlamaBenchUnavailable.
    """
    out_dir = Path(out) if out is not None else DEFAULT_OUT
    sdist_path = Path(sdist) if sdist is not None else DEFAULT_SDIST
    args = list(cmake_args) if cmake_args is not None else default_cmake_args()
    jobs = jobs or int(os.environ.get("HEARTH_BUILD_JOBS", "2"))
    if not sdist_path.exists():
        raise LlamaBenchUnavailable(f"no llama-cpp-python sdist at {sdist_path} (`make test` downloads it)")
    key = {"llama_cpp_python": LLAMA_VERSION, "sdist_sha256": _sha256(sdist_path), "cmake_args": args}

    info_file = out_dir / BUILD_INFO
    if info_file.exists():
        try:
            info = json.loads(info_file.read_text())
        except ValueError:
            info = {}
        binary = Path(info.get("binary", ""))
        if info.get("key") == key and binary.is_file():
            return binary
    failed_file = out_dir / FAILED
    if failed_file.exists() and not retry_failed:
        try:
            failed = json.loads(failed_file.read_text())
        except ValueError:
            failed = {}
        if failed.get("key") == key:
            raise LlamaBenchUnavailable(f"an earlier build failed (delete {out_dir} to retry): {failed['reason']}")

    missing = [tool for tool in ("cmake",) if shutil.which(tool) is None]
    if sys.platform != "win32" and not any(shutil.which(c) for c in ("c++", "g++", "clang++")):
        missing.append("a C++ compiler")
    if missing:
        raise LlamaBenchUnavailable(f"cannot build llama-bench: {' and '.join(missing)} not found")

    out_dir.mkdir(parents=True, exist_ok=True)
    log = out_dir / "build.log"
    log.write_text(f"llama-bench from {sdist_path.name} ({key['sdist_sha256'][:12]})\n")
    build_dir = out_dir / "cmake-build"
    t0 = time.perf_counter()
    try:
        src = _extract_vendor(sdist_path, out_dir / "src")
        if build_dir.exists():
            shutil.rmtree(build_dir)
        gen = ["-G", "Ninja"] if shutil.which("ninja") else []
        _run_logged(["cmake", "-S", str(src), "-B", str(build_dir), *gen, *args], log, nice=nice)
        _run_logged(["cmake", "--build", str(build_dir), "--config", "Release", "--target", "llama-bench",
                     "-j", str(jobs)], log, nice=nice)
        binary = _binary_in(build_dir)
        if not binary.is_file():
            raise LlamaBenchUnavailable(f"the build finished without {binary}")
        version = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=60)
    except LlamaBenchUnavailable as exc:
        failed_file.write_text(json.dumps({"key": key, "reason": str(exc)}, indent=2))
        raise
    except (OSError, subprocess.SubprocessError, tarfile.TarError) as exc:
        reason = f"{type(exc).__name__}: {exc}"
        failed_file.write_text(json.dumps({"key": key, "reason": reason}, indent=2))
        raise LlamaBenchUnavailable(reason) from exc
    failed_file.unlink(missing_ok=True)
    info = {"key": key, "binary": str(binary), "build_s": round(time.perf_counter() - t0, 1), "jobs": jobs,
            "version": (version.stdout + version.stderr).strip(),
            "built": time.strftime("%Y-%m-%d %H:%M:%S")}
    info_file.write_text(json.dumps(info, indent=2))
    return binary


def build_info(out: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    try:
        return json.loads(((Path(out) if out else DEFAULT_OUT) / BUILD_INFO).read_text())
    except (OSError, ValueError):
        return {}


def _csv(v: int | Sequence[int]) -> str:
    return ",".join(str(x) for x in v) if isinstance(v, (list, tuple)) else str(v)


def run_llama_bench(binary: str | os.PathLike[str], model: str | os.PathLike[str], *, threads: int,
                    n_prompt: int | Sequence[int], n_gen: int | Sequence[int], depth: int | Sequence[int] = 0,
                    flash_attn: bool = True, n_batch: int = 512, n_ubatch: int = 512, n_gpu_layers: int = 0,
                    reps: int = 3, load_mode: str | None = None, extra_args: Sequence[str] = (),
                    timeout: float = 3600) -> list[dict[str, Any]]:
    """Run llama-bench with ``-o json`` and return its tests (one dict per pp/tg test and depth).

    Each dict is llama-bench's own (n_prompt, n_gen, n_depth, avg_ts, stddev_ts,
    samples_ts, ...). Raises LlamaBenchUnavailable when it fails.
    """
    cmd = [str(binary), "-m", str(model), "-t", str(threads), "-fa", "1" if flash_attn else "0",
           "-p", _csv(n_prompt), "-n", _csv(n_gen), "-d", _csv(depth), "-b", str(n_batch), "-ub", str(n_ubatch),
           "-ngl", str(n_gpu_layers), "-r", str(reps), "-o", "json"]
    if load_mode:
        cmd += ["-lm", load_mode]
    cmd += list(extra_args)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError) as exc:
        raise LlamaBenchUnavailable(f"llama-bench did not run: {exc}") from exc
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-10:])
        raise LlamaBenchUnavailable(f"llama-bench exited {proc.returncode}: {tail}")
    start = proc.stdout.find("[")
    try:
        tests = json.loads(proc.stdout[start:]) if start >= 0 else None
    except ValueError:
        tests = None
    if not isinstance(tests, list) or not tests:
        raise LlamaBenchUnavailable(f"llama-bench printed no JSON test list: {proc.stdout[-500:]!r}")
    return tests


def pick(tests: list[dict[str, Any]], *, n_prompt: int, n_gen: int, depth: int) -> dict[str, Any]:
    for t in tests:
        if (int(t.get("n_prompt", -1)), int(t.get("n_gen", -1)), int(t.get("n_depth", 0))) == (n_prompt, n_gen,
                                                                                               depth):
            return t
    raise LlamaBenchUnavailable(f"llama-bench has no test pp{n_prompt}/tg{n_gen} at depth {depth}")


def tok_per_s(test: dict[str, Any]) -> float:
    """The median of llama-bench's repetitions (Hearth's figures are medians too); its mean without samples."""
    samples = [float(x) for x in test.get("samples_ts") or []]
    return statistics.median(samples) if samples else float(test["avg_ts"])


def _spread(xs: Sequence[float]) -> dict[str, Any]:
    xs = sorted(xs)
    return {"median": statistics.median(xs), "min": xs[0], "max": xs[-1], "n": len(xs)}


def compare_interleaved(model: str | os.PathLike[str], *, params: dict[str, Any], segments: list[Any], n_gen: int,
                        harmony: bool, blocks: int = 2, reps: int = 5, load_mode: str | None = None,
                        binary: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Hearth against llama-bench at the same depth, in alternating blocks, many samples each.

    One sample of either is worth little on a shared machine: on this project's
    2-core VM, five passes of the same decode loop in one process ranged from 6.9
    to 9.0 tok/s on the 20b-shaped file. So generation is compared as the median
    of ``blocks x reps`` passes on each side, the blocks alternating (Hearth, then
    llama-bench, twice by default) so that a slow minute hits both. Each Hearth
    block is one engine load (``engine_bench.hearth_passes``); each llama-bench
    block is ``-p 0 -n N -d P -r reps`` (its depth state is computed once and
    restored for each repetition, as Hearth's is). Prompt processing is P tokens
    into an empty context on both sides: the median of Hearth's blocks against one
    ``-p P -n 0`` run.

    ``gen_overhead_ms`` is Hearth's own time per generated token outside
    llama.cpp's decode (sampling, detokenising, the pipe), measured in the worker:
    the part of any gap that Hearth's code, not the machine, accounts for.
    """
    from tests.bench.engine_bench import hearth_passes

    binary = Path(binary) if binary else build_llama_bench()
    threads = int(params.get("n_threads") or os.cpu_count() or 2)
    n_batch, n_ubatch = int(params.get("n_batch", 512)), int(params.get("n_ubatch", 512))
    flash = bool(params.get("flash_attn", True))
    t0 = time.perf_counter()
    h_gen: list[float] = []
    h_over: list[float] = []
    h_pp: list[float] = []
    lb_gen: list[float] = []
    p = 0
    order: list[str] = []
    for _ in range(blocks):
        h = hearth_passes(str(model), params, segments, n_gen, reps, harmony)
        p = h["prompt_tokens"]
        h_gen += h["gen_tok_per_s"]
        h_over += h["gen_overhead_ms"]
        h_pp.append(h["prompt_tok_per_s"])
        order.append("hearth")
        tests = run_llama_bench(binary, model, threads=threads, n_prompt=0, n_gen=n_gen, depth=p, reps=reps,
                                n_batch=n_batch, n_ubatch=n_ubatch, flash_attn=flash, load_mode=load_mode)
        tg = pick(tests, n_prompt=0, n_gen=n_gen, depth=p)
        lb_gen += [float(x) for x in tg.get("samples_ts") or [tg["avg_ts"]]]
        order.append("llama-bench")
    tests = run_llama_bench(binary, model, threads=threads, n_prompt=p, n_gen=0, depth=0, reps=3,
                            n_batch=n_batch, n_ubatch=n_ubatch, flash_attn=flash, load_mode=load_mode)
    lb_pp = tok_per_s(pick(tests, n_prompt=p, n_gen=0, depth=0))
    gen_h, gen_lb = _spread(h_gen), _spread(lb_gen)
    over = statistics.median(h_over)
    ms_per_token = 1000.0 / gen_h["median"]
    return {
        "model": Path(model).name, "threads": threads, "prompt_tokens": p, "gen_tokens": n_gen, "gen_depth": p,
        "blocks": blocks, "reps": reps, "order": order, "run_s": round(time.perf_counter() - t0, 1),
        "llama_bench_build": build_info().get("version"),
        "gen_tok_per_s": {"hearth": gen_h["median"], "llama_bench": gen_lb["median"],
                          "ratio": gen_h["median"] / gen_lb["median"], "hearth_spread": gen_h,
                          "llama_bench_spread": gen_lb, "hearth_samples": h_gen, "llama_bench_samples": lb_gen},
        "prompt_tok_per_s": {"hearth": statistics.median(h_pp), "llama_bench": lb_pp,
                             "ratio": statistics.median(h_pp) / lb_pp, "hearth_samples": h_pp},
        "gen_overhead_ms": {"median": over, "share_of_token": over / ms_per_token, "samples": h_over},
    }


def bench_part(b: Any, model: str | os.PathLike[str], label: str, *, params: dict[str, Any], segments: list[Any],
               n_gen: int, harmony: bool, blocks: int = 2, reps: int = 5,
               load_mode: str | None = None) -> dict[str, Any] | None:
    """The harness's rows: Hearth / llama-bench for generation and prompt processing.

    When llama-bench cannot be built or run, the report says why and the rows are
    left out; the rest of the bench goes on.
    """
    print(f"\n== llama-bench: {label}", flush=True)
    t0 = time.perf_counter()
    try:
        before = build_info().get("built")
        binary = build_llama_bench()
        b.sections.setdefault("llama-bench build", {**build_info(), "built_by_this_run": before != build_info().get(
            "built")})
        r = compare_interleaved(model, params=params, segments=segments, n_gen=n_gen, harmony=harmony,
                                blocks=blocks, reps=reps, load_mode=load_mode, binary=binary)
    except LlamaBenchUnavailable as exc:
        print(f"   skipped: {exc}", flush=True)
        b.notes.append(f"llama-bench rows for {label} skipped: {exc}")
        return None
    b.sections[f"llama-bench: {label}"] = r
    print(f"   ({time.perf_counter() - t0:.1f} s)", flush=True)
    p, n = r["prompt_tokens"], r["gen_tokens"]
    g, pp, over = r["gen_tok_per_s"], r["prompt_tok_per_s"], r["gen_overhead_ms"]
    k = r["blocks"] * r["reps"]
    b.add(f"{label}: generation tok/s (Hearth vs llama-bench, tg{n} @ d{p}, medians of {k} passes each)",
          g["hearth"], g["llama_bench"], "tok/s", ">= 0.95", True, g["ratio"] >= 0.95)
    b.add(f"{label}: prompt tok/s (Hearth vs llama-bench, pp{p})", pp["hearth"], pp["llama_bench"], "tok/s",
          ">= 0.95", True, pp["ratio"] >= 0.95)
    b.notes.append(f"{label}: Hearth's own time per generated token outside llama.cpp's decode (sampling, "
                   f"detokenising, the pipe): {over['median']:.2f} ms, {over['share_of_token']:.1%} of a token. "
                   f"Generation passes: Hearth {g['hearth_spread']['min']:.2f}-{g['hearth_spread']['max']:.2f}, "
                   f"llama-bench {g['llama_bench_spread']['min']:.2f}-{g['llama_bench_spread']['max']:.2f} tok/s.")
    return r


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description="build llama-bench once (build/llama-bench) and run it")
    ap.add_argument("--build-only", action="store_true")
    ap.add_argument("--retry", action="store_true", help="build again after a remembered failure")
    ap.add_argument("--model")
    ap.add_argument("-t", "--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("-p", type=int, default=256)
    ap.add_argument("-n", type=int, default=128)
    ap.add_argument("-d", type=int, default=0)
    a = ap.parse_args(argv)
    try:
        binary = build_llama_bench(retry_failed=a.retry)
    except LlamaBenchUnavailable as exc:
        print(f"llama-bench unavailable: {exc}", file=sys.stderr)
        return 1
    print(binary, json.dumps(build_info(), indent=2))
    if a.model and not a.build_only:
        print(json.dumps(run_llama_bench(binary, a.model, threads=a.threads, n_prompt=a.p, n_gen=a.n, depth=a.d),
                         indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
