"""What Hearth knows about a machine: plain dataclasses with a stable JSON form.

``hearth hw --json`` prints ``HardwareInfo.to_json()``; ``hearth plan --hardware
FILE`` reads the same schema back, so a plan can be made for someone else's
machine. A value that could not be probed is ``None`` and ``unknown`` says why.
"""

from __future__ import annotations

import json
import os
from os import PathLike
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1


@dataclass
class GPUInfo:
    """One GPU. For Apple Silicon, memory is the shared (unified) RAM."""

    name: str
    vendor: str  # "nvidia", "apple", "amd", "intel", "other"
    backend: str = ""  # "cuda", "metal", "vulkan", "rocm", ... ("" unknown)
    vram_total: int | None = None
    vram_free: int | None = None
    unified_memory: bool = False
    # Apple: how much of the unified memory Metal lets the GPU keep resident
    # (recommendedMaxWorkingSetSize); estimated when it cannot be queried.
    working_set: int | None = None
    working_set_estimated: bool = False
    driver: str | None = None
    compute_capability: str | None = None
    bandwidth_gbps: float | None = None
    bandwidth_estimated: bool = True
    index: int = 0

    @property
    def usable_bytes(self) -> int | None:
        """Memory a model may occupy on this GPU (before Hearth's safety margin)."""
        if self.unified_memory:
            return self.working_set if self.working_set is not None else self.vram_total
        return self.vram_free if self.vram_free is not None else self.vram_total


@dataclass
class BackendDevice:
    """A device as llama.cpp's ggml backend registry lists it."""

    name: str
    description: str = ""
    type: str = ""  # "cpu", "gpu", "igpu", "accel"
    memory_total: int | None = None
    memory_free: int | None = None


@dataclass
class BackendInfo:
    """What the installed llama-cpp-python build can use."""

    probed: bool = False
    gpu_offload: bool | None = None  # llama_supports_gpu_offload()
    devices: list[BackendDevice] = field(default_factory=list)
    system_info: str = ""  # llama_print_system_info(): compiled CPU features
    llama_cpp_version: str | None = None
    reason: str | None = None  # why probing failed, when it did

    @property
    def gpu_devices(self) -> list[BackendDevice]:
        return [d for d in self.devices if d.type in ("gpu", "igpu")]


@dataclass
class HardwareInfo:
    """A machine, detected or described by a profile."""

    source: str = "detected"  # "detected", "profile:<name>", "file:<path>"
    description: str = ""
    os: str | None = None  # "Linux", "Darwin", "Windows"
    os_version: str | None = None
    arch: str | None = None  # "x86_64", "arm64"
    cpu_model: str | None = None
    cpu_physical_cores: int | None = None
    cpu_logical_cores: int | None = None
    simd: list[str] = field(default_factory=list)  # "AVX2", "AVX512F", "NEON", ...
    ram_total: int | None = None
    ram_available: int | None = None
    # Bandwidth the CPU gets from RAM while generating; drives the speed estimate.
    memory_bandwidth_gbps: float | None = None
    bandwidth_note: str = ""
    gpus: list[GPUInfo] = field(default_factory=list)
    backend: BackendInfo = field(default_factory=BackendInfo)
    models_dir: str | None = None
    disk_free: int | None = None
    unknown: dict[str, str] = field(default_factory=dict)  # probe -> reason
    schema_version: int = SCHEMA_VERSION

    # --- convenience for the planner -----------------------------------------

    @property
    def is_apple_silicon(self) -> bool:
        return self.os == "Darwin" and (self.arch or "").startswith("arm")

    @property
    def gpu_offload(self) -> bool:
        """True when this llama.cpp build can place layers on a GPU we found."""
        return bool(self.backend.gpu_offload) and self.primary_gpu is not None

    @property
    def primary_gpu(self) -> GPUInfo | None:
        """The GPU Hearth would use: the one with the most usable memory."""
        usable = [g for g in self.gpus if g.usable_bytes]
        return max(usable, key=lambda g: g.usable_bytes or 0) if usable else None

    @property
    def threads(self) -> int:
        """Generation threads: physical cores (hyper-threads only add contention)."""
        return max(1, self.cpu_physical_cores or self.cpu_logical_cores or os.cpu_count() or 1)

    # --- JSON ------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HardwareInfo:
        """Build from ``to_json()`` output; unknown keys are ignored, bad values raise ValueError."""
        if not isinstance(data, dict):
            raise ValueError("a hardware description must be a JSON object")
        version = data.get("schema_version", SCHEMA_VERSION)
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise ValueError(f"schema_version {version!r} is newer than this Hearth understands ({SCHEMA_VERSION})")
        kw = _pick(cls, data)
        kw["gpus"] = [_build(GPUInfo, g) for g in _list(data.get("gpus"), "gpus")]
        b = data.get("backend") or {}
        if not isinstance(b, dict):
            raise ValueError("'backend' must be an object")
        bkw = _pick(BackendInfo, b)
        bkw["devices"] = [_build(BackendDevice, d) for d in _list(b.get("devices"), "backend.devices")]
        kw["backend"] = BackendInfo(**bkw)
        kw["simd"] = [str(s) for s in _list(data.get("simd"), "simd")]
        unknown = data.get("unknown") or {}
        kw["unknown"] = {str(k): str(v) for k, v in unknown.items()} if isinstance(unknown, dict) else {}
        hw = cls(**kw)
        for name in ("ram_total", "ram_available", "cpu_physical_cores", "cpu_logical_cores", "disk_free"):
            v = getattr(hw, name)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
                raise ValueError(f"'{name}' must be a non-negative integer, not {v!r}")
        for g in hw.gpus:
            for name in ("vram_total", "vram_free", "working_set"):
                v = getattr(g, name)
                if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
                    raise ValueError(f"gpu '{g.name}': '{name}' must be a non-negative integer, not {v!r}")
        return hw

    @classmethod
    def load(cls, path: str | PathLike[str]) -> HardwareInfo:
        """Read a file written from ``hearth hw --json``; ValueError says what is wrong."""
        p = Path(path)
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ValueError(f"cannot read {p}: {exc.strerror or exc}") from exc
        except json.JSONDecodeError as exc:
            raise ValueError(f"{p} is not valid JSON: {exc}") from exc
        hw = cls.from_json(data)
        hw.source = f"file:{p}"
        return hw


_NESTED: dict[str, tuple[str, ...]] = {"HardwareInfo": ("gpus", "backend"), "BackendInfo": ("devices",)}


def _pick(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValueError(f"expected an object for {cls.__name__}")
    names = {f.name for f in fields(cls)}
    nested = _NESTED.get(cls.__name__, ())
    return {k: v for k, v in data.items() if k in names and k not in nested}


def _build(cls: type, data: Any) -> Any:
    try:
        return cls(**_pick(cls, data))
    except TypeError as exc:  # a required field such as a GPU's name is missing
        raise ValueError(f"incomplete {cls.__name__}: {exc}") from exc


def _list(value: Any, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError(f"'{what}' must be a list")
    return value
