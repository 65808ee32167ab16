"""The load planner on injected hardware descriptions: gpt-oss-20b on the four profiles and more."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.gguf_info import read_gguf_info
from app.hardware import BackendInfo, GPUInfo, HardwareInfo, builtin_profile
from app.planner import DOES_NOT_FIT, FITS, FITS_SLOWER, ModelSpec, conservative, plan_load
from app.planner.memory import MIB, Placement, kv_bytes
from tests.app.hardware.test_hw_cli import GPTOSS_ENTRY

GIB = 1024**3


@pytest.fixture(scope="module")
def gptoss() -> ModelSpec:
    return ModelSpec.from_catalog(GPTOSS_ENTRY)


def _cpu_machine(ram_gib: float, cores: int = 8) -> HardwareInfo:
    return HardwareInfo(source="test", os="Linux", arch="x86_64", cpu_physical_cores=cores,
                        ram_total=int(ram_gib * GIB), ram_available=int(ram_gib * GIB) - GIB,
                        memory_bandwidth_gbps=50.0, backend=BackendInfo(probed=True, gpu_offload=False))


def _gpu_machine(vram_gib: float, ram_gib: float = 32) -> HardwareInfo:
    hw = _cpu_machine(ram_gib)
    hw.backend = BackendInfo(probed=True, gpu_offload=True)
    hw.gpus = [GPUInfo(name="Test GPU", vendor="nvidia", backend="cuda", vram_total=int(vram_gib * GIB),
                       vram_free=int(vram_gib * GIB), bandwidth_gbps=400.0)]
    return hw


def test_gptoss_kv_cache_matches_llama_cpp(gptoss: ModelSpec) -> None:
    # 12 full-attention layers grow with context (2,048 B per token per layer);
    # the 12 sliding layers hold pad(128 + 512, 256) = 768 cells.
    assert gptoss.n_full_layers == 12
    at_32k = kv_bytes(gptoss, Placement(n_ctx=32768, n_gpu_layers=0, cpu_expert_layers=0), range(24))
    assert at_32k == 768 * MIB + 18 * MIB
    at_8k = kv_bytes(gptoss, Placement(n_ctx=8192, n_gpu_layers=0, cpu_expert_layers=0), range(24))
    assert at_8k == 192 * MIB + 18 * MIB
    swa_full = kv_bytes(gptoss, Placement(n_ctx=32768, n_gpu_layers=0, cpu_expert_layers=0, swa_full=True),
                        range(24))
    assert swa_full == 2 * 768 * MIB


def test_gptoss_on_apple_16gb_keeps_some_experts_on_the_cpu(gptoss: ModelSpec) -> None:
    plan = plan_load(gptoss, builtin_profile("apple-m-16gb"))
    assert plan.verdict == FITS_SLOWER
    assert 1 <= plan.cpu_expert_layers <= 12
    assert plan.n_ctx >= 8192
    assert plan.vram_bytes <= 16 * GIB * 2 // 3  # inside Metal's working set
    assert plan.ram_bytes <= 16 * GIB
    assert plan.flash_attn and not plan.swa_full
    assert "experts of" in plan.explanation and "Apple" in plan.explanation
    assert 10 < plan.est_tok_per_s < 40


def test_gptoss_on_8gb_nvidia_offloads_experts_like_n_cpu_moe(gptoss: ModelSpec) -> None:
    plan = plan_load(gptoss, builtin_profile("nvidia-8gb-ram-16gb"))
    assert plan.verdict == FITS_SLOWER
    assert plan.n_gpu_layers == -1  # every layer on the GPU, only experts in RAM
    assert 8 <= plan.cpu_expert_layers <= 18  # upstream runs it with about 12
    assert plan.vram_bytes <= 8 * GIB
    assert plan.n_ctx >= 8192
    assert plan.engine_params()["cpu_moe_layers"] == plan.cpu_expert_layers
    assert "RTX 2080" in plan.explanation and "tokens/s" in plan.explanation
    assert 15 < plan.est_tok_per_s < 60


def test_gptoss_on_cpu_16gb_fits_without_mmap(gptoss: ModelSpec) -> None:
    plan = plan_load(gptoss, builtin_profile("cpu-16gb"))
    assert plan.verdict == FITS
    assert plan.n_gpu_layers == 0 and plan.cpu_expert_layers == 0
    assert plan.use_mmap is False  # mmap would double resident memory on x86 (repacking)
    assert plan.n_ctx >= 8192
    assert 11 * GIB < plan.ram_bytes < 13 * GIB
    assert plan.n_threads == 8
    assert plan.explanation.startswith("Runs on the CPU")


def test_gptoss_on_cpu_8gb_does_not_fit_and_says_why(gptoss: ModelSpec) -> None:
    plan = plan_load(gptoss, builtin_profile("cpu-8gb"))
    assert plan.verdict == DOES_NOT_FIT
    assert plan.ram_bytes > 8 * GIB
    assert "Does not fit" in plan.explanation and "8.6 GB" in plan.explanation


def test_context_grows_to_the_model_maximum_when_memory_allows(gptoss: ModelSpec) -> None:
    plan = plan_load(gptoss, _cpu_machine(64))
    assert plan.n_ctx == 131072
    small = plan_load(gptoss, _cpu_machine(16))
    assert 8192 <= small.n_ctx < 131072


def test_requested_context_is_kept_or_clamped(gptoss: ModelSpec) -> None:
    plan = plan_load(gptoss, _cpu_machine(32), n_ctx=4096)
    assert plan.n_ctx == 4096
    assert "long reasoning may be cut off" in plan.explanation
    big = plan_load(gptoss, _cpu_machine(32), n_ctx=1_000_000)
    assert big.n_ctx == 131072 and "more than this model supports" in big.explanation


def test_tight_memory_falls_back_to_8bit_kv_before_a_short_context(gptoss: ModelSpec) -> None:
    # Just enough RAM for 8k with an 8-bit cache (but not with f16).
    f16 = plan_load(gptoss, _cpu_machine(64), n_ctx=8192)
    need = f16.ram_bytes - 60 * MIB
    hw = _cpu_machine(need / GIB / 0.8 + 0.01)
    plan = plan_load(gptoss, hw)
    assert plan.verdict == FITS
    assert plan.n_ctx >= 8192
    assert plan.n_ubatch == 256 or plan.type_k == "q8_0"


def test_overrides_pin_the_users_choices(gptoss: ModelSpec) -> None:
    hw = builtin_profile("nvidia-8gb-ram-16gb")
    plan = plan_load(gptoss, hw, overrides={"cpu_expert_layers": 20, "n_threads": 3})
    assert plan.cpu_expert_layers == 20 and plan.n_threads == 3
    layers = plan_load(gptoss, hw, overrides={"n_gpu_layers": 10})
    assert layers.n_gpu_layers == 10 and layers.verdict == FITS_SLOWER
    assert "14 of 24 layers and the output layer run on the CPU" in layers.explanation


def test_dense_model_on_a_small_gpu_offloads_some_layers(gemma_path: Path) -> None:
    spec = ModelSpec.from_gguf(read_gguf_info(gemma_path))
    roomy = plan_load(spec, _gpu_machine(8))
    assert roomy.verdict == FITS and roomy.n_gpu_layers == -1
    assert roomy.explanation.startswith("Fits on the Test GPU")
    hw = _gpu_machine(0.75)  # CUDA takes ~450 MiB itself: little room is left for layers
    tight = plan_load(spec, hw, n_ctx=4096)
    assert tight.verdict == FITS_SLOWER and 0 <= tight.n_gpu_layers < spec.n_layers


def test_gpu_without_a_gpu_build_plans_for_the_cpu(gptoss: ModelSpec) -> None:
    hw = _gpu_machine(24)
    hw.backend = BackendInfo(probed=True, gpu_offload=False)
    plan = plan_load(gptoss, hw)
    assert plan.n_gpu_layers == 0 and plan.vram_bytes == 0
    assert "no GPU support" in plan.explanation


def test_unknown_ram_is_assumed_and_said(gptoss: ModelSpec) -> None:
    hw = _cpu_machine(16)
    hw.ram_total = hw.ram_available = None
    hw.unknown["ram"] = "PermissionError: denied"
    plan = plan_load(gptoss, hw)
    assert plan.verdict == DOES_NOT_FIT
    assert "RAM unknown" in plan.explanation and "denied" in plan.explanation


def test_engine_params_are_what_the_worker_takes(gptoss: ModelSpec) -> None:
    params = plan_load(gptoss, builtin_profile("cpu-16gb")).engine_params()
    assert set(params) == {"n_ctx", "n_gpu_layers", "flash_attn", "swa_full", "use_mmap", "n_threads",
                           "n_batch", "n_ubatch", "type_k", "type_v", "cpu_moe_layers"}
    assert params["type_k"] == 1 and params["swa_full"] is False and params["flash_attn"] is True


def test_conservative_retry_on_gpu_moves_more_experts(gptoss: ModelSpec) -> None:
    plan = plan_load(gptoss, builtin_profile("nvidia-8gb-ram-16gb"))
    retry, reason = conservative(plan)
    assert retry.cpu_expert_layers > plan.cpu_expert_layers
    assert retry.vram_bytes < plan.vram_bytes
    assert "ran out of memory" in reason and "experts of" in reason and "slower" in reason


def test_conservative_retry_on_cpu_shrinks_the_context(gptoss: ModelSpec) -> None:
    plan = plan_load(gptoss, builtin_profile("cpu-16gb"))
    retry, reason = conservative(plan)
    assert retry.n_ctx < plan.n_ctx and retry.ram_bytes < plan.ram_bytes
    assert f"context {retry.n_ctx:,}" in reason and f"was {plan.n_ctx:,}" in reason
    again, _ = conservative(retry)
    assert again.ram_bytes <= retry.ram_bytes


def test_catalog_and_file_agree_on_gptoss_shapes(gptoss_mxfp4_path: Path, gptoss: ModelSpec) -> None:
    tiny = ModelSpec.from_gguf(read_gguf_info(gptoss_mxfp4_path))
    assert tiny.is_moe and tiny.swa_layers == (True, False)
    assert gptoss.swa_layers == tuple(i % 2 == 0 for i in range(24))
    # Catalog numbers rebuild the file's size within a few MB.
    assert abs(gptoss.weight_bytes - GPTOSS_ENTRY["size_bytes"]) < 32 * MIB


@pytest.mark.skipif(not os.environ.get("HEARTH_FULL_GPTOSS"), reason="set HEARTH_FULL_GPTOSS to a full-size file")
def test_catalog_spec_matches_the_full_size_file(gptoss: ModelSpec) -> None:
    real = ModelSpec.from_gguf(read_gguf_info(os.environ["HEARTH_FULL_GPTOSS"]))
    for profile in ("apple-m-16gb", "nvidia-8gb-ram-16gb", "cpu-16gb"):
        a, b = plan_load(gptoss, builtin_profile(profile)), plan_load(real, builtin_profile(profile))
        assert a.verdict == b.verdict
        assert abs(a.ram_bytes - b.ram_bytes) < 0.02 * b.ram_bytes


def test_missing_catalog_numbers_are_named() -> None:
    with pytest.raises(ValueError, match="no 'n_layers'"):
        ModelSpec.from_catalog({k: v for k, v in GPTOSS_ENTRY.items() if k != "n_layers"})
    with pytest.raises(ValueError, match="'size_bytes' must be"):
        ModelSpec.from_catalog(dict(GPTOSS_ENTRY, size_bytes="big"))
    partial = ModelSpec.from_catalog({k: v for k, v in GPTOSS_ENTRY.items()
                                      if k not in ("sliding_window", "expert_bytes", "n_ctx_train")})
    assert partial.n_ctx_train == 4096 and not partial.is_moe


def test_plan_json_has_the_documented_keys(gptoss: ModelSpec) -> None:
    data = plan_load(gptoss, builtin_profile("apple-m-16gb")).to_json()
    for key in ("verdict", "ram_bytes", "vram_bytes", "n_ctx", "n_gpu_layers", "cpu_expert_layers",
                "est_tok_per_s", "explanation", "breakdown"):
        assert key in data
    assert not any(k.startswith("_") for k in data)


def test_user_gpu_settings_that_overflow_vram_are_explained(gptoss: ModelSpec) -> None:
    plan = plan_load(gptoss, builtin_profile("nvidia-8gb-ram-16gb"),
                     overrides={"n_gpu_layers": 24, "cpu_expert_layers": 0})
    assert plan.verdict == DOES_NOT_FIT
    assert "GPU memory" in plan.explanation and "fewer layers on the GPU" in plan.explanation


def test_too_little_ram_and_vram_together(gptoss: ModelSpec) -> None:
    hw = _gpu_machine(4, ram_gib=6)
    plan = plan_load(gptoss, hw)
    assert plan.verdict == DOES_NOT_FIT
    assert "in RAM and GPU memory together" in plan.explanation and "Test GPU" in plan.explanation
