"""The fast full-distribution sampler draws from softmax(logits / T), and the engine uses it."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.engine.sampling import FullSampler, argmax, fast_sampler, full_distribution, greedy


def test_frequencies_follow_the_softmax() -> None:
    logits = np.full(20_000, -50.0, dtype=np.float32)
    logits[[3, 10, 9_999, 15_000]] = [2.0, 1.0, 0.0, -1.0]
    for temp in (1.0, 0.7, 2.0):
        n = 20_000
        sampler = FullSampler(len(logits), temp, seed=0)
        draws = np.array([sampler(logits) for _ in range(n)])
        ids, counts = np.unique(draws, return_counts=True)
        z = np.exp(np.array([2.0, 1.0, 0.0, -1.0]) / temp)
        expected = z / (z.sum() + (len(logits) - 4) * np.exp(-50.0 / temp))
        top = dict(zip(ids, counts))
        got = np.array([top.get(i, 0) for i in (3, 10, 9_999, 15_000)]) / n
        assert np.allclose(got, expected, atol=0.01), (temp, got, expected)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-100, 100, allow_nan=False, width=32), min_size=1, max_size=300),
       st.floats(0.05, 5.0), st.integers(0, 2**32 - 1))
def test_always_a_valid_token_and_reproducible(values: list[float], temp: float, seed: int) -> None:
    logits = np.array(values, dtype=np.float32)
    tok = FullSampler(len(values), temp, seed)(logits)
    assert 0 <= tok < len(values)
    assert logits[tok] > logits.max() - 60 * temp  # never a token of vanishing probability
    assert tok == FullSampler(len(values), temp, seed)(logits)  # the same seed, the same token


@pytest.mark.parametrize("args,fast", [
    ((1.0, 0, 1.0, 0.0, 1.0), True),   # gpt-oss: temperature 1, the whole distribution
    ((0.0, 0, 1.0, 0.0, 1.0), False),  # greedy
    ((0.8, 40, 0.95, 0.05, 1.0), False),  # truncated: llama.cpp's chain
    ((1.0, 0, 1.0, 0.0, 1.1), False),  # a repetition penalty needs the history
])
def test_which_settings_take_the_fast_path(args: tuple, fast: bool) -> None:
    assert full_distribution(*args) is fast


def test_the_engine_samples_gpt_oss_settings_reproducibly(gptoss_f32_path) -> None:
    from app.engine.client import EngineClient
    from app.prompt import Segment

    eng = EngineClient()
    try:
        eng.load_blocking(str(gptoss_f32_path), {"n_ctx": 256, "n_threads": 2})
        req = {"max_tokens": 24, "temperature": 1.0, "top_k": 0, "top_p": 1.0, "min_p": 0.0, "use_cache": False,
               "ignore_eos": True}
        seg = [Segment("<|start|>user<|message|>hi<|end|><|start|>assistant", True)]

        def run(seed: int) -> str:
            return "".join(e.text for e in eng.generate({**req, "seed": seed}, seg) if hasattr(e, "text"))

        a, b, c = run(1), run(1), run(2)
        assert a == b and a != c and len(a) > 0
    finally:
        eng.close()


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from([-3.0, 0.0, 1.5, 7.25, 7.25]), min_size=1, max_size=400))
def test_greedy_takes_the_first_of_equal_maxima(values: list[float]) -> None:
    logits = np.array(values, dtype=np.float32)
    assert argmax(logits) == values.index(max(values))  # llama.cpp's greedy sampler keeps the first


@pytest.mark.parametrize("args,fast", [((0.0, 1.0), True), ((0.0, 1.1), False), ((0.7, 1.0), False)])
def test_which_settings_are_greedy(args: tuple, fast: bool) -> None:
    assert greedy(*args) is fast


def test_greedy_through_the_engine_matches_llama_cpp_greedy(gemma_path) -> None:
    """The engine's argmax path gives the tokens llama.cpp's own greedy chain gives (same file, same prompt)."""
    import llama_cpp

    from app.engine.client import EngineClient
    from app.prompt import Segment

    prompt = "The three primary colours are"
    llm = llama_cpp.Llama(model_path=str(gemma_path), n_ctx=256, n_threads=2, verbose=False)
    toks = llm.tokenize(prompt.encode(), add_bos=True)
    expected = []
    for tok in llm.generate(toks, temp=0.0, top_k=1, top_p=1.0, min_p=0.0, repeat_penalty=1.0, reset=True):
        expected.append(tok)
        if len(expected) == 24:
            break
    want = llm.detokenize(expected).decode("utf-8", "replace")
    del llm
    eng = EngineClient()
    try:
        eng.load_blocking(str(gemma_path), {"n_ctx": 256, "n_threads": 2})
        req = {"max_tokens": 24, "temperature": 0.0, "top_k": 40, "top_p": 0.95, "min_p": 0.05,
               "use_cache": False, "ignore_eos": True}
        events = list(eng.generate(req, [Segment(prompt, False)]))
        got = "".join(e.text for e in events if hasattr(e, "text"))
        stats = next(e.stats for e in events if hasattr(e, "stats"))
    finally:
        eng.close()
    assert got == want
    assert stats["completion_tokens"] == 24
    assert 0 <= stats["gen_overhead_ms"] < 50  # Hearth's own time per token, measured beside the decode


def test_the_engine_s_choice_of_sampler() -> None:
    assert fast_sampler(10, 0.0, 40, 0.95, 0.05, 1.0, None) is argmax  # greedy: cuts change nothing
    assert isinstance(fast_sampler(10, 1.0, 0, 1.0, 0.0, 1.0, 7), FullSampler)
    assert fast_sampler(10, 0.8, 40, 0.95, 0.05, 1.0, None) is None  # truncated: llama.cpp's chain
    assert fast_sampler(10, 0.0, 0, 1.0, 0.0, 1.1, None) is None  # a penalty needs the history
