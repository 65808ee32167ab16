"""The shape of a model as the planner needs it, from a GGUF header or a catalog entry.

A downloaded model is described exactly (bytes per tensor from its header); a
catalog model not yet downloaded is described from the catalog's numbers, with
the split between layers and embeddings estimated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.gguf_info import GGUFInfo, swa_layer_pattern

# Vocabulary sizes for catalog entries that do not give one.
ARCH_VOCAB: dict[str, int] = {"gpt-oss": 201_088, "gemma3": 262_144, "gemma2": 256_000, "llama": 128_256,
                              "qwen2": 151_936, "qwen3": 151_936, "qwen3moe": 151_936, "phi3": 32_064}
# Merges in the BPE tokenizers of those families (llama.cpp keeps them in a map).
ARCH_MERGES: dict[str, int] = {"gpt-oss": 446_189, "llama": 280_147, "qwen2": 151_387, "qwen3": 151_387,
                               "qwen3moe": 151_387}
# Embedding and output matrices are Q8_0 in the common GGUFs of these sizes:
# 34 bytes per 32 weights.
_EMBED_BYTES_PER_WEIGHT = 34 / 32


@dataclass(frozen=True)
class ModelSpec:
    """Everything the planner reads about a model. Byte counts are of the weights as stored."""

    name: str
    architecture: str
    file_size: int
    n_layers: int
    n_embd: int
    n_head: int
    n_head_kv: int
    head_dim_k: int
    head_dim_v: int
    n_ctx_train: int
    sliding_window: int
    swa_layers: tuple[bool, ...]
    n_expert: int
    n_expert_used: int
    n_ff: int
    n_ff_expert: int
    vocab_size: int
    n_merges: int
    quantization: str
    layer_bytes: tuple[int, ...]  # all tensors of block i (experts included)
    layer_expert_bytes: tuple[int, ...]  # the MoE expert tensors of block i
    input_bytes: int  # token_embd: llama.cpp always keeps it in RAM
    output_bytes: int  # output (+ norm); token_embd again when the output is tied to it
    output_tied: bool = False
    source: str = "gguf"  # "gguf" or "catalog"
    path: str | None = None
    catalog_id: str | None = None

    # --- derived --------------------------------------------------------------

    @property
    def weight_bytes(self) -> int:
        """Bytes of weights as loaded (the tied output is not stored twice on the CPU)."""
        return self.input_bytes + sum(self.layer_bytes) + (0 if self.output_tied else self.output_bytes)

    @property
    def is_moe(self) -> bool:
        return self.n_expert > 0 and sum(self.layer_expert_bytes) > 0

    @property
    def expert_bytes(self) -> int:
        return sum(self.layer_expert_bytes)

    @property
    def n_full_layers(self) -> int:
        return sum(1 for s in self.swa_layers if not s)

    @property
    def active_fraction(self) -> float:
        """Share of a layer's experts read for one token."""
        if not self.is_moe or self.n_expert_used <= 0:
            return 1.0
        return min(1.0, self.n_expert_used / self.n_expert)

    def layer_active_bytes(self, il: int) -> tuple[float, float]:
        """(dense bytes, expert bytes) block ``il`` reads per generated token."""
        exp = self.layer_expert_bytes[il]
        return float(self.layer_bytes[il] - exp), exp * self.active_fraction

    # --- construction -----------------------------------------------------------

    @classmethod
    def from_gguf(cls, info: GGUFInfo) -> ModelSpec:
        emb = sum(t.n_bytes for t in info.tensors if t.name.startswith("token_embd."))
        out_names = [t for t in info.tensors if t.layer is None and not t.name.startswith("token_embd.")]
        has_output = any(t.name == "output.weight" for t in out_names)
        out = sum(t.n_bytes for t in out_names)
        if not has_output:
            out += emb  # tied embeddings: a GPU copy of token_embd serves as the output layer
        return cls(
            name=info.name, architecture=info.architecture, file_size=info.file_size,
            n_layers=info.n_layers, n_embd=info.n_embd, n_head=info.n_head, n_head_kv=info.n_head_kv,
            head_dim_k=info.head_dim_k, head_dim_v=info.head_dim_v, n_ctx_train=info.n_ctx_train,
            sliding_window=info.sliding_window, swa_layers=info.swa_layers, n_expert=info.n_expert,
            n_expert_used=info.n_expert_used, n_ff=info.n_ff, n_ff_expert=info.n_ff_expert,
            vocab_size=info.vocab_size, n_merges=info.n_merges, quantization=info.quantization,
            layer_bytes=tuple(info.layer_bytes()), layer_expert_bytes=tuple(info.expert_bytes_per_layer()),
            input_bytes=emb, output_bytes=out, output_tied=not has_output, source="gguf", path=str(info.path),
        )

    @classmethod
    def from_catalog(cls, entry: dict[str, Any]) -> ModelSpec:
        """From a catalog entry (assets/catalog.json); missing optional numbers get family defaults.

        Raises ValueError naming the entry when a required number is missing.
        """
        ident = str(entry.get("id") or entry.get("filename") or "catalog entry")

        def num(key: str, default: int | None = None) -> int:
            v = entry.get(key, default)
            if v is None:
                raise ValueError(f"catalog entry {ident} has no '{key}', so Hearth cannot plan a load for it")
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
                raise ValueError(f"catalog entry {ident}: '{key}' must be a non-negative number, not {v!r}")
            return int(v)

        arch = str(entry.get("architecture") or "")
        size = num("size_bytes")
        n_layers = num("n_layers")
        if n_layers <= 0:
            raise ValueError(f"catalog entry {ident}: 'n_layers' must be positive")
        n_embd = num("n_embd")
        n_head = num("n_head")
        n_head_kv = num("n_head_kv", n_head)
        head_dim = num("head_dim", n_embd // n_head if n_head else 0)
        n_expert = num("n_expert", 0)
        vocab = num("vocab_size", ARCH_VOCAB.get(arch, 32_000))
        sliding = num("sliding_window", 0)
        expert_total = num("expert_bytes", 0)
        emb = int(vocab * n_embd * _EMBED_BYTES_PER_WEIGHT)
        tied = bool(entry.get("tied_embeddings", False))
        out = emb
        header = 16 * 1024 * 1024  # metadata and vocabulary in the file header, roughly
        rest = max(0, size - header - expert_total - emb - (0 if tied else out))
        per_layer_dense = rest // n_layers
        per_layer_exp = expert_total // n_layers
        return cls(
            name=str(entry.get("name") or ident), architecture=arch, file_size=size, n_layers=n_layers,
            n_embd=n_embd, n_head=n_head, n_head_kv=n_head_kv, head_dim_k=head_dim, head_dim_v=head_dim,
            n_ctx_train=num("n_ctx_train", 4096), sliding_window=sliding,
            swa_layers=swa_layer_pattern(arch, n_layers, sliding, entry.get("sliding_window_pattern")),
            n_expert=n_expert, n_expert_used=num("n_expert_used", 0), n_ff=num("n_ff", 4 * n_embd),
            n_ff_expert=num("n_ff_expert", n_embd if n_expert else 0), vocab_size=vocab,
            n_merges=num("n_merges", ARCH_MERGES.get(arch, 0)), quantization=str(entry.get("quantization") or "?"),
            layer_bytes=(per_layer_dense + per_layer_exp,) * n_layers, layer_expert_bytes=(per_layer_exp,) * n_layers,
            input_bytes=emb, output_bytes=out, output_tied=tied, source="catalog",
            catalog_id=str(entry.get("id")) if entry.get("id") else None,
        )
