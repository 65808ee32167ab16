"""Which models speak harmony (gpt-oss), and the strings that end their turns."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

HARMONY_ARCHITECTURES = frozenset({"gpt-oss"})

# <|return|>: the final answer is complete; <|call|>: a tool call waits for its result.
HARMONY_STOP_TOKENS = ("<|return|>", "<|call|>")


def is_harmony_model(metadata: Mapping[str, Any]) -> bool:
    """True for a GGUF whose ``general.architecture`` is gpt-oss (metadata as llama.cpp reports it)."""
    arch = metadata.get("general.architecture")
    if isinstance(arch, bytes):
        arch = arch.decode("utf-8", "replace")
    return isinstance(arch, str) and arch.strip().lower() in HARMONY_ARCHITECTURES
