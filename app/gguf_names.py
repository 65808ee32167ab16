"""GGUF naming conventions shared by the loader, the model library and the Hub:
split-file names and expert tensor names, each defined once."""

from __future__ import annotations

import re

# llama.cpp's split files (gguf-split, llama_split_path): name-00001-of-00003.gguf.
SPLIT_RE = re.compile(r"^(?P<prefix>.*)-(?P<no>\d{5})-of-(?P<count>\d{5})\.gguf$")


def split_part_names(prefix: str, count: int) -> list[str]:
    """Every part's file name of a split set, in order (``prefix-00001-of-00003.gguf`` ...)."""
    return [f"{prefix}-{i:05d}-of-{count:05d}.gguf" for i in range(1, count + 1)]


# llama.cpp's expert tensors of a block (common/common.h LLM_FFN_EXPS_REGEX): gate/up/down,
# fused gate_up, and the "chexps" variant some models use. A string, as llama.cpp's
# tensor-override patterns take it.
EXPERT_TENSOR_PATTERN = r"\.ffn_(up|down|gate|gate_up)_(ch|)exps"
EXPERT_TENSOR_RE = re.compile(EXPERT_TENSOR_PATTERN)
