"""Read a GGUF file's metadata and tensor table without loading its weights.

The header is parsed directly (``struct`` over an ``mmap``) instead of with
``gguf.GGUFReader``: the reader builds numpy views for every element of the
tokenizer arrays, which takes seconds on a 200k-token vocabulary, while Hearth
needs the header of a 12 GB model in well under a second (the model list, the
planner and the load dialog all call this). Big arrays are skipped, not read;
only the two token strings we show (BOS/EOS) are fetched from the vocabulary.
"""

from __future__ import annotations

import logging
import math
import mmap
import os
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType, LlamaFileType

from app.errors import NotGGUFError
from app.gguf_names import EXPERT_TENSOR_RE, SPLIT_RE, split_part_names

logger = logging.getLogger(__name__)

GGUF_MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32

# Limits on what a header may hold, far above any real model (gpt-oss has ~40
# keys, ~460 tensors, a 201,088-token vocabulary and a ~20 KB chat template):
# a corrupt or crafted file must fail fast with the limit it broke named, not
# make us allocate gigabytes, loop for minutes or recurse until Python gives up.
_MAX_KEYS = 1 << 16  # metadata keys
_MAX_TENSORS = 1 << 16  # tensor table entries
_MAX_NAME = 1 << 12  # bytes in a key or tensor name (llama.cpp allows 63)
_MAX_STRING = 1 << 26  # bytes in one string value (chat templates are KBs)
_MAX_ARRAY = 1 << 24  # elements in one array (vocabularies are ~10^5)
_MAX_STRINGS_TOTAL = 1 << 25  # strings in all arrays together
_MAX_KEPT = 1 << 20  # small-array elements and nested arrays kept in memory
_MAX_DEPTH = 4  # arrays of arrays (no supported model nests them at all)
_MAX_LAYERS = 1 << 16  # block_count (the largest models have ~100)
_MAX_DIMS = 4

# GGUF value types (gguf.GGUFValueType), with the struct format of the scalars.
_T_UINT8, _T_INT8, _T_UINT16, _T_INT16, _T_UINT32, _T_INT32 = 0, 1, 2, 3, 4, 5
_T_FLOAT32, _T_BOOL, _T_STRING, _T_ARRAY, _T_UINT64, _T_INT64, _T_FLOAT64 = 6, 7, 8, 9, 10, 11, 12
_SCALAR_FMT: dict[int, str] = {
    _T_UINT8: "<B", _T_INT8: "<b", _T_UINT16: "<H", _T_INT16: "<h",
    _T_UINT32: "<I", _T_INT32: "<i", _T_FLOAT32: "<f", _T_BOOL: "<?",
    _T_UINT64: "<Q", _T_INT64: "<q", _T_FLOAT64: "<d",
}

# Arrays up to this many elements are kept in ``metadata`` (layer patterns,
# per-layer head counts); longer ones (vocabularies, merges) are skipped.
SMALL_ARRAY_LIMIT = 1024

# Keys llama.cpp's load_hparams reads with a required get_key for some
# architectures (src/llama-model.cpp), beyond those every model needs.
_ARCH_REQUIRED: dict[str, tuple[str, ...]] = {
    "gpt-oss": ("attention.layer_norm_rms_epsilon", "expert_feed_forward_length", "attention.sliding_window"),
}

_LAYER_RE = re.compile(r"^blk\.(\d+)\.")

# Default sliding-window layer patterns that llama.cpp hard-codes per
# architecture when the file has no ``attention.sliding_window_pattern`` key
# (src/models/*.cpp ``load_swa_pattern(ml, n, dense_first)``).
_SWA_DEFAULT_PATTERN: dict[str, tuple[int, bool]] = {
    "gpt-oss": (2, False),
    "gemma2": (2, False),
    "gemma3": (6, False),
    "gemma3n": (5, False),
    "gemma-embedding": (6, False),
    "cohere2": (4, False),
    "exaone4": (4, False),
    "olmo2": (4, False),
    "llama4": (4, False),
    "smallthinker": (4, True),
    "modern-bert": (3, True),
}


@dataclass(frozen=True)
class TensorInfo:
    """One entry of the tensor table."""

    name: str
    ggml_type: int
    type_name: str
    shape: tuple[int, ...]  # ggml order: ne0 (row length) first
    n_elements: int
    n_bytes: int
    offset: int  # absolute byte offset of the data in its file
    part: int = 0  # index into GGUFInfo.parts for split models

    @property
    def layer(self) -> int | None:
        """The block number for ``blk.N.*`` tensors, else None."""
        m = _LAYER_RE.match(self.name)
        return int(m.group(1)) if m else None

    @property
    def is_expert(self) -> bool:
        """True for MoE expert weights (what ``--n-cpu-moe`` keeps on the CPU)."""
        return EXPERT_TENSOR_RE.search(self.name) is not None


@dataclass(frozen=True)
class GGUFInfo:
    """What Hearth needs to know about a model file, read from its header."""

    path: Path
    file_size: int  # all parts together
    architecture: str
    name: str
    n_layers: int
    n_embd: int
    n_ctx_train: int
    n_head: int
    n_head_kv: int
    head_dim_k: int
    head_dim_v: int
    n_expert: int
    n_expert_used: int
    n_ff: int
    n_ff_expert: int
    sliding_window: int  # 0: no sliding-window attention
    swa_layers: tuple[bool, ...]  # True where layer i uses the sliding window
    vocab_size: int
    n_merges: int  # BPE merges; llama.cpp keeps a map of them in memory
    file_type: int | None
    quantization: str  # e.g. "MXFP4", "Q4_K_M"
    n_params: int
    chat_template: str | None
    bos_token: str | None
    eos_token: str | None
    bos_token_id: int | None
    eos_token_id: int | None
    version: int
    parts: tuple[Path, ...] = field(default=(), hash=False)
    tensors: tuple[TensorInfo, ...] = field(default=(), hash=False, repr=False)
    metadata: dict[str, Any] = field(default_factory=dict, hash=False, repr=False)
    keys: frozenset[str] = field(default=frozenset(), hash=False, repr=False)  # every metadata key, read or skipped

    def missing_required_keys(self) -> list[str]:
        """Keys llama.cpp refuses to load without (it then says only "failed to load model")."""
        arch = self.architecture
        need = [f"{arch}.context_length", f"{arch}.embedding_length", f"{arch}.block_count", "tokenizer.ggml.model"]
        if self.metadata.get("tokenizer.ggml.model") != "none":
            need.append("tokenizer.ggml.tokens")
        need += [f"{arch}.{k}" for k in _ARCH_REQUIRED.get(arch, ())]
        return [k for k in need if k not in self.keys]

    # --- derived views used by the planner ---------------------------------

    @property
    def tensor_bytes(self) -> int:
        return sum(t.n_bytes for t in self.tensors)

    @property
    def is_moe(self) -> bool:
        return self.n_expert > 0 and any(t.is_expert for t in self.tensors)

    @property
    def n_swa_layers(self) -> int:
        return sum(self.swa_layers)

    def layer_bytes(self) -> list[int]:
        """Bytes of every ``blk.N.*`` tensor, per layer (index N)."""
        out = [0] * self.n_layers
        for t in self.tensors:
            il = t.layer
            if il is not None and il < self.n_layers:
                out[il] += t.n_bytes
        return out

    def expert_bytes_per_layer(self) -> list[int]:
        """Bytes of the MoE expert tensors, per layer."""
        out = [0] * self.n_layers
        for t in self.tensors:
            il = t.layer
            if il is not None and il < self.n_layers and t.is_expert:
                out[il] += t.n_bytes
        return out

    @property
    def expert_bytes(self) -> int:
        return sum(t.n_bytes for t in self.tensors if t.is_expert)

    def tensor(self, name: str) -> TensorInfo | None:
        for t in self.tensors:
            if t.name == name:
                return t
        return None


# --- split files ----------------------------------------------------------


def split_set(path: str | os.PathLike[str]) -> list[Path]:
    """All parts of a split GGUF (``name-00001-of-00003.gguf``), in order.

    A single-file model gives ``[path]``. Any part may be passed. Raises
    NotGGUFError naming the first missing part.
    """
    p = Path(path)
    m = SPLIT_RE.match(p.name)
    if not m:
        return [p]
    count = int(m.group("count"))
    if count < 1 or int(m.group("no")) < 1 or int(m.group("no")) > count:
        raise NotGGUFError(f"{p.name}: the split numbering '{m.group('no')}-of-{m.group('count')}' is invalid.")
    parts = [p.with_name(n) for n in split_part_names(m.group("prefix"), count)]
    for part in parts:
        if not part.is_file():
            raise NotGGUFError(
                f"{p.name} is part of a model split into {count} files, but {part.name} is missing "
                f"from {p.parent}. Download all parts into the same folder."
            )
    return parts


# --- the parser -------------------------------------------------------------


class _Truncated(Exception):
    """Internal: the header runs past the end of the file."""


class _TooLarge(ValueError):
    """Internal: the header breaks one of the limits above; the message names it."""


def _check(value: int, limit: int, what: str) -> None:
    if value > limit:
        raise _TooLarge(f"{what} is {value:,}, over Hearth's limit of {limit:,}")


class _Header:
    """Cursor over one mapped file; every read checks the bounds."""

    def __init__(self, buf: mmap.mmap | bytes, size: int) -> None:
        self.buf = buf
        self.size = size
        self.off = 0
        self.kept = 0  # small-array elements and nested arrays held in memory so far
        self.strings = 0  # strings in arrays walked so far

    def _need(self, n: int) -> None:
        if self.off + n > self.size:
            raise _Truncated()

    def scalar(self, fmt: str) -> Any:
        n = struct.calcsize(fmt)
        self._need(n)
        (v,) = struct.unpack_from(fmt, self.buf, self.off)
        self.off += n
        return v

    def u32(self) -> int:
        return int(self.scalar("<I"))

    def u64(self) -> int:
        return int(self.scalar("<Q"))

    def string(self, limit: int = _MAX_STRING, what: str = "a string value") -> str:
        n = self.u64()
        _check(n, limit, f"the length of {what} (at byte {self.off - 8:,})")
        self._need(n)
        raw = bytes(self.buf[self.off:self.off + n])
        self.off += n
        return raw.decode("utf-8", errors="replace")

    def skip_strings(self, count: int) -> None:
        """Skip ``count`` strings, checking each length."""
        buf, size, off = self.buf, self.size, self.off
        unpack = struct.unpack_from
        for _ in range(count):
            if off + 8 > size:
                raise _Truncated()
            (n,) = unpack("<Q", buf, off)
            _check(n, _MAX_STRING, f"the length of a string (at byte {off:,})")
            off += 8 + n
        if off > size:
            raise _Truncated()
        self.off = off

    def string_in_array(self, start: int, index: int) -> str:
        """String ``index`` of a string array whose first element is at ``start`` (already bounds-checked)."""
        off = start
        for _ in range(index):
            (n,) = struct.unpack_from("<Q", self.buf, off)
            off += 8 + n
        (n,) = struct.unpack_from("<Q", self.buf, off)
        return bytes(self.buf[off + 8:off + 8 + n]).decode("utf-8", errors="replace")

    def _keep(self, n: int) -> None:
        self.kept += n
        _check(self.kept, _MAX_KEPT, "the number of small-array elements in its metadata")

    def value(self, vtype: int, key: str, array_starts: dict[str, int], depth: int = 0) -> Any:
        if vtype in _SCALAR_FMT:
            return self.scalar(_SCALAR_FMT[vtype])
        if vtype == _T_STRING:
            return self.string(what=f"the value of {key}")
        if vtype == _T_ARRAY:
            # Iterative code would not need the depth limit, but Python lists
            # nested thousands deep cannot even be printed or compared safely.
            _check(depth + 1, _MAX_DEPTH, f"the nesting depth of the arrays in {key}")
            itype = self.u32()
            count = self.u64()
            _check(count, _MAX_ARRAY, f"the length of the array {key}")
            if itype == _T_STRING:
                self.strings += count
                _check(self.strings, _MAX_STRINGS_TOTAL, "the number of strings in its metadata arrays")
                if count <= SMALL_ARRAY_LIMIT:
                    self._keep(count)
                    return [self.string(what=f"a string in {key}") for _ in range(count)]
                # Vocabularies are large: remember only where the array starts,
                # for the few token strings looked up afterwards.
                if depth == 0:
                    array_starts[key] = self.off
                self.skip_strings(count)
                return _SkippedArray(count)
            if itype in _SCALAR_FMT:
                width = struct.calcsize(_SCALAR_FMT[itype])
                self._need(width * count)
                if count <= SMALL_ARRAY_LIMIT:
                    self._keep(count)
                    fmt = "<" + _SCALAR_FMT[itype][1] * count
                    vals = list(struct.unpack_from(fmt, self.buf, self.off))
                    self.off += width * count
                    return vals
                self.off += width * count
                return _SkippedArray(count)
            if itype == _T_ARRAY:
                # Nested arrays occur in no model Hearth supports; walk them anyway.
                self._keep(count)
                return [self.value(_T_ARRAY, key, array_starts, depth + 1) for _ in range(count)]
            raise ValueError(f"unknown array element type {itype} for {key}")
        raise ValueError(f"unknown value type {vtype} for {key}")


@dataclass(frozen=True)
class _SkippedArray:
    """Stands in ``metadata`` for a large array that was not read."""

    length: int


@dataclass
class _Part:
    version: int
    kv: dict[str, Any]
    tensors: list[TensorInfo]
    file_size: int
    bos_token: str | None
    eos_token: str | None


def _type_name(ggml_type: int) -> str:
    try:
        return GGMLQuantizationType(ggml_type).name
    except ValueError:
        return f"type{ggml_type}"


def _read_part(path: Path, part_index: int) -> _Part:
    try:
        file_size = path.stat().st_size
    except FileNotFoundError:
        raise NotGGUFError(f"{path} does not exist. Check the path, or download the model again.") from None
    except OSError as exc:
        raise NotGGUFError(f"{path} cannot be read: {exc.strerror or exc}.") from exc
    if not path.is_file():
        raise NotGGUFError(f"{path} is not a file. Choose a .gguf model file.")
    if file_size < 24:
        raise NotGGUFError(
            f"{path.name} is not a GGUF model: it is only {file_size} bytes long. "
            "It may be an unfinished download; download it again."
        )
    try:
        with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            return _parse(mm, file_size, path, part_index)
    except NotGGUFError:
        raise
    except _Truncated:
        raise NotGGUFError(
            f"{path.name} is truncated: its header ends early ({file_size:,} bytes on disk). "
            "It is probably an unfinished download; download it again."
        ) from None
    except _TooLarge as exc:
        raise NotGGUFError(
            f"{path.name} is not a usable GGUF model: {exc}. The file is damaged or was not made by a "
            "GGUF converter; delete it and download the model again."
        ) from exc
    except (ValueError, KeyError, struct.error, UnicodeDecodeError) as exc:
        raise NotGGUFError(f"{path.name} is not a valid GGUF model: {exc}.") from exc
    except (RecursionError, MemoryError, OverflowError) as exc:
        # The limits above should make these impossible; if a file still finds a
        # way, it is named as unusable rather than ending the program.
        raise NotGGUFError(
            f"{path.name} is not a usable GGUF model: its header could not be read "
            f"({type(exc).__name__}). Delete it and download the model again."
        ) from exc
    except OSError as exc:
        raise NotGGUFError(f"{path} cannot be read: {exc.strerror or exc}.") from exc


def _parse(mm: mmap.mmap, file_size: int, path: Path, part_index: int) -> _Part:
    h = _Header(mm, file_size)
    magic = bytes(mm[0:4])
    if magic != GGUF_MAGIC:
        raise NotGGUFError(
            f"{path.name} is not a GGUF model (it starts with {magic!r}, not b'GGUF'). "
            "Hearth runs .gguf files; convert the model or download its GGUF version."
        )
    h.off = 4
    version = h.u32()
    if version not in SUPPORTED_VERSIONS:
        if version & 0xFFFF == 0:
            reason = "it was written on a big-endian machine"
        else:
            reason = f"it uses GGUF version {version}; Hearth reads versions 2 and 3"
        raise NotGGUFError(f"{path.name} cannot be read: {reason}. Download a current GGUF of this model.")
    n_tensors = h.u64()
    n_kv = h.u64()
    _check(n_kv, _MAX_KEYS, "the number of metadata keys")
    _check(n_tensors, _MAX_TENSORS, "the number of tensors")

    kv: dict[str, Any] = {}
    array_starts: dict[str, int] = {}
    for _ in range(n_kv):
        key = h.string(_MAX_NAME, "a metadata key")
        vtype = h.u32()
        array_starts.pop(key, None)  # a repeated key: only its last value counts
        kv[key] = h.value(vtype, key, array_starts)

    raw_tensors: list[tuple[str, tuple[int, ...], int, int]] = []
    for _ in range(n_tensors):
        name = h.string(_MAX_NAME, "a tensor name")
        n_dims = h.u32()
        if n_dims > _MAX_DIMS:
            raise ValueError(f"tensor {name} has {n_dims} dimensions")
        dims = tuple(h.u64() for _ in range(n_dims))
        ggml_type = h.u32()
        rel = h.u64()
        raw_tensors.append((name, dims, ggml_type, rel))

    alignment = kv.get("general.alignment", DEFAULT_ALIGNMENT)
    if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
        raise ValueError(f"invalid general.alignment {alignment!r}")
    data_start = -(-h.off // alignment) * alignment

    tensors: list[TensorInfo] = []
    for name, dims, ggml_type, rel in raw_tensors:
        n_el = 1
        for d in dims:
            n_el *= d
        try:
            block, type_size = GGML_QUANT_SIZES[GGMLQuantizationType(ggml_type)]
        except (ValueError, KeyError):
            raise NotGGUFError(
                f"{path.name} uses tensor type {ggml_type} (in {name}), which this version of Hearth "
                "does not know. Update Hearth or choose another quantization of the model."
            ) from None
        n_bytes = n_el * type_size // block
        start = data_start + rel
        if start + n_bytes > file_size:
            raise NotGGUFError(
                f"{path.name} is truncated: tensor {name} needs bytes up to {start + n_bytes:,} but the file "
                f"has {file_size:,}. It is probably an unfinished download; download it again."
            )
        tensors.append(TensorInfo(name, ggml_type, _type_name(ggml_type), dims, n_el, n_bytes, start, part_index))

    def token_string(id_key: str) -> str | None:
        tid = kv.get(id_key)
        start = array_starts.get("tokenizer.ggml.tokens")
        toks = kv.get("tokenizer.ggml.tokens")
        if not isinstance(tid, int) or tid < 0:
            return None
        if isinstance(toks, list):
            tok = toks[tid] if tid < len(toks) else None
            return tok if isinstance(tok, str) else None
        if start is not None and isinstance(toks, _SkippedArray) and tid < toks.length:
            return h.string_in_array(start, tid)
        return None

    return _Part(version, kv, tensors, file_size, token_string("tokenizer.ggml.bos_token_id"),
                 token_string("tokenizer.ggml.eos_token_id"))


# --- interpretation ---------------------------------------------------------


def _as_int(v: Any, default: int = 0) -> int:
    """A hyperparameter that may be a scalar or a per-layer array: its maximum."""
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        return int(v) if math.isfinite(v) else default
    if isinstance(v, list) and v and all(isinstance(x, (int, float)) for x in v):
        return _as_int(max(v), default)
    return default


def swa_layer_pattern(arch: str, n_layers: int, sliding_window: int, pattern: Any = None) -> tuple[bool, ...]:
    """Which layers use sliding-window attention, as llama.cpp decides it.

    ``pattern`` is the file's ``{arch}.attention.sliding_window_pattern`` value
    (a per-layer bool array or a period), when present.
    """
    if sliding_window <= 0:
        return (False,) * n_layers
    if isinstance(pattern, list) and len(pattern) >= n_layers:
        return tuple(bool(x) for x in pattern[:n_layers])
    n_pattern, dense_first = _SWA_DEFAULT_PATTERN.get(arch, (0, False))
    if isinstance(pattern, int) and not isinstance(pattern, bool):
        n_pattern = pattern
    elif arch not in _SWA_DEFAULT_PATTERN:
        # A window with no known pattern: llama.cpp's default (n_pattern 0)
        # makes every layer sliding.
        n_pattern = 0
    if n_pattern == 0:
        return (True,) * n_layers
    if dense_first:
        return tuple(il % n_pattern != 0 for il in range(n_layers))
    return tuple(il % n_pattern < n_pattern - 1 for il in range(n_layers))


def _quant_label(file_type: int | None, tensors: list[TensorInfo]) -> str:
    if file_type is not None:
        try:
            name = LlamaFileType(file_type).name
        except ValueError:
            name = ""
        if name.startswith("MOSTLY_"):
            name = name[len("MOSTLY_"):]
        if name == "MXFP4_MOE":
            return "MXFP4"
        if name == "ALL_F32":
            return "F32"
        if name and name != "GUESSED":
            return name
    # No (known) file type: name it after the type holding most bytes.
    by_type: dict[str, int] = {}
    for t in tensors:
        by_type[t.type_name] = by_type.get(t.type_name, 0) + t.n_bytes
    return max(by_type, key=lambda k: by_type[k]) if by_type else "unknown"


def read_gguf_info(path: str | os.PathLike[str]) -> GGUFInfo:
    """Read a GGUF model's header (all parts of a split model, summed).

    Raises NotGGUFError (a ModelLoadError) for a missing file, a file that is
    not GGUF, a truncated file or an unsupported GGUF version, with a message
    naming the file and the reason.
    """
    p = Path(path).expanduser()
    parts = split_set(p)
    read = [_read_part(part, i) for i, part in enumerate(parts)]
    kv = dict(read[0].kv)
    for extra in read[1:]:
        for k, v in extra.kv.items():
            kv.setdefault(k, v)
    tensors = [t for r in read for t in r.tensors]

    arch = kv.get("general.architecture")
    if not isinstance(arch, str) or not arch:
        raise NotGGUFError(f"{parts[0].name} has no general.architecture key, so it is not a usable model file.")

    def a(key: str, default: Any = None) -> Any:
        return kv.get(f"{arch}.{key}", default)

    n_layers = _as_int(a("block_count"))
    if n_layers > _MAX_LAYERS:
        # Per-layer tables are built from it: a corrupt count must not allocate gigabytes.
        raise NotGGUFError(
            f"{parts[0].name} is not a usable GGUF model: {arch}.block_count ({n_layers:,}) is over "
            f"Hearth's limit of {_MAX_LAYERS:,}. The file is damaged; delete it and download the model again."
        )
    n_embd = _as_int(a("embedding_length"))
    n_head = _as_int(a("attention.head_count"))
    n_head_kv = _as_int(a("attention.head_count_kv"), n_head)
    head_dim_default = n_embd // n_head if n_head else 0
    head_dim_k = _as_int(a("attention.key_length"), head_dim_default)
    head_dim_v = _as_int(a("attention.value_length"), head_dim_default)
    sliding_window = _as_int(a("attention.sliding_window"))
    if arch == "gemma2" and sliding_window == 0:
        sliding_window = 4096  # llama.cpp's default for gemma 2

    toks = kv.get("tokenizer.ggml.tokens")
    if isinstance(toks, _SkippedArray):
        vocab_size = toks.length
    elif isinstance(toks, list):
        vocab_size = len(toks)
    else:
        vocab_size = _as_int(a("vocab_size"))
    if vocab_size == 0:
        emb = next((t for t in tensors if t.name == "token_embd.weight"), None)
        vocab_size = emb.shape[1] if emb is not None and len(emb.shape) > 1 else 0

    merges = kv.get("tokenizer.ggml.merges")
    n_merges = merges.length if isinstance(merges, _SkippedArray) else len(merges) if isinstance(merges, list) else 0

    file_type = kv.get("general.file_type")
    file_type = int(file_type) if isinstance(file_type, int) else None
    name = kv.get("general.name")
    if not isinstance(name, str) or not name.strip():
        stem = parts[0].name
        m = SPLIT_RE.match(stem)
        name = m.group("prefix") if m else parts[0].stem
    template = kv.get("tokenizer.chat_template")

    # Vocabulary arrays are left out even when small: metadata is for display
    # and settings, and its size should not depend on the vocabulary.
    metadata = {
        k: v for k, v in kv.items()
        if not isinstance(v, _SkippedArray) and not (k.startswith("tokenizer.ggml.") and isinstance(v, list))
    }
    return GGUFInfo(
        path=parts[0],
        file_size=sum(r.file_size for r in read),
        architecture=arch,
        name=name.strip(),
        n_layers=n_layers,
        n_embd=n_embd,
        n_ctx_train=_as_int(a("context_length")),
        n_head=n_head,
        n_head_kv=n_head_kv,
        head_dim_k=head_dim_k,
        head_dim_v=head_dim_v,
        n_expert=_as_int(a("expert_count")),
        n_expert_used=_as_int(a("expert_used_count")),
        n_ff=_as_int(a("feed_forward_length")),
        n_ff_expert=_as_int(a("expert_feed_forward_length")),
        sliding_window=sliding_window,
        swa_layers=swa_layer_pattern(arch, n_layers, sliding_window, a("attention.sliding_window_pattern")),
        vocab_size=vocab_size,
        n_merges=n_merges,
        file_type=file_type,
        quantization=_quant_label(file_type, tensors),
        n_params=sum(t.n_elements for t in tensors),
        chat_template=template if isinstance(template, str) else None,
        bos_token=read[0].bos_token,
        eos_token=read[0].eos_token,
        bos_token_id=kv.get("tokenizer.ggml.bos_token_id") if isinstance(kv.get("tokenizer.ggml.bos_token_id"), int) else None,
        eos_token_id=kv.get("tokenizer.ggml.eos_token_id") if isinstance(kv.get("tokenizer.ggml.eos_token_id"), int) else None,
        version=read[0].version,
        parts=tuple(parts),
        tensors=tuple(tensors),
        metadata=metadata,
        keys=frozenset(kv),
    )


def iter_gguf_files(folder: str | os.PathLike[str]) -> Iterator[Path]:
    """The model files in a folder: ``*.gguf``, one entry per split model (its first part)."""
    for p in sorted(Path(folder).glob("*.gguf")):
        m = SPLIT_RE.match(p.name)
        if m and int(m.group("no")) != 1:
            continue
        yield p
