"""Probe this machine: OS, CPU, RAM, GPUs, llama.cpp backends, free disk.

Every probe is wrapped: one that fails (no NVIDIA driver, no sysctl, a
container without /sys) leaves its value ``None`` and records the reason in
``HardwareInfo.unknown`` instead of raising.
"""

from __future__ import annotations

import logging
import os
import platform
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from app.hardware.backend_probe import probe_backends, simd_from_system_info
from app.hardware.info import BackendInfo, GPUInfo, HardwareInfo

log = logging.getLogger(__name__)

GIB = 1024**3

# Unified-memory bandwidth of Apple Silicon chips (Apple's published figures,
# GB/s), longest name first so "M2 Pro" wins over "M2".
APPLE_BANDWIDTH_GBPS: dict[str, float] = {
    "M1 Ultra": 800, "M1 Max": 400, "M1 Pro": 200, "M1": 68,
    "M2 Ultra": 800, "M2 Max": 400, "M2 Pro": 200, "M2": 100,
    "M3 Ultra": 819, "M3 Max": 400, "M3 Pro": 150, "M3": 100,
    "M4 Max": 546, "M4 Pro": 273, "M4": 120,
    "M5": 153,
}

# CPU RAM bandwidth when nothing better is known. Desktop and laptop x86 boards
# have two memory channels (DDR4-3200: 51 GB/s, DDR5-5600: 90 GB/s peak), and a
# token's weights are read by as many threads as there are cores, each pulling
# roughly 25 GB/s; 2 cores reach about 50 GB/s here (measured, GPTOSS.md).
CPU_BW_PER_CORE_GBPS = 25.0
CPU_BW_CAP_GBPS = 60.0


def _sysctl(key: str) -> str | None:
    try:
        out = subprocess.run(["sysctl", "-n", key], capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    val = out.stdout.strip()
    return val if out.returncode == 0 and val else None


def _probe(hw: HardwareInfo, name: str, fn: Callable[[], Any]) -> Any:
    """Run one probe; record why it failed instead of raising."""
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - a failed probe must never stop detection
        hw.unknown[name] = f"{type(exc).__name__}: {exc}"
        log.debug("hardware probe %s failed", name, exc_info=True)
        return None


# --- CPU -----------------------------------------------------------------------


def _normalize_arch(machine: str) -> str:
    m = machine.lower()
    if m in ("amd64", "x86_64", "x64"):
        return "x86_64"
    if m in ("arm64", "aarch64", "armv8", "armv8l"):
        return "arm64"
    return m or "unknown"


def _cpuinfo() -> str:
    return Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")


def _cpu_model(hw: HardwareInfo) -> str | None:
    if sys.platform == "darwin":
        return _sysctl("machdep.cpu.brand_string")
    if sys.platform.startswith("linux"):
        text = _cpuinfo()
        for key in ("model name", "Model", "Hardware", "cpu model"):
            m = re.search(rf"^{key}\s*:\s*(.+)$", text, re.M)
            if m:
                return m.group(1).strip()
        m = re.search(r"^CPU implementer\s*:\s*(\S+)", text, re.M)
        if m:
            return f"ARM CPU (implementer {m.group(1)})"
        return None
    if sys.platform == "win32":
        import winreg  # Windows only

        with winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, r"HARDWARE\DESCRIPTION\System\CentralProcessor\0") as k:
            return str(winreg.QueryValueEx(k, "ProcessorNameString")[0]).strip()
    return platform.processor() or None


_X86_FLAGS = {"avx": "AVX", "avx2": "AVX2", "fma": "FMA", "f16c": "F16C", "avx512f": "AVX512F",
              "avx512bw": "AVX512BW", "avx512_vnni": "AVX512_VNNI", "avx512_bf16": "AVX512_BF16",
              "avx_vnni": "AVX_VNNI", "amx_int8": "AMX_INT8"}
_ARM_FLAGS = {"asimd": "NEON", "asimddp": "DOTPROD", "i8mm": "I8MM", "sve": "SVE", "fphp": "FP16"}


def _simd(hw: HardwareInfo) -> list[str]:
    arch = hw.arch or ""
    if sys.platform.startswith("linux"):
        text = _cpuinfo()
        m = re.search(r"^(flags|Features)\s*:\s*(.+)$", text, re.M)
        if not m:
            raise RuntimeError("/proc/cpuinfo lists no CPU flags")
        flags = set(m.group(2).split())
        table = _ARM_FLAGS if arch == "arm64" else _X86_FLAGS
        return [name for flag, name in table.items() if flag in flags]
    if sys.platform == "darwin":
        if arch == "arm64":
            found = ["NEON"]  # every Apple Silicon core has NEON
            for key, name in (("hw.optional.arm.FEAT_DotProd", "DOTPROD"), ("hw.optional.arm.FEAT_I8MM", "I8MM"),
                              ("hw.optional.arm.FEAT_FP16", "FP16")):
                if _sysctl(key) == "1":
                    found.append(name)
            return found
        found = []
        for key, name in (("hw.optional.avx1_0", "AVX"), ("hw.optional.avx2_0", "AVX2"), ("hw.optional.fma", "FMA"),
                          ("hw.optional.avx512f", "AVX512F")):
            if _sysctl(key) == "1":
                found.append(name)
        return found
    if sys.platform == "win32":
        if arch == "arm64":
            return ["NEON"]
        import ctypes

        present = ctypes.windll.kernel32.IsProcessorFeaturePresent  # type: ignore[attr-defined]
        # PF_AVX_INSTRUCTIONS_AVAILABLE 39, PF_AVX2 40, PF_AVX512F 41 (Windows 10 1803+)
        return [name for pf, name in ((39, "AVX"), (40, "AVX2"), (41, "AVX512F")) if present(pf)]
    raise RuntimeError(f"no CPU feature probe for {sys.platform}")


# --- GPUs ----------------------------------------------------------------------


def _nvidia_gpus() -> list[GPUInfo]:
    import pynvml

    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        raise RuntimeError(f"no NVIDIA driver ({exc})") from exc
    try:
        driver = _decode(pynvml.nvmlSystemGetDriverVersion())
        gpus = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            mem = pynvml.nvmlDeviceGetMemoryInfo(h)
            cc: str | None
            try:
                major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(h)
                cc = f"{major}.{minor}"
            except pynvml.NVMLError:
                cc = None
            bw: float | None = None
            try:
                bus_bits = pynvml.nvmlDeviceGetMemoryBusWidth(h)
                mem_mhz = pynvml.nvmlDeviceGetMaxClockInfo(h, pynvml.NVML_CLOCK_MEM)
                # GDDR transfers twice per reported clock.
                bw = bus_bits / 8 * mem_mhz * 1e6 * 2 / 1e9 if bus_bits and mem_mhz else None
            except pynvml.NVMLError:
                bw = None
            gpus.append(GPUInfo(
                name=_decode(pynvml.nvmlDeviceGetName(h)), vendor="nvidia", backend="cuda",
                vram_total=int(mem.total), vram_free=int(mem.free), driver=driver, compute_capability=cc,
                bandwidth_gbps=round(bw, 1) if bw else None, bandwidth_estimated=bw is None, index=i,
            ))
        return gpus
    finally:
        try:
            pynvml.nvmlShutdown()
        except pynvml.NVMLError:
            pass


def _decode(v: Any) -> str:
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)


def apple_working_set_estimate(unified_bytes: int) -> int:
    """Metal's recommendedMaxWorkingSetSize when it cannot be asked.

    macOS lets the GPU keep about two thirds of RAM resident on machines up to
    32 GiB and three quarters above (a 16 GiB Mac reports 10,922.67 MiB in
    llama.cpp's Metal log); ``sysctl iogpu.wired_limit_mb`` raises the limit.
    """
    frac = 2 / 3 if unified_bytes <= 32 * GIB else 3 / 4
    return int(unified_bytes * frac)


def _apple_gpu(hw: HardwareInfo, backend: BackendInfo) -> GPUInfo:
    total = hw.ram_total or int(_sysctl("hw.memsize") or 0) or None
    chip = hw.cpu_model or "Apple Silicon"
    metal = next((d for d in backend.gpu_devices if "metal" in d.name.lower() or "mtl" in d.name.lower()), None)
    working_set: int | None
    estimated = False
    if metal is not None and metal.memory_total:
        working_set = metal.memory_total  # Metal's own recommendedMaxWorkingSetSize
    else:
        wired_mb = _sysctl("iogpu.wired_limit_mb")
        if wired_mb and wired_mb.isdigit() and int(wired_mb) > 0:
            working_set = int(wired_mb) * 1024 * 1024
        else:
            working_set = apple_working_set_estimate(total) if total else None
            estimated = True
    bw = next((v for k, v in APPLE_BANDWIDTH_GBPS.items() if k in chip), None)
    return GPUInfo(name=chip, vendor="apple", backend="metal" if backend.gpu_offload else "",
                   vram_total=total, vram_free=working_set, unified_memory=True, working_set=working_set,
                   working_set_estimated=estimated, bandwidth_gbps=bw, bandwidth_estimated=True)


def _linux_drm_gpus() -> list[GPUInfo]:
    """AMD and Intel GPUs from sysfs (best effort: amdgpu reports VRAM, i915 doesn't)."""
    vendors = {"0x1002": "amd", "0x8086": "intel"}
    gpus: list[GPUInfo] = []
    for card in sorted(Path("/sys/class/drm").glob("card[0-9]")):
        dev = card / "device"
        try:
            vendor = vendors.get((dev / "vendor").read_text().strip())
        except OSError:
            continue
        if vendor is None:
            continue
        total = free = None
        try:
            total = int((dev / "mem_info_vram_total").read_text())
            free = total - int((dev / "mem_info_vram_used").read_text())
        except (OSError, ValueError):
            pass
        name = f"{vendor.upper()} GPU ({card.name})"
        gpus.append(GPUInfo(name=name, vendor=vendor, vram_total=total, vram_free=free, index=len(gpus)))
    return gpus


def _backend_gpus(backend: BackendInfo, known: list[GPUInfo]) -> list[GPUInfo]:
    """GPUs llama.cpp sees (Vulkan, ROCm, SYCL ...) that vendor probes missed."""
    out: list[GPUInfo] = []
    for d in backend.gpu_devices:
        if any(g.name and g.name in d.description for g in known):
            continue
        desc = d.description or d.name
        low = desc.lower()
        vendor = "nvidia" if "nvidia" in low or "geforce" in low else "amd" if "amd" in low or "radeon" in low \
            else "intel" if "intel" in low else "apple" if "apple" in low else "other"
        backend_name = re.sub(r"\d+$", "", d.name).lower()
        out.append(GPUInfo(name=desc, vendor=vendor, backend=backend_name, vram_total=d.memory_total,
                           vram_free=d.memory_free, unified_memory=d.type == "igpu", index=len(known) + len(out)))
    return out


# --- bandwidth -------------------------------------------------------------------


def estimate_cpu_bandwidth(hw: HardwareInfo) -> tuple[float, str]:
    if hw.is_apple_silicon and hw.cpu_model:
        for name, bw in APPLE_BANDWIDTH_GBPS.items():
            if name in hw.cpu_model:
                # The CPU cores of an Apple chip reach most but not all of the
                # GPU's bandwidth; 0.7 matches published CPU-only runs.
                return bw * 0.7, f"Apple {name}: {bw:.0f} GB/s unified memory, about 70% usable by the CPU"
    cores = hw.cpu_physical_cores or 1
    bw = min(CPU_BW_PER_CORE_GBPS * cores, CPU_BW_CAP_GBPS)
    return bw, (f"estimated: {CPU_BW_PER_CORE_GBPS:.0f} GB/s per core, at most {CPU_BW_CAP_GBPS:.0f} GB/s "
                "(two-channel desktop memory)")


# --- entry point --------------------------------------------------------------


def detect_hardware(models_dir: str | os.PathLike[str] | None = None, *, probe_llama: bool = True) -> HardwareInfo:
    """Describe this machine. Never raises: failed probes are listed in ``unknown``.

    ``probe_llama=False`` skips the llama.cpp backend probe (a child process).
    """
    hw = HardwareInfo(source="detected")
    hw.os = platform.system() or None
    hw.os_version = (platform.mac_ver()[0] if sys.platform == "darwin" else platform.release()) or None
    hw.arch = _normalize_arch(platform.machine())
    if sys.platform == "darwin" and hw.arch == "x86_64" and _sysctl("sysctl.proc_translated") == "1":
        hw.arch = "arm64"  # an x86 Python under Rosetta on Apple Silicon
    hw.cpu_model = _probe(hw, "cpu_model", lambda: _cpu_model(hw))
    if hw.cpu_model is None and "cpu_model" not in hw.unknown:
        hw.unknown["cpu_model"] = "the operating system does not report a CPU name"
    hw.cpu_physical_cores = _probe(hw, "cpu_physical_cores", lambda: psutil.cpu_count(logical=False))
    hw.cpu_logical_cores = _probe(hw, "cpu_logical_cores", lambda: psutil.cpu_count(logical=True))
    if hw.cpu_physical_cores is None and "cpu_physical_cores" not in hw.unknown:
        hw.unknown["cpu_physical_cores"] = "the operating system does not report physical cores"
    vm = _probe(hw, "ram", psutil.virtual_memory)
    if vm is not None:
        hw.ram_total, hw.ram_available = int(vm.total), int(vm.available)
        limit = _probe(hw, "cgroup_memory_limit", _cgroup_memory_limit)
        if limit is not None and limit < hw.ram_total:
            # In a container the cgroup limit, not the host's RAM, is what we get.
            hw.ram_total = limit
            hw.ram_available = min(hw.ram_available, limit)
    hw.backend = _probe(hw, "llama_cpp_backends", probe_backends) if probe_llama else BackendInfo(reason="not probed")
    if hw.backend is None:
        hw.backend = BackendInfo(reason=hw.unknown.get("llama_cpp_backends"))
    elif hw.backend.reason:
        hw.unknown["llama_cpp_backends"] = hw.backend.reason
    simd = _probe(hw, "simd", lambda: _simd(hw))
    if not simd and hw.backend.system_info:
        simd = simd_from_system_info(hw.backend.system_info)
    hw.simd = simd or []

    gpus: list[GPUInfo] = []
    if sys.platform != "darwin":
        gpus += _probe(hw, "nvidia", _nvidia_gpus) or []
        if sys.platform.startswith("linux"):
            gpus += _probe(hw, "drm_gpus", _linux_drm_gpus) or []
    elif hw.arch == "arm64":
        apple = _probe(hw, "apple_gpu", lambda: _apple_gpu(hw, hw.backend))
        if apple is not None:
            gpus.append(apple)
    gpus += _backend_gpus(hw.backend, gpus)
    hw.gpus = gpus

    hw.memory_bandwidth_gbps, hw.bandwidth_note = estimate_cpu_bandwidth(hw)
    if models_dir is not None:
        hw.models_dir = str(models_dir)
        hw.disk_free = _probe(hw, "disk_free", lambda: _disk_free(Path(models_dir)))
    return hw


def _disk_free(folder: Path) -> int:
    p = folder.expanduser()
    while not p.exists() and p != p.parent:
        p = p.parent  # the models folder may not exist yet: its volume does
    return int(shutil.disk_usage(p).free)


def _cgroup_memory_limit() -> int | None:
    for f in (Path("/sys/fs/cgroup/memory.max"), Path("/sys/fs/cgroup/memory/memory.limit_in_bytes")):
        try:
            raw = f.read_text().strip()
        except OSError:
            continue
        if raw.isdigit() and int(raw) < 1 << 60:
            return int(raw)
    return None
