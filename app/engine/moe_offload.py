"""Keep MoE expert weights on the CPU (llama.cpp's ``--n-cpu-moe N``) through ctypes.

llama-cpp-python's ``Llama()`` cannot pass ``llama_model_params.tensor_buft_overrides``
(it types the field ``c_void_p  # NOTE: unused``). This module builds the
NULL-terminated ``llama_model_tensor_buft_override`` array llama.cpp expects, with
the CPU buffer type taken from the bundled ggml library, and sets it on the params
``Llama()`` passes to ``llama_model_load_from_file`` by wrapping that function for
the duration of one load.

Nothing here imports llama_cpp: the engine worker (the only module that does)
passes the ``llama_cpp`` module in.
"""

from __future__ import annotations

import ctypes
import logging
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from app.engine.llama_internals import wrapped_model_loader
from app.gguf_names import EXPERT_TENSOR_PATTERN

log = logging.getLogger(__name__)

FFN_EXPS_REGEX = EXPERT_TENSOR_PATTERN  # the expert tensors of a block, as llama.cpp names them
# llama.cpp logs this line at debug level for every overridden tensor
# (src/llama-model-loader.cpp), which is how a load shows the override took effect.
_OVERRIDE_LOG_RE = re.compile(r"tensor (\S+) \((\d+) MiB (\S+)\) buffer type overridden to (\S+)")
# llama.cpp refuses more overrides than llama_max_tensor_buft_overrides() (4096).
MAX_OVERRIDES = 4096


class TensorBuftOverride(ctypes.Structure):
    """``struct llama_model_tensor_buft_override { const char * pattern; ggml_backend_buffer_type_t buft; }``"""

    _fields_ = [("pattern", ctypes.c_char_p), ("buft", ctypes.c_void_p)]


def expert_layer_patterns(layers: int | Iterable[int]) -> list[str]:
    """Regexes for the expert tensors of the first ``layers`` blocks (or the listed blocks).

    One pattern per block, exactly as ``--n-cpu-moe N`` builds them, so
    llama.cpp's log reads the same as with the CLI.
    """
    ids = range(layers) if isinstance(layers, int) else sorted(set(layers))
    return [rf"blk\.{il}{FFN_EXPS_REGEX}" for il in ids if il >= 0]


def _library_names(base: str) -> list[str]:
    if sys.platform == "win32":
        return [f"{base}.dll", f"lib{base}.dll"]
    if sys.platform == "darwin":
        return [f"lib{base}.dylib", f"lib{base}.so"]
    return [f"lib{base}.so"]


def _lib_dir(llama_cpp: ModuleType) -> Path:
    inner = getattr(llama_cpp, "llama_cpp", llama_cpp)
    base = getattr(inner, "_base_path", None)  # honours LLAMA_CPP_LIB_PATH like llama_cpp does
    if base is not None:
        return Path(base)
    return Path(str(inner.__file__)).resolve().parent / "lib"


def cpu_buffer_type(llama_cpp: ModuleType) -> int:
    """Address of ggml's CPU buffer type, from the ggml library llama_cpp already loaded.

    Opening the same file again returns the already-loaded library, so the
    pointer is the very one llama.cpp compares overrides against
    (``overrides->buft == ggml_backend_cpu_buffer_type()``). The symbol lives in
    ggml-base in current builds and in ggml or ggml-cpu in others.
    """
    lib_dir = _lib_dir(llama_cpp)
    tried: list[str] = []
    for base in ("ggml-base", "ggml", "ggml-cpu"):
        for name in _library_names(base):
            path = lib_dir / name
            if not path.exists():
                continue
            tried.append(path.name)
            try:
                lib = ctypes.CDLL(str(path))
            except OSError as exc:
                log.debug("cannot open %s: %s", path, exc)
                continue
            fn = getattr(lib, "ggml_backend_cpu_buffer_type", None)
            if fn is None:
                continue
            fn.restype = ctypes.c_void_p
            fn.argtypes = []
            buft = fn()
            if buft:
                return int(buft)
    raise RuntimeError(
        f"ggml_backend_cpu_buffer_type was not found in {lib_dir} (looked in {', '.join(tried) or 'no ggml library'}); "
        "this llama-cpp-python build cannot keep experts on the CPU."
    )


@dataclass
class OverrideArray:
    """A NULL-terminated override array and the byte strings it points at, kept alive together."""

    patterns: list[str]
    buft: int
    array: Any = field(repr=False, default=None)
    _encoded: list[bytes] = field(repr=False, default_factory=list)

    def __post_init__(self) -> None:
        if len(self.patterns) > MAX_OVERRIDES:
            raise ValueError(f"{len(self.patterns)} tensor overrides; llama.cpp accepts at most {MAX_OVERRIDES}")
        self._encoded = [p.encode("utf-8") for p in self.patterns]
        arr = (TensorBuftOverride * (len(self._encoded) + 1))()
        for i, pat in enumerate(self._encoded):
            arr[i].pattern = pat
            arr[i].buft = self.buft
        arr[len(self._encoded)].pattern = None  # the terminator llama.cpp stops at
        arr[len(self._encoded)].buft = None
        self.array = arr

    @property
    def address(self) -> int:
        return ctypes.addressof(self.array)


@contextmanager
def tensor_buft_overrides(llama_cpp: ModuleType, patterns: list[str], buft: int | None = None) -> Iterator[OverrideArray]:
    """Apply ``patterns`` (tensor-name regexes) -> ``buft`` to every model load inside the block.

    ``llama_cpp.Llama`` builds ``llama_model_params`` itself; the model loader is
    wrapped (llama_internals.wrapped_model_loader) so the params carry our array
    while llama.cpp reads them, and the field is put back afterwards so no
    dangling pointer outlives the block.
    """
    if buft is None:
        buft = cpu_buffer_type(llama_cpp)
    overrides = OverrideArray(list(patterns), buft)

    def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
        def load_with_overrides(path_model: bytes, params: Any, /) -> Any:
            previous = params.tensor_buft_overrides
            params.tensor_buft_overrides = overrides.address
            try:
                return original(path_model, params)
            finally:
                params.tensor_buft_overrides = previous

        return load_with_overrides

    with wrapped_model_loader(llama_cpp, wrap):
        log.info("keeping tensors matching %d pattern(s) in buffer type %#x", len(patterns), buft)
        yield overrides


@contextmanager
def cpu_moe_overrides(llama_cpp: ModuleType, n_layers: int | Iterable[int]) -> Iterator[OverrideArray]:
    """``--n-cpu-moe N``: keep the expert weights of the first N blocks in CPU memory.

    Usage in the worker::

        with cpu_moe_overrides(llama_cpp, 12):
            llm = llama_cpp.Llama(model_path=..., n_gpu_layers=-1, ...)
    """
    with tensor_buft_overrides(llama_cpp, expert_layer_patterns(n_layers)) as arr:
        yield arr


@dataclass(frozen=True)
class OverriddenTensor:
    name: str
    mib: int
    ggml_type: str
    buffer_type: str


def overridden_tensors(log_text: str | Iterable[str]) -> list[OverriddenTensor]:
    """The tensors llama.cpp's load log reports as moved by an override.

    Proof that an override reached llama.cpp: e.g.
    ``tensor blk.0.ffn_up_exps.weight (0 MiB mxfp4) buffer type overridden to CPU``.
    """
    text = log_text if isinstance(log_text, str) else "\n".join(log_text)
    return [OverriddenTensor(m.group(1), int(m.group(2)), m.group(3), m.group(4))
            for m in _OVERRIDE_LOG_RE.finditer(text)]
