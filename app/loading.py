"""From a model file and the user's settings to the engine's load parameters.

The hardware planner decides (GPU layers, experts on CPU, context, flash
attention, mmap); the user's explicit settings override it.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

from app.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class LoadChoice:
    params: dict[str, Any]
    plan: dict[str, Any] | None  # the planner's plan as JSON, when it ran
    explanation: str


def _physical_cores() -> int:
    try:
        import psutil

        return max(1, int(psutil.cpu_count(logical=False) or os.cpu_count() or 1))
    except Exception:  # noqa: BLE001 - a failed probe falls back to the logical count
        return max(1, os.cpu_count() or 1)


def choose_load(path: str, settings: Settings, *, n_ctx: int | None = None) -> LoadChoice:
    """The load parameters for ``path``; raises NotGGUFError for files that aren't models."""
    from app.gguf_info import read_gguf_info

    info = read_gguf_info(path)  # validates the file before a worker is started
    plan_json: dict[str, Any] | None = None
    explanation = ""
    try:
        from app.hardware import detect_hardware
        from app.planner import ModelSpec, plan_load

        hw = detect_hardware()
        overrides = {}
        if settings.gpu_layers_override is not None:
            overrides["n_gpu_layers"] = settings.gpu_layers_override
        if settings.cpu_moe_override is not None:
            overrides["cpu_expert_layers"] = settings.cpu_moe_override
        if settings.threads:
            overrides["n_threads"] = settings.threads
        plan = plan_load(ModelSpec.from_gguf(info), hw, n_ctx=n_ctx or settings.context_size,
                         overrides=overrides or None)
        params = plan.engine_params()
        plan_json = plan.to_json()
        explanation = plan.explanation
    except ImportError:
        # The planner is not part of this build: safe CPU defaults.
        ctx = n_ctx or settings.context_size or min(8192, info.n_ctx_train or 8192)
        params = {
            "n_ctx": ctx,
            "n_threads": settings.threads or _physical_cores(),
            "n_gpu_layers": 0,
            "flash_attn": True,
            "swa_full": False,
            "use_mmap": info.architecture != "gpt-oss",
        }
        explanation = f"CPU, context {ctx:,} tokens"
    if n_ctx:
        params["n_ctx"] = int(n_ctx)
    elif settings.context_size:
        params["n_ctx"] = int(settings.context_size)
    if settings.threads:
        params["n_threads"] = int(settings.threads)
    params["n_ctx"] = max(256, min(int(params["n_ctx"]), max(256, int(info.n_ctx_train or params["n_ctx"]))))
    return LoadChoice(params=params, plan=plan_json, explanation=explanation)
