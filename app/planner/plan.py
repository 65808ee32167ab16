"""Choose how to load a model on a machine: GPU layers, experts on the CPU, context, KV type.

The search keeps the fastest placement that fits at a working context (8k
tokens where the model allows: reasoning needs room), then grows the context
as far as that placement still fits, up to the model's maximum. When an 8-bit
KV cache would let a markedly larger context fit, the plan carries that as an
offer (``LoadPlan.kv_offer``) for the user to accept; the f16 plan stays the
default because q8_0 attention is slightly less precise.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from app.hardware.info import HardwareInfo
from app.planner.memory import GIB, MIB, Estimate, Placement, estimate, tokens_per_second
from app.planner.spec import ModelSpec

log = logging.getLogger(__name__)

MIN_GOOD_CTX = 8192  # reasoning models think for thousands of tokens before answering
FALLBACK_CTX = (4096, 2048)
GROW_MIN_SPEED = 0.9  # a larger context may cost at most 10% of the generation speed
CTX_STEPS = (8192, 16384, 32768, 65536, 131072, 262144)
# ggml_type ids llama-cpp-python takes for type_k / type_v.
GGML_TYPE_IDS = {"f32": 0, "f16": 1, "q4_0": 2, "q4_1": 3, "q5_0": 6, "q5_1": 7, "q8_0": 8, "bf16": 30}
ASSUMED_RAM = 8 * GIB  # when RAM could not be probed
# Settings.kv_cache: "auto" plans f16 (8-bit only when f16 does not fit at all) and
# offers 8-bit when it buys a markedly larger context; the others pin the type.
KV_CACHE_CHOICES = ("auto", "f16", "q8_0")
KV_OFFER_TYPE = "q8_0"
KV_OFFER_MIN_GAIN = 2  # "markedly larger": at least double the context, or the model's maximum
# KV types that llama.cpp can only use with flash attention (a quantized V cache).
_QUANTIZED_KV = ("q8_0", "q5_1", "q5_0", "q4_1", "q4_0")

FITS, FITS_SLOWER, DOES_NOT_FIT = "fits", "fits_slower", "does_not_fit"


def ram_reserve(total: int) -> int:
    """RAM left to the operating system and other programs: a fifth, 2.5-8 GiB."""
    return int(min(max(0.2 * total, 2.5 * GIB), 8 * GIB))


def gpu_margin(usable: int) -> int:
    return int(max(256 * MIB, 0.03 * usable))


@dataclass
class KVOffer:
    """A larger context bought with an 8-bit KV cache, offered beside the f16 plan.

    Accepting it means setting ``Settings.kv_cache`` to ``type_k``; the next load
    then plans with that cache type and arrives at this context and memory.
    """

    n_ctx: int
    type_k: str
    type_v: str
    flash_attn: bool
    ram_bytes: int
    vram_bytes: int
    n_gpu_layers: int
    cpu_expert_layers: int
    est_tok_per_s: float
    explanation: str  # one sentence: what it gains, what it costs
    params: dict[str, Any] = field(default_factory=dict)  # engine_params() of the offered plan
    breakdown: dict[str, int] = field(default_factory=dict)


@dataclass
class LoadPlan:
    """The planner's decision and its prediction. ``engine_params()`` feeds the worker."""

    verdict: str
    ram_bytes: int
    vram_bytes: int
    n_ctx: int
    n_gpu_layers: int  # as llama.cpp takes it: -1 = all layers and the output layer
    cpu_expert_layers: int
    flash_attn: bool
    type_k: str
    type_v: str
    n_threads: int
    use_mmap: bool
    swa_full: bool
    n_batch: int
    n_ubatch: int
    est_tok_per_s: float
    explanation: str
    model: str = ""
    hardware: str = ""
    ram_budget: int = 0
    vram_budget: int = 0
    breakdown: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    kv_offer: KVOffer | None = None
    _spec: ModelSpec | None = field(default=None, repr=False, compare=False)
    _hw: HardwareInfo | None = field(default=None, repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if not k.startswith("_")}
        d["est_tok_per_s"] = round(self.est_tok_per_s, 1)
        if self.kv_offer is not None:
            d["kv_offer"]["est_tok_per_s"] = round(self.kv_offer.est_tok_per_s, 1)
        return d

    def engine_params(self) -> dict[str, Any]:
        """Keyword arguments for the engine worker's load (llama_cpp.Llama + cpu_moe_layers)."""
        return {
            "n_ctx": self.n_ctx,
            "n_gpu_layers": self.n_gpu_layers,
            "flash_attn": self.flash_attn,
            "swa_full": self.swa_full,
            "use_mmap": self.use_mmap,
            "n_threads": self.n_threads,
            "n_batch": self.n_batch,
            "n_ubatch": self.n_ubatch,
            "type_k": GGML_TYPE_IDS[self.type_k],
            "type_v": GGML_TYPE_IDS[self.type_v],
            "cpu_moe_layers": self.cpu_expert_layers,
        }


@dataclass
class _Machine:
    """The numbers the search needs, with the budgets already taken off."""

    backend: str | None  # GPU backend, None for CPU only
    gpu_name: str
    unified: bool
    ram_total: int
    ram_budget: int
    vram_budget: int
    cpu_bw: float
    gpu_bw: float | None
    threads: int
    x86: bool
    notes: list[str]


def _machine(hw: HardwareInfo) -> _Machine:
    notes: list[str] = []
    total = hw.ram_total or ASSUMED_RAM
    if not hw.ram_total:
        notes.append(f"RAM unknown ({hw.unknown.get('ram', 'not probed')}); assuming {_gib(ASSUMED_RAM)}")
    gpu = hw.primary_gpu
    backend: str | None = None
    vram_budget = 0
    if gpu is not None and hw.backend.gpu_offload:
        backend = gpu.backend or ("metal" if gpu.vendor == "apple" else "cuda" if gpu.vendor == "nvidia" else "vulkan")
        usable = gpu.usable_bytes or 0
        vram_budget = max(0, usable - gpu_margin(usable))
    elif gpu is not None:
        notes.append(f"{gpu.name} found, but this llama-cpp-python build has no GPU support; using the CPU")
    return _Machine(
        backend=backend, gpu_name=gpu.name if gpu else "", unified=bool(gpu and gpu.unified_memory and backend),
        ram_total=total, ram_budget=total - ram_reserve(total), vram_budget=vram_budget,
        cpu_bw=hw.memory_bandwidth_gbps or 30.0, gpu_bw=gpu.bandwidth_gbps if gpu else None,
        threads=hw.threads, x86=(hw.arch or "x86_64") == "x86_64", notes=notes,
    )


def _fits(est: Estimate, m: _Machine) -> bool:
    if est.ram > m.ram_budget:
        return False
    return m.backend is None or est.vram <= m.vram_budget


def _estimate(spec: ModelSpec, p: Placement, m: _Machine) -> Estimate:
    return estimate(spec, p, gpu_backend=m.backend, unified=m.unified, cpu_bw_gbps=m.cpu_bw,
                    gpu_bw_gbps=m.gpu_bw, repack_on_mmap=m.x86)


def _placements(spec: ModelSpec, m: _Machine, base: Placement, pinned: dict[str, Any]) -> list[Placement]:
    """Candidates from fastest to slowest."""
    n = spec.n_layers
    if m.backend is None:
        return [replace(base, n_gpu_layers=0, cpu_expert_layers=0)]
    out = []
    gl_pinned = pinned.get("n_gpu_layers")
    ce_pinned = pinned.get("cpu_expert_layers")
    gl_options = [gl_pinned] if gl_pinned is not None else list(range(n + 1, -1, -1))
    for gl in gl_options:
        if ce_pinned is not None:
            ce_options = [ce_pinned]
        elif spec.is_moe and gl > 0:
            # Experts go to the CPU first, layer by layer, before whole layers
            # do. Layers below the GPU ones are on the CPU with their experts
            # anyway, so "experts of the first N layers" starts past them.
            first_gpu = max(0, n - gl)
            ce_options = [0] + list(range(first_gpu + 1, n + 1))
        else:
            ce_options = [0]
        for ce in ce_options:
            out.append(replace(base, n_gpu_layers=gl, cpu_expert_layers=ce))
    return out


def _search(spec: ModelSpec, m: _Machine, base: Placement, pinned: dict[str, Any]) -> tuple[Placement, Estimate] | None:
    for p in _placements(spec, m, base, pinned):
        est = _estimate(spec, p, m)
        if _fits(est, m):
            return p, est
    return None


def plan_load(spec: ModelSpec, hw: HardwareInfo, *, n_ctx: int | None = None,
              overrides: dict[str, Any] | None = None) -> LoadPlan:
    """Plan a load of ``spec`` on ``hw``.

    ``n_ctx``: the context the user asked for (else the largest that fits, at
    least 8k where possible). ``overrides`` pin any of ``n_gpu_layers``,
    ``cpu_expert_layers``, ``n_threads``, ``flash_attn``, ``type_k``, ``type_v``,
    ``use_mmap``, ``n_ubatch``, ``n_batch``; the rest is still chosen. Without
    a pinned KV type or context, the plan may carry a ``kv_offer``.
    """
    pinned = {k: v for k, v in (overrides or {}).items() if v is not None}
    for key in ("type_k", "type_v"):
        if key in pinned and pinned[key] not in GGML_TYPE_IDS:
            raise ValueError(f"unknown KV cache type {pinned[key]!r} for {key}: use one of "
                             f"{', '.join(GGML_TYPE_IDS)}")
    if pinned.get("type_v", pinned.get("type_k")) in _QUANTIZED_KV and pinned.get("flash_attn") is False:
        raise ValueError(f"a {pinned.get('type_v', pinned.get('type_k'))} V cache needs flash attention "
                         "(llama.cpp refuses the load without it): turn flash attention on or use an f16 cache")
    m = _machine(hw)
    if "n_gpu_layers" in pinned and int(pinned["n_gpu_layers"]) < 0:
        pinned["n_gpu_layers"] = spec.n_layers + 1
    max_ctx = spec.n_ctx_train or 4096
    # CPU weights are read into RAM (use_mmap False): with mmap, x86 repacking
    # keeps the file pages *and* a repacked copy resident. Apple's unified
    # memory and full GPU offload are better served by mmap.
    base = Placement(
        n_ctx=min(MIN_GOOD_CTX, max_ctx), n_gpu_layers=0, cpu_expert_layers=0,
        type_k=pinned.get("type_k", "f16"), type_v=pinned.get("type_v", pinned.get("type_k", "f16")),
        flash_attn=bool(pinned.get("flash_attn", True)), n_ubatch=int(pinned.get("n_ubatch", 512)),
        use_mmap=bool(pinned.get("use_mmap", m.unified)),
    )
    requested = max(256, min(int(n_ctx), max_ctx)) if n_ctx else None
    notes = list(m.notes)
    if n_ctx and requested != n_ctx:
        notes.append(f"context {n_ctx:,} is more than this model supports; using {requested:,}")

    # Fallbacks, least damaging first: smaller micro-batch, 8-bit KV cache, smaller context.
    tries: list[Placement] = []
    ctx_list = [requested] if requested else [base.n_ctx] + [c for c in FALLBACK_CTX if c < base.n_ctx]
    for c in ctx_list:
        tries.append(replace(base, n_ctx=c))
        if "n_ubatch" not in pinned:
            tries.append(replace(base, n_ctx=c, n_ubatch=256))
        if "type_k" not in pinned and base.flash_attn:
            tries.append(replace(base, n_ctx=c, n_ubatch=256 if "n_ubatch" not in pinned else base.n_ubatch,
                                 type_k="q8_0", type_v="q8_0"))
    found: tuple[Placement, Estimate] | None = None
    for t in tries:
        found = _search(spec, m, t, pinned)
        if found:
            break
    if found is None:
        return _does_not_fit(spec, hw, m, base if not requested else replace(base, n_ctx=requested), pinned, notes)
    p, est = found
    if not requested:
        # Grow the context while it fits and costs little speed: a few more
        # experts in RAM for 4x the context is a good trade, halving the speed
        # is not.
        base_speed = _speed(spec, m, p, est)
        for c in [s for s in CTX_STEPS if p.n_ctx < s < max_ctx] + [max_ctx]:
            if c <= p.n_ctx:
                continue
            grown = _search(spec, m, replace(p, n_ctx=c), pinned)
            if (grown is None or _speed(spec, m, *grown) < GROW_MIN_SPEED * base_speed
                    or _verdict(spec, m, grown[0]) != _verdict(spec, m, p)):
                break
            p, est = grown
    plan = _finish(spec, hw, m, p, est, pinned, notes)
    if not requested and "type_k" not in pinned and "type_v" not in pinned and p.type_k == "f16" \
            and p.flash_attn:
        plan.kv_offer = _kv_offer(spec, hw, plan, pinned)
    return plan


def _kv_offer(spec: ModelSpec, hw: HardwareInfo, plan: LoadPlan, pinned: dict[str, Any]) -> KVOffer | None:
    """The 8-bit KV alternative to an f16 ``plan``, when it fits a markedly larger context.

    Markedly: at least twice the context, or the model's full context where the
    f16 plan stops short of it. The alternative is planned like any other load
    (its own placement and growth), and must keep about the same speed.
    """
    max_ctx = spec.n_ctx_train or 4096
    if plan.n_ctx >= max_ctx:
        return None
    alt = plan_load(spec, hw, overrides={**pinned, "type_k": KV_OFFER_TYPE, "type_v": KV_OFFER_TYPE,
                                         "flash_attn": True})
    if alt.verdict == DOES_NOT_FIT or alt.est_tok_per_s < GROW_MIN_SPEED * plan.est_tok_per_s:
        return None
    if alt.n_ctx < KV_OFFER_MIN_GAIN * plan.n_ctx and alt.n_ctx < max_ctx:
        return None
    gain = alt.n_ctx / plan.n_ctx
    how = "doubles" if gain == 2 else "quadruples" if gain == 4 else f"multiplies by {gain:.1f}"
    where, now, then = (("GPU memory", plan.vram_bytes, alt.vram_bytes) if plan.vram_bytes and alt.vram_bytes
                        else ("RAM", plan.ram_bytes, alt.ram_bytes))
    mem = (f"about the same memory ({_gib(then)} of {where})" if abs(then - now) <= 0.05 * now
           else f"{_gib(then)} of {where} instead of {_gib(now)}")
    explanation = (f"An 8-bit ({KV_OFFER_TYPE}) KV cache {how} the context, from {plan.n_ctx:,} to {alt.n_ctx:,} "
                   f"tokens{' (the most this model takes)' if alt.n_ctx >= max_ctx else ''}, in {mem} at a similar "
                   f"speed (about {alt.est_tok_per_s:.0f} tokens/s); the cost is slightly less precise attention "
                   "over long conversations.")
    return KVOffer(n_ctx=alt.n_ctx, type_k=alt.type_k, type_v=alt.type_v, flash_attn=alt.flash_attn,
                   ram_bytes=alt.ram_bytes, vram_bytes=alt.vram_bytes, n_gpu_layers=alt.n_gpu_layers,
                   cpu_expert_layers=alt.cpu_expert_layers, est_tok_per_s=alt.est_tok_per_s,
                   explanation=explanation, params=alt.engine_params(), breakdown=dict(alt.breakdown))


def _speed(spec: ModelSpec, m: _Machine, p: Placement, est: Estimate) -> float:
    gl = min(p.n_gpu_layers, spec.n_layers + 1) if m.backend else 0
    return tokens_per_second(spec, est, gpu_backend=m.backend, cpu_bw_gbps=m.cpu_bw, gpu_bw_gbps=m.gpu_bw,
                             gpu_layers=gl)


def _verdict(spec: ModelSpec, m: _Machine, p: Placement) -> str:
    if m.backend is None:
        return FITS
    if p.n_gpu_layers <= spec.n_layers or p.cpu_expert_layers > 0:
        return FITS_SLOWER
    return FITS


def _engine_gpu_layers(spec: ModelSpec, m: _Machine, p: Placement) -> int:
    if m.backend is None:
        return 0
    return -1 if p.n_gpu_layers > spec.n_layers else p.n_gpu_layers


def _gib(n: float) -> str:
    # The UI's one size formatter: decimal GB/MB, never "0.0 GiB" for a small model.
    from app.models.units import format_bytes

    return format_bytes(n)


def _finish(spec: ModelSpec, hw: HardwareInfo, m: _Machine, p: Placement, est: Estimate,
            pinned: dict[str, Any], notes: list[str]) -> LoadPlan:
    verdict = _verdict(spec, m, p)
    speed = _speed(spec, m, p, est)
    threads = int(pinned.get("n_threads") or m.threads)
    ctx_note = f"{p.n_ctx:,}-token context"
    if p.n_ctx < min(MIN_GOOD_CTX, spec.n_ctx_train or MIN_GOOD_CTX):
        ctx_note += " (short: long reasoning may be cut off)"
    if p.type_k != "f16":
        ctx_note += f", {p.type_k} KV cache"
    speed_note = f"about {speed:.0f} tokens/s" if speed >= 2 else f"about {speed:.1f} tokens/s"
    if m.backend is None:
        where = (f"Runs on the CPU: needs {_gib(est.ram)} of {_gib(m.ram_total)} RAM "
                 f"({_gib(m.ram_budget)} usable)")
    elif verdict == FITS:
        where = f"Fits on the {m.gpu_name}: {_gib(est.vram)} of {_gib(m.vram_budget)} usable GPU memory"
        if not m.unified:
            where += f", {_gib(est.ram)} RAM"
    else:
        parts = []
        if p.n_gpu_layers < spec.n_layers:
            parts.append(f"{spec.n_layers - p.n_gpu_layers} of {spec.n_layers} layers")
        gpu_layers = min(p.n_gpu_layers, spec.n_layers)
        extra = max(0, min(p.cpu_expert_layers, spec.n_layers) - (spec.n_layers - gpu_layers))
        if extra and gpu_layers:
            parts.append(f"the experts of {extra} of {spec.n_layers if gpu_layers == spec.n_layers else f'the {gpu_layers} GPU'} layers")
        if p.n_gpu_layers <= spec.n_layers:
            parts.append("the output layer")
        what = ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0]
        mem = "unified memory" if m.unified else "VRAM"
        where = (f"Too big for the {m.gpu_name}'s {_gib(m.vram_budget)} usable {mem}, so {what} "
                 f"{'run' if len(parts) > 1 or parts[0].endswith('layers') else 'runs'} on the CPU "
                 f"({_gib(est.vram)} GPU, {_gib(est.ram)} RAM in all)")
    explanation = f"{where}; {ctx_note}; {speed_note}."
    if hw.ram_available is not None and m.backend is None and est.ram > hw.ram_available:
        notes.append(f"only {_gib(hw.ram_available)} RAM is free right now: close other programs first")
    if notes:
        explanation += " " + "; ".join(n[0].upper() + n[1:] for n in notes) + "."
    return LoadPlan(
        verdict=verdict, ram_bytes=est.ram, vram_bytes=est.vram, n_ctx=p.n_ctx,
        n_gpu_layers=_engine_gpu_layers(spec, m, p), cpu_expert_layers=p.cpu_expert_layers if m.backend else 0,
        flash_attn=p.flash_attn, type_k=p.type_k, type_v=p.type_v, n_threads=threads, use_mmap=p.use_mmap,
        swa_full=p.swa_full, n_batch=int(pinned.get("n_batch", max(512, p.n_ubatch))), n_ubatch=p.n_ubatch,
        est_tok_per_s=speed, explanation=explanation, model=spec.name, hardware=hw.source,
        ram_budget=m.ram_budget, vram_budget=m.vram_budget, breakdown=est.breakdown, notes=notes,
        _spec=spec, _hw=hw,
    )


def _does_not_fit(spec: ModelSpec, hw: HardwareInfo, m: _Machine, p: Placement, pinned: dict[str, Any],
                  notes: list[str]) -> LoadPlan:
    # Report the smallest footprint: everything that can leave the GPU has left it.
    if m.backend is not None:
        p = replace(p, n_gpu_layers=pinned.get("n_gpu_layers", spec.n_layers + 1),
                    cpu_expert_layers=pinned.get("cpu_expert_layers", spec.n_layers if spec.is_moe else 0))
    est = _estimate(spec, p, m)
    plan = _finish(spec, hw, m, p, est, pinned, [])
    plan.verdict = DOES_NOT_FIT
    if est.ram <= m.ram_budget and m.backend is not None and est.vram > m.vram_budget:
        # Only the GPU part is too big: that happens with the user's own GPU settings.
        plan.explanation = (f"Does not fit: with these settings {spec.name} needs {_gib(est.vram)} of GPU memory "
                            f"but the {m.gpu_name} has {_gib(m.vram_budget)} usable; put fewer layers on the GPU "
                            "or let Hearth choose.")
    elif m.backend is not None and not m.unified:
        whole = _estimate(spec, replace(p, n_gpu_layers=spec.n_layers + 1, cpu_expert_layers=0), m)
        plan.explanation = (f"Does not fit: {spec.name} needs about {_gib(whole.ram + whole.vram)} in RAM and GPU "
                            f"memory together with {p.n_ctx:,} tokens of context, but this machine has "
                            f"{_gib(m.ram_budget)} usable RAM and {_gib(m.vram_budget)} usable on the {m.gpu_name}.")
    else:
        if m.backend and m.unified:
            have = f"this Mac has {_gib(m.ram_total)} ({_gib(m.ram_budget)} usable)"
        else:
            have = f"this machine has {_gib(m.ram_total)} ({_gib(m.ram_budget)} usable after the system's share)"
        plan.explanation = (f"Does not fit: {spec.name} needs about {_gib(est.ram)} of RAM with {p.n_ctx:,} "
                            f"tokens of context, but {have}.")
    if notes:
        plan.explanation += " " + "; ".join(n[0].upper() + n[1:] for n in notes) + "."
    plan.notes = notes
    return plan


def conservative(plan: LoadPlan) -> tuple[LoadPlan, str]:
    """A plan that needs clearly less memory, for one retry after a failed load.

    Returns the new plan and a sentence for the user saying what changed and why.
    """
    spec, hw = plan._spec, plan._hw
    if spec is None or hw is None:
        raise ValueError("conservative() needs a plan made by plan_load()")
    changes: list[str] = []
    pinned: dict[str, Any] = {"n_threads": plan.n_threads, "use_mmap": plan.use_mmap}
    if plan.type_k != "f16" or plan.type_v != "f16":
        # An 8-bit cache (the user's choice or the fallback) stays: going back to f16 would cost memory.
        pinned.update(type_k=plan.type_k, type_v=plan.type_v, flash_attn=plan.flash_attn)
    n_ctx = plan.n_ctx
    gpu = plan.n_gpu_layers != 0
    if gpu:
        n = spec.n_layers
        gl = n + 1 if plan.n_gpu_layers < 0 else plan.n_gpu_layers
        if spec.is_moe and plan.cpu_expert_layers < n and gl > n - 1:
            ce = min(n, plan.cpu_expert_layers + max(2, n // 6))
            pinned.update(n_gpu_layers=gl, cpu_expert_layers=ce)
            changes.append(f"the experts of {ce} layers (was {plan.cpu_expert_layers}) stay in RAM")
        else:
            new_gl = max(0, min(gl, n) - max(2, n // 4))
            pinned.update(n_gpu_layers=new_gl, cpu_expert_layers=plan.cpu_expert_layers)
            changes.append(f"{new_gl} layers on the GPU (was {min(gl, n)})")
    if not gpu or plan.n_ctx > MIN_GOOD_CTX:
        floor = min(MIN_GOOD_CTX if plan.n_ctx > MIN_GOOD_CTX else 2048, plan.n_ctx)
        n_ctx = max(floor, plan.n_ctx // 2)
        if n_ctx != plan.n_ctx:
            changes.append(f"context {n_ctx:,} tokens (was {plan.n_ctx:,})")
    if plan.n_ubatch > 256:
        pinned["n_ubatch"] = 256
        changes.append("smaller prompt batches")
    if not changes and plan.type_k == "f16":
        pinned["type_k"] = pinned["type_v"] = "q8_0"
        changes.append("an 8-bit KV cache")
    new = plan_load(spec, hw, n_ctx=n_ctx, overrides=pinned)
    saved = plan.ram_bytes + plan.vram_bytes - new.ram_bytes - new.vram_bytes
    reason = ("Loading ran out of memory, so Hearth is trying again with "
              + (", ".join(changes) if changes else "the same settings")
              + (f" ({_gib(saved)} less)." if saved > 0 else ".")
              + (" Generation will be slower." if gpu else ""))
    new.notes = [*new.notes, "retry after running out of memory"]
    return new, reason
