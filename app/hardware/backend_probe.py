"""Ask the installed llama-cpp-python build which backends and devices it has.

Importing llama_cpp loads llama.cpp and every GPU runtime it was built with
(CUDA alone takes seconds and hundreds of MB), and Hearth's rule is that only
the engine worker process imports it. So the probe is a short script run with
``sys.executable`` in a child process, with a timeout; its JSON answer is cached
for the life of this process.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading

from app.hardware.info import BackendDevice, BackendInfo

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 60.0

# ggml's device registry is in the ggml libraries next to libllama; the
# functions are plain C, so ctypes reads them without bindings.
_SCRIPT = r"""
import ctypes, json, sys
out = {"devices": []}
import llama_cpp
out["version"] = getattr(llama_cpp, "__version__", None)
llama_cpp.llama_backend_init()
out["gpu_offload"] = bool(llama_cpp.llama_supports_gpu_offload())
try:
    out["system_info"] = llama_cpp.llama_print_system_info().decode("utf-8", "replace")
except Exception as exc:
    out["system_info"] = ""
import pathlib
lib_dir = pathlib.Path(getattr(llama_cpp.llama_cpp, "_base_path", pathlib.Path(llama_cpp.__file__).parent / "lib"))
if sys.platform == "win32":
    names = {"ggml": ["ggml.dll", "libggml.dll"], "base": ["ggml-base.dll", "libggml-base.dll"]}
elif sys.platform == "darwin":
    names = {"ggml": ["libggml.dylib", "libggml.so"], "base": ["libggml-base.dylib", "libggml-base.so"]}
else:
    names = {"ggml": ["libggml.so"], "base": ["libggml-base.so"]}
def first(kind):
    for n in names[kind]:
        p = lib_dir / n
        if p.exists():
            return ctypes.CDLL(str(p))
    return None
ggml = first("ggml")
base = first("base") or ggml
if ggml is None:
    out["device_error"] = "no ggml library in " + str(lib_dir)
else:
    vp, sz = ctypes.c_void_p, ctypes.c_size_t
    ggml.ggml_backend_dev_count.restype = sz
    ggml.ggml_backend_dev_get.restype = vp
    ggml.ggml_backend_dev_get.argtypes = [sz]
    for fn in ("ggml_backend_dev_name", "ggml_backend_dev_description"):
        getattr(base, fn).restype = ctypes.c_char_p
        getattr(base, fn).argtypes = [vp]
    base.ggml_backend_dev_type.restype = ctypes.c_int
    base.ggml_backend_dev_type.argtypes = [vp]
    base.ggml_backend_dev_memory.restype = None
    base.ggml_backend_dev_memory.argtypes = [vp, ctypes.POINTER(sz), ctypes.POINTER(sz)]
    # enum ggml_backend_dev_type (ggml-backend.h)
    types = {0: "cpu", 1: "gpu", 2: "igpu", 3: "accel"}
    for i in range(ggml.ggml_backend_dev_count()):
        dev = ggml.ggml_backend_dev_get(i)
        free, total = sz(0), sz(0)
        base.ggml_backend_dev_memory(dev, ctypes.byref(free), ctypes.byref(total))
        out["devices"].append({
            "name": (base.ggml_backend_dev_name(dev) or b"").decode("utf-8", "replace"),
            "description": (base.ggml_backend_dev_description(dev) or b"").decode("utf-8", "replace"),
            "type": types.get(base.ggml_backend_dev_type(dev), "other"),
            "memory_total": int(total.value) or None,
            "memory_free": int(free.value) or None,
        })
print("@@PROBE@@" + json.dumps(out))
"""

_lock = threading.Lock()
_cache: dict[str, BackendInfo] = {}


def probe_backends(*, timeout: float = PROBE_TIMEOUT_S, refresh: bool = False) -> BackendInfo:
    """The llama.cpp build's backends and devices; never raises (``reason`` says what failed)."""
    key = sys.executable
    with _lock:
        if not refresh and key in _cache:
            return _cache[key]
        info = _run_probe(timeout)
        _cache[key] = info
        return info


def _run_probe(timeout: float) -> BackendInfo:
    try:
        proc = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return BackendInfo(reason=f"the llama.cpp probe did not answer within {timeout:.0f} s")
    except OSError as exc:
        return BackendInfo(reason=f"cannot start the llama.cpp probe: {exc}")
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("@@PROBE@@")), None)
    if line is None:
        err = proc.stderr.strip().splitlines()
        last = err[-1] if err else f"exit status {proc.returncode}"
        if "No module named 'llama_cpp'" in proc.stderr:
            last = "llama-cpp-python is not installed in this Python environment"
        return BackendInfo(reason=f"the llama.cpp probe failed: {last}")
    try:
        data = json.loads(line[len("@@PROBE@@"):])
    except json.JSONDecodeError as exc:
        return BackendInfo(reason=f"the llama.cpp probe answered nonsense: {exc}")
    devices = [BackendDevice(**d) for d in data.get("devices", [])]
    reason = data.get("device_error")
    return BackendInfo(
        probed=True,
        gpu_offload=bool(data.get("gpu_offload")),
        devices=devices,
        system_info=str(data.get("system_info") or ""),
        llama_cpp_version=data.get("version"),
        reason=reason,
    )


def simd_from_system_info(system_info: str) -> list[str]:
    """CPU features llama.cpp reports as enabled (``AVX2 = 1``, ``NEON = 1`` ...)."""
    found: list[str] = []
    for token in system_info.split("|"):
        token = token.strip()
        if "=" in token:
            k, _, v = token.partition("=")
            k = k.strip().split(":")[-1].strip()
            if v.strip() == "1" and k in _SIMD_NAMES:
                found.append(k)
    return found


_SIMD_NAMES = {"SSE3", "SSSE3", "AVX", "AVX_VNNI", "AVX2", "F16C", "FMA", "AVX512", "AVX512_VBMI",
               "AVX512_VNNI", "AVX512_BF16", "AMX_INT8", "NEON", "ARM_FMA", "FP16_VA", "DOTPROD",
               "MATMUL_INT8", "SVE", "SME"}
