"""How much RAM and VRAM one placement of a model costs, and how fast it generates.

The model follows llama.cpp 0.3.36 (vendored in llama-cpp-python): weights go
where their layer goes (``n_gpu_layers`` offloads the *last* layers, the
output layer only when all layers are offloaded, token embeddings never);
``--n-cpu-moe N`` keeps the experts of the *first* N layers in RAM; each
layer's KV cache sits with the layer; sliding-window layers hold only
``pad(n_swa + n_ubatch, 256)`` cells. RAM is what the process keeps resident
(peak RSS), calibrated against measured loads (see app/planner/calibrate.py):
the CPU compute buffer is reserved for the worst case but only partly touched.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from app.planner.spec import ModelSpec

MIB = 1024 * 1024
GIB = 1024 * MIB

# ggml type sizes for the KV cache, bytes per element.
KV_TYPE_BYTES: dict[str, float] = {"f32": 4.0, "f16": 2.0, "bf16": 2.0, "q8_0": 34 / 32, "q5_1": 24 / 32,
                                   "q5_0": 22 / 32, "q4_1": 20 / 32, "q4_0": 18 / 32}

# Resident memory of the engine process before the model: Python, numpy,
# llama-cpp-python and the ggml libraries (measured: 42 MiB on Linux x86-64).
RUNTIME_BASE_BYTES = 48 * MIB
# llama.cpp's in-memory vocabulary: token strings, the token->id map, the
# piece cache (measured ~190 B per token with gemma's 262k vocabulary) and the
# BPE merge map.
VOCAB_BYTES_PER_TOKEN = 190
MERGE_BYTES = 110
# Host memory a GPU runtime maps into the process (CUDA context, cuBLAS kernels)
# and the device memory it takes before any buffer is allocated.
GPU_RUNTIME_RAM: dict[str, int] = {"cuda": 600 * MIB, "rocm": 600 * MIB, "vulkan": 250 * MIB, "metal": 120 * MIB}
# Measured on an H200 (CUDA 13, llama.cpp 0.3.36, gpt-oss-20b-shaped): NVML's used
# memory rose ~180 MiB more during the first generation than after the load
# (cuBLAS workspace, CUDA graphs) on top of the context's ~450 MiB.
GPU_RUNTIME_VRAM: dict[str, int] = {"cuda": 640 * MIB, "rocm": 640 * MIB, "vulkan": 300 * MIB, "metal": 0}

# Share of peak memory bandwidth generation achieves. CPU: llama-bench gives
# 13.5-14.8 tok/s for gpt-oss-20b here at ~50 GB/s and 2.58 GB read per token.
# CUDA / Metal: published gpt-oss-20b speeds (RTX 3060 ~64 tok/s at 360 GB/s;
# Mac mini M4 ~26 tok/s at 120 GB/s).
CPU_BW_EFFICIENCY = 0.75
GPU_BW_EFFICIENCY: dict[str, float] = {"cuda": 0.46, "metal": 0.56, "rocm": 0.40, "vulkan": 0.35}
# Per-token costs that do not scale with weight bytes: sampling in Python over
# the whole vocabulary (~30 ns per entry) and per-layer scheduling.
SAMPLING_NS_PER_VOCAB = 30
LAYER_OVERHEAD_S = {"cpu": 0.00005, "gpu": 0.00008}


def pad(n: int, to: int = 256) -> int:
    return -(-n // to) * to


@dataclass(frozen=True)
class Placement:
    """One candidate set of load parameters."""

    n_ctx: int
    n_gpu_layers: int  # 0 .. n_layers + 1; n_layers + 1 also offloads the output layer
    cpu_expert_layers: int  # experts of layers 0 .. N-1 kept in RAM
    type_k: str = "f16"
    type_v: str = "f16"
    flash_attn: bool = True
    n_ubatch: int = 512
    use_mmap: bool = False
    swa_full: bool = False


@dataclass
class Estimate:
    ram: int
    vram: int
    gpu_weights: int
    bytes_per_token_cpu: float
    bytes_per_token_gpu: float
    breakdown: dict[str, int] = field(default_factory=dict)


def kv_bytes_per_cell(spec: ModelSpec, type_k: str, type_v: str) -> float:
    """KV bytes one token costs in one layer."""
    return spec.n_head_kv * (spec.head_dim_k * KV_TYPE_BYTES[type_k] + spec.head_dim_v * KV_TYPE_BYTES[type_v])


def layer_cells(spec: ModelSpec, il: int, p: Placement) -> int:
    """KV cells llama.cpp allocates for layer ``il`` (llama-kv-cache-iswa.cpp)."""
    n_ctx = pad(p.n_ctx)
    if spec.swa_layers and spec.swa_layers[il] and not p.swa_full and spec.sliding_window > 0:
        return min(n_ctx, pad(spec.sliding_window + p.n_ubatch))
    return n_ctx


def kv_bytes(spec: ModelSpec, p: Placement, layers: range) -> int:
    per_cell = kv_bytes_per_cell(spec, p.type_k, p.type_v)
    return int(sum(layer_cells(spec, il, p) * per_cell for il in layers))


def activation_bytes(spec: ModelSpec, p: Placement) -> int:
    """Compute-buffer memory touched by one full micro-batch (only the needed logits row)."""
    n_ff = spec.n_ff_expert * spec.n_expert_used if spec.is_moe else spec.n_ff
    q_dim = spec.n_head * spec.head_dim_k
    kv_dim = spec.n_head_kv * (spec.head_dim_k + spec.head_dim_v)
    per_token = 4 * (4 * spec.n_embd + 3 * n_ff + 2 * q_dim + kv_dim)
    total = p.n_ubatch * per_token
    if not p.flash_attn:
        # Without flash attention the KQ matrix of one layer is materialized.
        total += spec.n_head * pad(p.n_ctx) * p.n_ubatch * 4
    return total


def reserved_compute_bytes(spec: ModelSpec, p: Placement, with_output: bool) -> int:
    """What a GPU backend reserves up front (all of it is device memory)."""
    logits = p.n_ubatch * spec.vocab_size * 4 if with_output else 0
    return activation_bytes(spec, p) + logits


def estimate(spec: ModelSpec, p: Placement, *, gpu_backend: str | None, unified: bool,
             cpu_bw_gbps: float, gpu_bw_gbps: float | None, repack_on_mmap: bool = True) -> Estimate:
    """RAM, VRAM and bytes read per token for placement ``p``.

    ``gpu_backend`` None means CPU only (``n_gpu_layers`` is then ignored).
    ``unified``: GPU buffers live in RAM too (Apple Silicon), so they count in both.
    """
    n = spec.n_layers
    gpu_layers = 0 if gpu_backend is None else max(0, min(p.n_gpu_layers, n + 1))
    first_gpu = n - min(gpu_layers, n)
    output_on_gpu = gpu_layers > n
    cpu_exp = max(0, min(p.cpu_expert_layers, n))

    w_cpu = spec.input_bytes
    w_gpu = 0
    cpu_tok = 0.0
    gpu_tok = 0.0
    for il in range(n):
        dense, exp_active = spec.layer_active_bytes(il)
        exp = spec.layer_expert_bytes[il]
        if il >= first_gpu:
            w_gpu += spec.layer_bytes[il] - exp
            gpu_tok += dense
            if il < cpu_exp:
                w_cpu += exp
                cpu_tok += exp_active
            else:
                w_gpu += exp
                gpu_tok += exp_active
        else:
            w_cpu += spec.layer_bytes[il]
            cpu_tok += dense + exp_active
    if output_on_gpu:
        w_gpu += spec.output_bytes
        gpu_tok += spec.output_bytes
    else:
        w_cpu += 0 if spec.output_tied else spec.output_bytes
        cpu_tok += spec.output_bytes

    kv_gpu = kv_bytes(spec, p, range(first_gpu, n)) if gpu_layers else 0
    kv_cpu = kv_bytes(spec, p, range(0, first_gpu))

    runtime = (RUNTIME_BASE_BYTES + spec.vocab_size * VOCAB_BYTES_PER_TOKEN + spec.n_merges * MERGE_BYTES
               + spec.vocab_size * 4)  # + llama.cpp's one-row output buffer
    breakdown: dict[str, int] = {}
    vram = 0
    if gpu_backend is not None and gpu_layers:
        runtime += GPU_RUNTIME_RAM.get(gpu_backend, 300 * MIB)
        compute_gpu = reserved_compute_bytes(spec, p, output_on_gpu)
        overhead = GPU_RUNTIME_VRAM.get(gpu_backend, 300 * MIB)
        vram = w_gpu + kv_gpu + compute_gpu + overhead
        breakdown.update(vram_weights=w_gpu, vram_kv=kv_gpu, vram_compute=compute_gpu, vram_runtime=overhead)
    compute_cpu = activation_bytes(spec, p) if (first_gpu > 0 or gpu_layers == 0 or cpu_exp > 0) else 0
    # With mmap, llama.cpp on x86 repacks CPU-side quantized weights (MXFP4
    # experts above all) into a second buffer while the mapped file pages stay
    # resident: count the CPU weights twice (GPTOSS.md: 21-23.5 GB vs 11.5 GB).
    repack_extra = 0
    if p.use_mmap and repack_on_mmap and not unified:
        repack_extra = sum(spec.layer_expert_bytes[il] for il in range(n)
                           if il < first_gpu or il < cpu_exp)
    ram = w_cpu + kv_cpu + compute_cpu + runtime + repack_extra
    breakdown.update(ram_weights=w_cpu, ram_kv=kv_cpu, ram_compute=compute_cpu, ram_runtime=runtime)
    if repack_extra:
        breakdown["ram_mmap_repack_copy"] = repack_extra
    if unified:
        ram += vram  # Metal buffers are the same RAM
    return Estimate(ram=int(ram), vram=int(vram), gpu_weights=int(w_gpu), bytes_per_token_cpu=cpu_tok,
                    bytes_per_token_gpu=gpu_tok, breakdown={k: int(v) for k, v in breakdown.items()})


def tokens_per_second(spec: ModelSpec, est: Estimate, *, gpu_backend: str | None, cpu_bw_gbps: float,
                      gpu_bw_gbps: float | None, gpu_layers: int) -> float:
    """Generation speed from the bytes each token reads and where they are read from."""
    t = spec.vocab_size * SAMPLING_NS_PER_VOCAB * 1e-9
    t += est.bytes_per_token_cpu / (cpu_bw_gbps * 1e9 * CPU_BW_EFFICIENCY)
    t += spec.n_layers * LAYER_OVERHEAD_S["cpu"]
    if gpu_backend is not None and est.bytes_per_token_gpu > 0:
        eff = GPU_BW_EFFICIENCY.get(gpu_backend, 0.35)
        t += est.bytes_per_token_gpu / ((gpu_bw_gbps or 200.0) * 1e9 * eff)
        t += min(gpu_layers, spec.n_layers) * LAYER_OVERHEAD_S["gpu"]
    return 1.0 / t if t > 0 else 0.0
