"""From a model file and the user's settings to a loaded engine.

The hardware planner decides (GPU layers, experts on CPU, context, flash
attention, mmap); the user's explicit settings override it. If a load with the
plan runs out of memory, Hearth retries once with a more conservative plan and
says what changed and why.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from app.engine.client import EngineClient
from app.errors import ModelLoadError, NotGGUFError
from app.gguf_info import read_gguf_info
from app.hardware import HardwareInfo, detect_hardware
from app.planner import LoadPlan, ModelSpec, conservative, plan_load
from app.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class LoadChoice:
    params: dict[str, Any]
    plan: dict[str, Any]  # the planner's plan as JSON
    explanation: str
    plan_obj: LoadPlan | None = field(default=None, repr=False)
    retry_note: str = ""  # set when the first plan ran out of memory


def choose_load(path: str, settings: Settings, *, n_ctx: int | None = None,
                hardware: HardwareInfo | None = None) -> LoadChoice:
    """The load parameters for ``path``; raises NotGGUFError for files that aren't models."""
    info = read_gguf_info(path)  # validates the file before any worker is started
    missing = info.missing_required_keys()
    if missing:
        # llama.cpp would stop with only "failed to load model from file".
        raise NotGGUFError(
            f"{info.path.name} cannot be loaded: its header has no {', '.join(missing)} "
            f"{'key' if len(missing) == 1 else 'keys'}, which llama.cpp needs for a '{info.architecture}' model. "
            "The file is incomplete or was converted wrongly; download or convert the model again."
        )
    hw = hardware or detect_hardware()
    overrides: dict[str, Any] = {}
    if settings.gpu_layers_override is not None:
        overrides["n_gpu_layers"] = settings.gpu_layers_override
    if settings.cpu_moe_override is not None:
        overrides["cpu_expert_layers"] = settings.cpu_moe_override
    if settings.threads:
        overrides["n_threads"] = settings.threads
    if settings.kv_cache in ("f16", "q8_0"):
        # The user's choice (or an accepted kv_offer): pinned, so no fallback or offer changes it.
        overrides["type_k"] = overrides["type_v"] = settings.kv_cache
    plan = plan_load(ModelSpec.from_gguf(info), hw, n_ctx=n_ctx or settings.context_size,
                     overrides=overrides or None)
    return LoadChoice(params=plan.engine_params(), plan=plan.to_json(), explanation=plan.explanation,
                      plan_obj=plan)


def _is_oom(exc: ModelLoadError) -> bool:
    return getattr(exc, "kind", "") == "oom" or "stopped while loading" in str(exc)


def load_model(engine: EngineClient, path: str, settings: Settings, *, states_dir: str | None = None,
               n_ctx: int | None = None, hardware: HardwareInfo | None = None) -> Iterator[float | LoadChoice]:
    """Load ``path``: yields progress fractions, then the LoadChoice that worked.

    On an out-of-memory failure the plan is made more conservative once; the
    choice's ``retry_note`` tells the user what changed.
    """
    choice = choose_load(path, settings, n_ctx=n_ctx, hardware=hardware)
    kw = {"state_budget_bytes": settings.state_cache_bytes, "states_dir": states_dir}
    try:
        for frac in engine.load(path, choice.params, **kw):
            yield frac
    except ModelLoadError as exc:
        if not _is_oom(exc) or choice.plan_obj is None:
            raise
        smaller, note = conservative(choice.plan_obj)
        log.warning("%s; %s", exc, note)
        choice = LoadChoice(params=smaller.engine_params(), plan=smaller.to_json(),
                            explanation=smaller.explanation, plan_obj=smaller, retry_note=note)
        try:
            for frac in engine.load(path, choice.params, **kw):
                yield frac
        except ModelLoadError as exc2:
            raise ModelLoadError(f"{exc2} (Hearth already retried with less memory: {note})") from exc2
    yield choice
