"""The 8-bit KV-cache offer: when it appears, that its numbers are memory.py's, that the
setting is honoured, and that a real q8_0 load's peak RSS is what the planner predicts.

The measurements load gemma 270M at 32k tokens in the engine worker (its own fresh
process, spawned per load), process a prompt longer than one micro-batch and
generate a few tokens, as tests/app/planner/test_calibration.py does; the worker's
peak is read from /proc/<pid>/status (VmHWM), which belongs to that program alone.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import pytest

from app.engine.client import EngineClient
from app.gguf_info import read_gguf_info
from app.hardware import HardwareInfo, builtin_profile, detect_hardware
import app.hardware.cli as hw_cli
from app.hardware.cli import add_plan_parser, run_plan
from app.loading import LoadChoice, choose_load, load_model
from app.paths import AppPaths, resolve_paths
from app.planner import DOES_NOT_FIT, KV_CACHE_CHOICES, ModelSpec, conservative, plan_load
from app.planner.calibrate import DEFAULT_PROMPT
from app.planner.memory import KV_TYPE_BYTES, MIB, Placement, estimate, kv_bytes
from app.planner.plan import GGML_TYPE_IDS, GROW_MIN_SPEED, ram_reserve
from app.prompt import Segment
from app.settings import Settings
from tests.app.hardware.test_hw_cli import GPTOSS_ENTRY
from tests.app.planner.test_plan import _cpu_machine, _gpu_machine

GIB = 1024**3
TOLERANCE = 0.10  # the bound: measured RSS within ±10% of the prediction
# The calibration prompt, cut to about 680 tokens: more than one 512-token micro-batch,
# so the compute buffer is used as in a real conversation, yet quick on two cores.
WARM_UP_PROMPT = " ".join(DEFAULT_PROMPT.split(" ")[: 45 * 11])


@pytest.fixture(scope="module")
def gptoss() -> ModelSpec:
    return ModelSpec.from_catalog(GPTOSS_ENTRY)


def _gpu_16gb_desktop() -> HardwareInfo:
    """A 16 GiB card with a desktop running on it (1 GiB taken), 32 GiB RAM."""
    hw = _gpu_machine(16, ram_gib=32)
    hw.gpus[0].vram_free = 15 * GIB
    return hw


def _same_placement(spec: ModelSpec, hw: HardwareInfo, plan_like: object, **changes: object) -> tuple[Placement, object]:
    """The Placement and memory.estimate() behind a plan or an offer (engine params → placement)."""
    p = getattr(plan_like, "params", None) or plan_like.engine_params()  # type: ignore[attr-defined]
    ids = {v: k for k, v in GGML_TYPE_IDS.items()}
    n_gpu = p["n_gpu_layers"]
    placement = Placement(n_ctx=p["n_ctx"], n_gpu_layers=spec.n_layers + 1 if n_gpu < 0 else n_gpu,
                          cpu_expert_layers=p["cpu_moe_layers"], type_k=ids[p["type_k"]], type_v=ids[p["type_v"]],
                          flash_attn=p["flash_attn"], n_ubatch=p["n_ubatch"], use_mmap=p["use_mmap"],
                          swa_full=p["swa_full"])
    placement = replace(placement, **changes)  # type: ignore[arg-type]
    gpu = hw.primary_gpu
    backend = (gpu.backend or "cuda") if gpu is not None and hw.backend.gpu_offload else None
    est = estimate(spec, placement, gpu_backend=backend, unified=bool(gpu and gpu.unified_memory and backend),
                   cpu_bw_gbps=hw.memory_bandwidth_gbps or 30.0, gpu_bw_gbps=gpu.bandwidth_gbps if gpu else None,
                   repack_on_mmap=(hw.arch or "x86_64") == "x86_64")
    return placement, est


# ---- when the offer appears ------------------------------------------------------


def test_16gb_cpu_machine_is_offered_twice_the_context_in_the_same_ram(gptoss: ModelSpec) -> None:
    hw = builtin_profile("cpu-16gb")
    plan = plan_load(gptoss, hw)
    offer = plan.kv_offer
    assert plan.type_k == "f16" and plan.n_ctx == 32768
    assert offer is not None
    assert (offer.n_ctx, offer.type_k, offer.type_v, offer.flash_attn) == (65536, "q8_0", "q8_0", True)
    # The offer's numbers are memory.py's for that placement ...
    _, est = _same_placement(gptoss, hw, offer)
    assert (offer.ram_bytes, offer.vram_bytes) == (est.ram, est.vram)
    assert offer.breakdown["ram_kv"] == est.breakdown["ram_kv"]
    # ... and llama.cpp's: 12 full layers of n_ctx cells and 12 sliding ones of 768, each cell
    # 8 KV heads x 64 x (K + V) values, at 2 bytes (f16) or 34 bytes per 32 values (q8_0).
    values_per_cell = 8 * 64 * 2
    assert plan.breakdown["ram_kv"] == (12 * 32768 + 12 * 768) * values_per_cell * 2
    assert offer.breakdown["ram_kv"] == (12 * 65536 + 12 * 768) * values_per_cell * KV_TYPE_BYTES["q8_0"]
    budget = hw.ram_total - ram_reserve(hw.ram_total)  # type: ignore[operator]
    assert offer.ram_bytes <= budget
    # ... and the same context in f16 would not fit: the offer is what makes 64k possible.
    _, f16_64k = _same_placement(gptoss, hw, offer, type_k="f16", type_v="f16")
    assert f16_64k.ram > budget
    assert offer.est_tok_per_s >= GROW_MIN_SPEED * plan.est_tok_per_s
    assert offer.params["type_k"] == offer.params["type_v"] == GGML_TYPE_IDS["q8_0"]
    assert offer.params["n_ctx"] == 65536 and offer.params["flash_attn"] is True
    e = offer.explanation
    assert "doubles the context" in e and "32,768 to 65,536" in e and "less precise attention" in e
    assert "similar speed" in e


def test_16gb_gpu_is_offered_the_full_context(gptoss: ModelSpec) -> None:
    hw = _gpu_16gb_desktop()
    plan = plan_load(gptoss, hw)
    offer = plan.kv_offer
    assert plan.n_gpu_layers == -1 and plan.n_ctx == 65536
    assert offer is not None and offer.n_ctx == 131072 and offer.n_gpu_layers == -1
    _, est = _same_placement(gptoss, hw, offer)
    assert (offer.ram_bytes, offer.vram_bytes) == (est.ram, est.vram)
    assert offer.breakdown["vram_kv"] == kv_bytes(gptoss, Placement(131072, 25, 0, "q8_0", "q8_0"), range(24))
    assert offer.vram_bytes <= plan.vram_budget
    _, f16_128k = _same_placement(gptoss, hw, offer, type_k="f16", type_v="f16")
    assert f16_128k.vram > plan.vram_budget
    assert "GPU memory" in offer.explanation and "the most this model takes" in offer.explanation


def test_16gb_mac_is_offered_twice_the_context(gptoss: ModelSpec) -> None:
    hw = builtin_profile("apple-m-16gb")
    plan = plan_load(gptoss, hw)
    assert plan.kv_offer is not None and plan.kv_offer.n_ctx == 2 * plan.n_ctx
    _, est = _same_placement(gptoss, hw, plan.kv_offer)
    assert plan.kv_offer.vram_bytes == est.vram and plan.kv_offer.vram_bytes <= plan.vram_budget


def test_no_offer_when_f16_already_reaches_the_models_maximum(gptoss: ModelSpec) -> None:
    for hw in (_gpu_machine(16, ram_gib=32), _cpu_machine(64)):
        plan = plan_load(gptoss, hw)
        assert plan.n_ctx == 131072 and plan.type_k == "f16"
        assert plan.kv_offer is None
        assert plan.to_json()["kv_offer"] is None


def test_no_offer_for_a_pinned_cache_type_a_chosen_context_or_a_model_that_does_not_fit(gptoss: ModelSpec) -> None:
    hw = builtin_profile("cpu-16gb")
    assert plan_load(gptoss, hw, overrides={"type_k": "f16", "type_v": "f16"}).kv_offer is None
    pinned = plan_load(gptoss, hw, overrides={"type_k": "q8_0", "type_v": "q8_0"})
    assert pinned.kv_offer is None and pinned.n_ctx == 65536 and pinned.type_v == "q8_0"
    assert plan_load(gptoss, hw, n_ctx=16384).kv_offer is None
    assert plan_load(gptoss, builtin_profile("cpu-8gb")).verdict == DOES_NOT_FIT
    assert plan_load(gptoss, builtin_profile("cpu-8gb")).kv_offer is None


def test_no_offer_when_the_8bit_cache_gains_less_than_double(gptoss: ModelSpec) -> None:
    # The 8 GiB GPU keeps 64k either way (the 8-bit cache only moves two layers' experts back).
    plan = plan_load(gptoss, builtin_profile("nvidia-8gb-ram-16gb"))
    alt = plan_load(gptoss, builtin_profile("nvidia-8gb-ram-16gb"), overrides={"type_k": "q8_0", "type_v": "q8_0"})
    assert alt.n_ctx == plan.n_ctx
    assert plan.kv_offer is None


def test_quantized_v_without_flash_attention_is_refused(gptoss: ModelSpec) -> None:
    with pytest.raises(ValueError, match="needs flash attention"):
        plan_load(gptoss, builtin_profile("cpu-16gb"), overrides={"type_k": "q8_0", "flash_attn": False})
    with pytest.raises(ValueError, match="unknown KV cache type 'q9'"):
        plan_load(gptoss, builtin_profile("cpu-16gb"), overrides={"type_k": "q9"})


def test_a_retry_after_running_out_of_memory_keeps_the_8bit_cache(gptoss: ModelSpec) -> None:
    plan = plan_load(gptoss, builtin_profile("cpu-16gb"), overrides={"type_k": "q8_0", "type_v": "q8_0"})
    retry, _reason = conservative(plan)
    assert retry.type_k == retry.type_v == "q8_0"
    assert retry.n_ctx < plan.n_ctx and retry.ram_bytes < plan.ram_bytes


# ---- the setting and the command line --------------------------------------------


def test_setting_choices_match_the_planner() -> None:
    for choice in KV_CACHE_CHOICES:
        Settings(kv_cache=choice).validate()
    from app.errors import SettingsError

    with pytest.raises(SettingsError, match="KV cache must be auto, f16 or q8_0"):
        Settings(kv_cache="q4_0").validate()


def test_kv_cache_setting_is_honoured_by_the_loader(gemma_path: Path) -> None:
    spec = ModelSpec.from_gguf(read_gguf_info(gemma_path))
    f16_full = plan_load(spec, _cpu_machine(64), n_ctx=spec.n_ctx_train)
    q8_full = plan_load(spec, _cpu_machine(64), n_ctx=spec.n_ctx_train, overrides={"type_k": "q8_0"})
    # A machine whose budget holds gemma's full 32k context only with the 8-bit cache.
    budget = (f16_full.ram_bytes + q8_full.ram_bytes) // 2
    hw = _cpu_machine((budget + 2.5 * GIB) / GIB)
    auto = choose_load(str(gemma_path), Settings(), hardware=hw)
    assert auto.params["type_k"] == GGML_TYPE_IDS["f16"] and auto.params["n_ctx"] < spec.n_ctx_train
    assert auto.plan["kv_offer"]["n_ctx"] == spec.n_ctx_train
    assert auto.plan["kv_offer"]["type_k"] == "q8_0"
    accepted = choose_load(str(gemma_path), Settings(kv_cache="q8_0"), hardware=hw)
    assert accepted.params["type_k"] == accepted.params["type_v"] == GGML_TYPE_IDS["q8_0"]
    assert accepted.params["flash_attn"] is True
    assert accepted.params == auto.plan["kv_offer"]["params"]  # accepting gives what was offered
    assert accepted.plan["kv_offer"] is None
    full = choose_load(str(gemma_path), Settings(kv_cache="f16"), hardware=hw)
    assert full.params["type_k"] == GGML_TYPE_IDS["f16"] and full.plan["kv_offer"] is None


def _plan_cli(argv: list[str], paths: AppPaths, capsys: pytest.CaptureFixture[str]) -> str:
    parser = argparse.ArgumentParser(prog="hearth")
    add_plan_parser(parser.add_subparsers(dest="command"))
    assert run_plan(parser.parse_args(["plan", *argv]), paths) == 0
    return capsys.readouterr().out


def test_hearth_plan_shows_the_offer(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # The catalog's gpt-oss-20b entry, whatever assets/catalog.json holds today.
    monkeypatch.setattr(hw_cli, "resolve_model", lambda model, paths: ModelSpec.from_catalog(GPTOSS_ENTRY))
    paths = resolve_paths(tmp_path / "data").ensure()
    text = _plan_cli(["gpt-oss-20b", "--hardware", "cpu-16gb"], paths, capsys)
    assert "context 32,768" in text and "KV f16/f16" in text
    assert "Offer: An 8-bit (q8_0) KV cache doubles the context" in text
    assert "context 65,536; KV q8_0/q8_0" in text and "--kv-cache q8_0" in text
    data = json.loads(_plan_cli(["gpt-oss-20b", "--hardware", "cpu-16gb", "--json"], paths, capsys))
    assert data["n_ctx"] == 32768 and data["type_k"] == "f16"  # the existing fields are unchanged
    offer = data["kv_offer"]
    assert {"n_ctx", "type_k", "type_v", "ram_bytes", "vram_bytes", "explanation"} <= set(offer)
    assert (offer["n_ctx"], offer["type_k"], offer["type_v"]) == (65536, "q8_0", "q8_0")
    taken = json.loads(_plan_cli(["gpt-oss-20b", "--hardware", "cpu-16gb", "--kv-cache", "q8_0", "--json"],
                                 paths, capsys))
    assert taken["n_ctx"] == 65536 and taken["type_k"] == "q8_0" and taken["kv_offer"] is None
    assert taken["ram_bytes"] == offer["ram_bytes"]
    no_offer = _plan_cli(["gpt-oss-20b", "--hardware", "cpu-16gb", "--kv-cache", "f16"], paths, capsys)
    assert "Offer:" not in no_offer and "context 32,768" in no_offer


# ---- real loads: the prediction against the worker's peak RSS -----------------------


def _vm_hwm(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM for process {pid}")


def _load_and_measure(gemma_path: Path, kv_cache: str, n_ctx: int) -> tuple[LoadChoice, int]:
    """Load through Settings → planner → loader → worker; warm up; return (choice, the worker's peak RSS)."""
    settings = Settings(kv_cache=kv_cache, context_size=n_ctx, threads=2,
                        state_cache_bytes=0)  # the state cache is its own budget, not the model's
    engine = EngineClient()
    try:
        items = list(load_model(engine, str(gemma_path), settings, hardware=detect_hardware(probe_llama=False)))
        choice = items[-1]
        assert isinstance(choice, LoadChoice) and not choice.retry_note
        info = engine.model_info or {}
        assert info["n_ctx"] == n_ctx
        stats: dict = {}
        for ev in engine.generate({"max_tokens": 8, "temperature": 0.0}, [Segment(WARM_UP_PROMPT, False)]):
            if not hasattr(ev, "text"):
                stats = ev.stats
        assert stats["prompt_tokens"] > choice.params["n_ubatch"]  # a full micro-batch was processed
        assert engine.pid is not None
        return choice, _vm_hwm(engine.pid)
    finally:
        engine.close()


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the worker's VmHWM from /proc")
def test_gemma_8bit_kv_plan_is_what_the_worker_uses(gemma_path: Path) -> None:
    n_ctx = 32768  # gemma's full context: the KV cache makes the difference between the two loads
    q8, q8_peak = _load_and_measure(gemma_path, "q8_0", n_ctx)
    f16, f16_peak = _load_and_measure(gemma_path, "f16", n_ctx)
    assert q8.plan["type_k"] == q8.plan["type_v"] == "q8_0" and q8.params["flash_attn"] is True
    assert f16.plan["type_k"] == "f16"
    for choice, peak, kind in ((q8, q8_peak, "q8_0"), (f16, f16_peak, "f16")):
        err = (choice.plan["ram_bytes"] - peak) / peak
        assert abs(err) <= TOLERANCE, (f"{kind} at {n_ctx}: predicted {choice.plan['ram_bytes'] / MIB:.0f} MiB, "
                                       f"peak RSS {peak / MIB:.0f} MiB ({err:+.1%}); {choice.plan['breakdown']}")
    # The 8-bit cache saves what the planner says it saves (about 53 MiB here).
    predicted_saving = f16.plan["ram_bytes"] - q8.plan["ram_bytes"]
    measured_saving = f16_peak - q8_peak
    assert predicted_saving > 40 * MIB
    assert measured_saving == pytest.approx(predicted_saving, rel=0.25), (
        f"q8_0 saved {measured_saving / MIB:.0f} MiB, predicted {predicted_saving / MIB:.0f} MiB")
