"""Built-in machine profiles for ``hearth plan --hardware NAME``.

Each describes a common machine class with stated assumptions, so a plan can
be shown without owning the machine. Numbers:

- ``apple-m-16gb``: a base M-series Mac (M1-M4, 4 performance + 4 efficiency
  cores) with 16 GiB unified memory; Metal's working-set budget is two thirds
  of RAM (10.67 GiB, what llama.cpp logs as recommendedMaxWorkingSetSize);
  120 GB/s unified memory (M4; M1 68, M2/M3 100).
- ``nvidia-8gb-ram-16gb``: a desktop with an 8 GiB GeForce (RTX 2080 / 3070
  class: 448 GB/s, compute capability 7.5; 7.5 GiB free with a desktop
  running) on a CUDA build, an 8-core x86-64 CPU with AVX2 and 16 GiB of
  two-channel DDR4 (45 GB/s usable).
- ``cpu-16gb``: an 8-core x86-64 laptop/desktop with AVX2, 16 GiB DDR4, no
  usable GPU, 50 GB/s.
- ``cpu-8gb``: a 4-core x86-64 laptop with AVX2, 8 GiB, 35 GB/s.
"""

from __future__ import annotations

from collections.abc import Callable

from app.hardware.info import BackendDevice, BackendInfo, GPUInfo, HardwareInfo

GIB = 1024**3


def _apple_m_16gb() -> HardwareInfo:
    ram = 16 * GIB
    ws = ram * 2 // 3
    return HardwareInfo(
        source="profile:apple-m-16gb",
        description="Apple Silicon Mac (base M-series), 16 GiB unified memory, Metal build",
        os="Darwin", os_version="15", arch="arm64", cpu_model="Apple M4",
        cpu_physical_cores=4, cpu_logical_cores=8, simd=["NEON", "DOTPROD", "I8MM"],
        ram_total=ram, ram_available=ram - 4 * GIB,
        memory_bandwidth_gbps=84.0, bandwidth_note="assumed: 120 GB/s unified memory, ~70% usable by the CPU",
        gpus=[GPUInfo(name="Apple M4 GPU", vendor="apple", backend="metal", vram_total=ram, vram_free=ws,
                      unified_memory=True, working_set=ws, working_set_estimated=True,
                      bandwidth_gbps=120.0, bandwidth_estimated=True)],
        backend=BackendInfo(probed=False, gpu_offload=True, devices=[
            BackendDevice(name="Metal", description="Apple M4", type="gpu", memory_total=ws, memory_free=ws),
            BackendDevice(name="CPU", description="Apple M4", type="cpu")], reason="profile"),
    )


def _nvidia_8gb_ram_16gb() -> HardwareInfo:
    ram = 16 * GIB
    vram = 8 * GIB
    return HardwareInfo(
        source="profile:nvidia-8gb-ram-16gb",
        description="Desktop, 8-core x86-64 CPU, 16 GiB RAM, 8 GiB NVIDIA GPU, CUDA build",
        os="Windows", os_version="11", arch="x86_64", cpu_model="8-core x86-64 (AVX2)",
        cpu_physical_cores=8, cpu_logical_cores=16, simd=["AVX", "AVX2", "FMA", "F16C"],
        ram_total=ram, ram_available=ram - 4 * GIB,
        memory_bandwidth_gbps=45.0, bandwidth_note="assumed: two-channel DDR4-3200, ~45 GB/s usable",
        gpus=[GPUInfo(name="NVIDIA GeForce RTX 2080", vendor="nvidia", backend="cuda", vram_total=vram,
                      vram_free=vram - GIB // 2, driver="assumed", compute_capability="7.5",
                      bandwidth_gbps=448.0, bandwidth_estimated=True)],
        backend=BackendInfo(probed=False, gpu_offload=True, devices=[
            BackendDevice(name="CUDA0", description="NVIDIA GeForce RTX 2080", type="gpu",
                          memory_total=vram, memory_free=vram - GIB // 2),
            BackendDevice(name="CPU", description="x86-64", type="cpu")], reason="profile"),
    )


def _cpu(name: str, ram_gib: int, cores: int, bw: float) -> HardwareInfo:
    ram = ram_gib * GIB
    return HardwareInfo(
        source=f"profile:{name}",
        description=f"{cores}-core x86-64 CPU with AVX2, {ram_gib} GiB RAM, no usable GPU",
        os="Linux", os_version="6", arch="x86_64", cpu_model=f"{cores}-core x86-64 (AVX2)",
        cpu_physical_cores=cores, cpu_logical_cores=cores * 2, simd=["AVX", "AVX2", "FMA", "F16C"],
        ram_total=ram, ram_available=ram - 3 * GIB,
        memory_bandwidth_gbps=bw, bandwidth_note=f"assumed: two-channel DDR4, ~{bw:.0f} GB/s usable",
        backend=BackendInfo(probed=False, gpu_offload=False,
                            devices=[BackendDevice(name="CPU", description="x86-64", type="cpu")], reason="profile"),
    )


def _cpu_16gb() -> HardwareInfo:
    return _cpu("cpu-16gb", 16, 8, 50.0)


def _cpu_8gb() -> HardwareInfo:
    return _cpu("cpu-8gb", 8, 4, 35.0)


_FACTORIES: dict[str, Callable[[], HardwareInfo]] = {
    "apple-m-16gb": _apple_m_16gb,
    "nvidia-8gb-ram-16gb": _nvidia_8gb_ram_16gb,
    "cpu-16gb": _cpu_16gb,
    "cpu-8gb": _cpu_8gb,
}

PROFILE_NAMES: tuple[str, ...] = tuple(_FACTORIES)


def builtin_profile(name: str) -> HardwareInfo:
    """A fresh copy of a built-in profile; KeyError lists the valid names."""
    try:
        return _FACTORIES[name]()
    except KeyError:
        raise KeyError(f"no built-in hardware profile '{name}' (choose from {', '.join(PROFILE_NAMES)})") from None
