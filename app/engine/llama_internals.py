"""Every private llama-cpp-python internal the engine relies on, in one place.

The public API cannot sample from a KV cache the engine positioned itself, roll
that cache back to a shared prefix, or hand tensor buffer-type overrides to the
model loader. The engine does those through the functions below and nothing
else; ``REQUIRED`` lists each internal they touch, and
tests/app/engine/test_llama_internals.py checks that list against the installed
llama-cpp-python, so an upgrade fails there, naming the symbol, not in a chat.

Nothing here imports llama_cpp: the engine worker (the only module that does)
passes the module or its ``Llama`` in.
"""

from __future__ import annotations

import ctypes

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from types import ModuleType
from typing import Any

# The llama-cpp-python version REQUIRED was checked against (the Makefile pins it too).
PINNED_VERSION = "0.3.36"

# (path inside the llama_cpp package, kind). Kinds: "method" (a function on the class),
# "function" (a module-level callable), "instance attribute" (assigned in Llama.__init__),
# "calls NAME" (the function's source calls NAME through its module, so wrapping
# NAME on the module is seen by it).
REQUIRED: tuple[tuple[str, str], ...] = (
    ("Llama._init_sampler", "method"),
    ("Llama._ctx", "instance attribute"),
    ("_internals.LlamaContext.ctx", "instance attribute"),
    ("Llama.n_tokens", "instance attribute"),
    ("Llama.input_ids", "instance attribute"),
    ("_internals.LlamaSampler.sample", "method"),
    ("_internals.LlamaSampler.accept", "method"),
    ("llama_cpp.llama_model_load_from_file", "function"),
    ("_internals.LlamaModel.__init__", "calls llama_cpp.llama_model_load_from_file"),
)


def new_sampler(llm: Any, *, top_k: int, top_p: float, min_p: float, temp: float,
                repeat_penalty: float, grammar: Any = None) -> Any:
    """A sampler chain built the way ``Llama`` builds its own (``Llama._init_sampler``).

    ``grammar``: a ``llama_cpp.LlamaGrammar`` the sampled tokens must follow, or None.
    """
    return llm._init_sampler(top_k=top_k, top_p=top_p, min_p=min_p, temp=temp, repeat_penalty=repeat_penalty,
                             grammar=grammar)


class GrammarChecker:
    """llama.cpp's grammar sampler on its own, to test one token at a time.

    ``GrammarChecker.parse`` returns None for a grammar llama.cpp cannot parse (a chain
    given that null sampler would crash). Freed with the object.
    """

    def __init__(self, llama_cpp: ModuleType, ptr: Any) -> None:
        self._lc, self._ptr = llama_cpp, ptr

    @classmethod
    def parse(cls, llama_cpp: ModuleType, vocab: Any, grammar: str) -> "GrammarChecker | None":
        ptr = llama_cpp.llama_sampler_init_grammar(vocab, grammar.encode("utf-8"), b"root")
        return cls(llama_cpp, ptr) if ptr else None

    def allows(self, token: int) -> bool:
        lc = self._lc
        data = (lc.llama_token_data * 1)(lc.llama_token_data(token, 1.0, 0.0))
        arr = lc.llama_token_data_array(data=data, size=1, selected=-1, sorted=False)
        lc.llama_sampler_apply(self._ptr, ctypes.byref(arr))
        return data[0].logit != float("-inf")

    def accept(self, token: int) -> None:
        self._lc.llama_sampler_accept(self._ptr, token)

    def __del__(self) -> None:
        ptr, self._ptr = getattr(self, "_ptr", None), None
        if ptr:
            self._lc.llama_sampler_free(ptr)


def accept(sampler: Any, token: int) -> None:
    """Tell a ``Llama`` sampler chain (``LlamaSampler.accept``) a token was chosen without it."""
    sampler.accept(token)


def last_logits(llama_cpp: ModuleType, llm: Any, n_vocab: int) -> Any:
    """The last position's logits as a NumPy view of llama.cpp's buffer (``Llama._ctx.ctx``), no copy.

    Valid until the next decode.
    """
    import numpy as np

    ptr = llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1)
    return np.ctypeslib.as_array(ptr, shape=(n_vocab,))


def sample(llm: Any, sampler: Any) -> int:
    """The next token from the last position's logits (``LlamaSampler.sample(Llama._ctx, -1)``)."""
    return int(sampler.sample(llm._ctx, -1))


def cached_count(llm: Any) -> int:
    """How many positions of the KV cache ``Llama`` believes it holds (``Llama.n_tokens``)."""
    return int(llm.n_tokens)


def cached_tokens(llm: Any, n: int) -> list[int]:
    """The first ``n`` tokens ``Llama`` has evaluated (``Llama.input_ids``)."""
    return [int(t) for t in llm.input_ids[:n].tolist()]


def set_cached_count(llm: Any, n: int) -> None:
    """Keep the first ``n`` cached positions: ``Llama.eval()`` drops every position >= n_tokens."""
    llm.n_tokens = n


def set_cached_tokens(llm: Any, tokens: Sequence[int]) -> None:
    """Tell ``Llama`` its cache holds ``tokens`` (after a saved state was restored into it)."""
    k = len(tokens)
    llm.input_ids[:k] = tokens
    llm.n_tokens = k


@contextmanager
def wrapped_model_loader(llama_cpp: ModuleType,
                         wrap: Callable[[Callable[..., Any]], Callable[..., Any]]) -> Iterator[None]:
    """Inside the block, ``Llama()`` loads models through ``wrap(original_loader)``.

    ``Llama`` builds ``llama_model_params`` itself and passes them to
    ``llama_cpp.llama_cpp.llama_model_load_from_file`` (from ``_internals.LlamaModel``),
    which looks the function up on its module at call time. Not thread-safe: the
    engine worker loads one model at a time.
    """
    inner: Any = getattr(llama_cpp, "llama_cpp", llama_cpp)
    original: Callable[..., Any] = inner.llama_model_load_from_file
    inner.llama_model_load_from_file = wrap(original)
    try:
        yield
    finally:
        inner.llama_model_load_from_file = original
