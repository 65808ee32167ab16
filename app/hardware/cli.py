"""``hearth hw`` and ``hearth plan``: the machine, and how a model would load on it.

The lead's ``app/cli.py`` adds these parsers and calls ``run_hw`` / ``run_plan``;
exit codes: 0 ok, 2 bad input (unknown profile, model or file), with the
reason on stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from app.errors import HearthError
from app.gguf_info import read_gguf_info
from app.hardware.detect import detect_hardware
from app.hardware.info import HardwareInfo
from app.hardware.profiles import PROFILE_NAMES, builtin_profile
from app.paths import AppPaths
from app.planner import KV_CACHE_CHOICES, LoadPlan, ModelSpec, plan_load

log = logging.getLogger(__name__)

EXIT_OK, EXIT_USAGE = 0, 2
CATALOG_PATH = Path(__file__).resolve().parents[2] / "assets" / "catalog.json"
GIB = 1024**3


def add_hw_parser(subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser("hw", help="show this computer's CPU, memory, GPUs and llama.cpp backends",
                              description="Show what Hearth detects on this computer.")
    p.add_argument("--json", action="store_true", help="print JSON (the schema 'plan --hardware FILE' reads)")
    return p


def add_plan_parser(subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser("plan", help="show how a model would load on this (or another) computer",
                              description="Plan a model load: GPU layers, experts on the CPU, context, "
                                          "predicted memory and speed.")
    p.add_argument("model", metavar="MODEL", help="a .gguf file or a catalog id")
    p.add_argument("--ctx", type=int, default=None, metavar="N", help="context size in tokens (default: largest that fits)")
    p.add_argument("--hardware", metavar="PROFILE",
                   help=f"a JSON file from 'hearth hw --json' or one of: {', '.join(PROFILE_NAMES)}")
    p.add_argument("--kv-cache", choices=KV_CACHE_CHOICES, default="auto",
                   help="KV cache type: auto (f16, and an 8-bit offer when it fits a markedly larger context), "
                        "f16 or q8_0 (default: auto)")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    return p


def _err(msg: str) -> int:
    print(f"hearth: {msg}", file=sys.stderr)
    return EXIT_USAGE


def _size(n: int | None) -> str:
    return "unknown" if n is None else f"{n / GIB:.1f} GiB"


def format_hardware(hw: HardwareInfo) -> str:
    """A human-readable summary of ``hw`` (what ``hearth hw`` prints)."""
    lines = [
        f"System:    {hw.os or 'unknown'} {hw.os_version or ''} ({hw.arch or 'unknown'})".rstrip(),
        f"CPU:       {hw.cpu_model or 'unknown'}, {hw.cpu_physical_cores or '?'} cores / "
        f"{hw.cpu_logical_cores or '?'} threads; {', '.join(hw.simd) or 'no SIMD features detected'}",
        f"RAM:       {_size(hw.ram_total)} total, {_size(hw.ram_available)} available",
        f"Bandwidth: {hw.memory_bandwidth_gbps or 0:.0f} GB/s ({hw.bandwidth_note})",
    ]
    if not hw.gpus:
        lines.append("GPU:       none found")
    for g in hw.gpus:
        mem = (f"{_size(g.vram_total)} unified, GPU budget {_size(g.working_set)}"
               + (" (estimated)" if g.working_set_estimated else "")) if g.unified_memory \
            else f"{_size(g.vram_total)} VRAM, {_size(g.vram_free)} free"
        extra = ", ".join(x for x in (f"driver {g.driver}" if g.driver else "",
                                      f"compute {g.compute_capability}" if g.compute_capability else "") if x)
        lines.append(f"GPU {g.index}:     {g.name}: {mem}" + (f"; {extra}" if extra else ""))
    b = hw.backend
    if b.probed:
        devs = ", ".join(d.name for d in b.devices) or "none"
        lines.append(f"llama.cpp: {b.llama_cpp_version or '?'}, GPU offload {'yes' if b.gpu_offload else 'no'}; "
                     f"devices: {devs}")
    else:
        lines.append(f"llama.cpp: not probed ({b.reason or 'unknown'})")
    if hw.models_dir:
        lines.append(f"Disk:      {_size(hw.disk_free)} free in {hw.models_dir}")
    for probe, reason in hw.unknown.items():
        lines.append(f"unknown:   {probe}: {reason}")
    return "\n".join(lines)


def run_hw(args: argparse.Namespace, paths: AppPaths) -> int:
    hw = detect_hardware(paths.default_models_dir)
    if getattr(args, "json", False):
        print(hw.dumps())
    else:
        print(format_hardware(hw))
    return EXIT_OK


def load_catalog(path: Path = CATALOG_PATH) -> list[dict[str, Any]]:
    """The catalog's model entries, or [] when there is no catalog file."""
    if not path.is_file():
        return []
    data = json.loads(path.read_text(encoding="utf-8"))
    models = data.get("models", []) if isinstance(data, dict) else data
    return [m for m in models if isinstance(m, dict)]


def resolve_hardware(name: str | None) -> HardwareInfo:
    """This machine, a built-in profile, or a JSON file; ValueError says what is wrong."""
    if not name:
        return detect_hardware()
    if name in PROFILE_NAMES:
        return builtin_profile(name)
    p = Path(name).expanduser()
    if p.suffix.lower() == ".json" or p.exists():
        return HardwareInfo.load(p)
    raise ValueError(f"unknown hardware profile '{name}': give a JSON file from 'hearth hw --json' "
                     f"or one of {', '.join(PROFILE_NAMES)}")


def resolve_model(model: str, paths: AppPaths, catalog_path: Path = CATALOG_PATH) -> ModelSpec:
    """A GGUF path, or a catalog id (its downloaded file when present). Raises ValueError / HearthError."""
    p = Path(model).expanduser()
    if p.suffix.lower() == ".gguf" or p.exists():
        return ModelSpec.from_gguf(read_gguf_info(p))
    try:
        entries = load_catalog(catalog_path)
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"the model catalog {catalog_path} cannot be read: {exc}") from exc
    entry = next((e for e in entries if e.get("id") == model), None)
    if entry is None:
        known = ", ".join(str(e.get("id")) for e in entries if e.get("id"))
        if not entries:
            raise ValueError(f"'{model}' is not a file, and there is no model catalog to look it up in")
        raise ValueError(f"'{model}' is neither a file nor a catalog id (catalog ids: {known})")
    filename = entry.get("filename")
    if filename:
        local = paths.default_models_dir / str(filename)
        if local.is_file():
            spec = ModelSpec.from_gguf(read_gguf_info(local))
            return spec
    return ModelSpec.from_catalog(entry)


def format_plan(plan: LoadPlan) -> str:
    gpu = "all" if plan.n_gpu_layers < 0 else str(plan.n_gpu_layers)
    lines = [
        f"{plan.model} on {plan.hardware}: {plan.verdict.replace('_', ' ')}",
        plan.explanation,
        f"  RAM {_size(plan.ram_bytes)}, VRAM {_size(plan.vram_bytes)}; context {plan.n_ctx:,}; "
        f"GPU layers {gpu}; experts on CPU {plan.cpu_expert_layers}; "
        f"flash attention {'on' if plan.flash_attn else 'off'}; KV {plan.type_k}/{plan.type_v}; "
        f"threads {plan.n_threads}; mmap {'on' if plan.use_mmap else 'off'}; ~{plan.est_tok_per_s:.1f} tok/s",
    ]
    offer = plan.kv_offer
    if offer is not None:
        lines += [
            f"Offer: {offer.explanation}",
            f"  RAM {_size(offer.ram_bytes)}, VRAM {_size(offer.vram_bytes)}; context {offer.n_ctx:,}; "
            f"KV {offer.type_k}/{offer.type_v}; ~{offer.est_tok_per_s:.1f} tok/s "
            f"(take it with --kv-cache {offer.type_k}, or Settings > KV cache in the app)",
        ]
    return "\n".join(lines)


def run_plan(args: argparse.Namespace, paths: AppPaths) -> int:
    if args.ctx is not None and args.ctx <= 0:
        return _err(f"--ctx must be a positive number of tokens, not {args.ctx}")
    try:
        hw = resolve_hardware(args.hardware)
    except ValueError as exc:
        return _err(str(exc))
    try:
        spec = resolve_model(args.model, paths)
    except (ValueError, HearthError) as exc:
        return _err(str(exc))
    kv = getattr(args, "kv_cache", "auto") or "auto"
    overrides = {"type_k": kv, "type_v": kv} if kv != "auto" else None
    plan = plan_load(spec, hw, n_ctx=args.ctx, overrides=overrides)
    if getattr(args, "json", False):
        print(json.dumps(plan.to_json(), indent=2))
    else:
        print(format_plan(plan))
    return EXIT_OK
