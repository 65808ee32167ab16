"""The generated GGUF files behave like gpt-oss in llama.cpp: they load, generate, and tokenize harmony."""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any

import llama_cpp
import numpy as np
import pytest
from gguf import GGMLQuantizationType, GGUFReader

from tests.gguf_models import (
    FULL_SPECIALS_START,
    FULL_VOCAB_SIZE,
    HARMONY_SPECIALS,
    REAL_GPTOSS_20B_SIZE,
    cached_full_gptoss,
    full_gptoss_size,
    full_vocab,
    write_tiny_gptoss,
)

HEADER = b"<|start|>user<|message|>hi<|end|>"
# llama.cpp (0.3.36's vendored copy) loads these harmony tokens as USER_DEFINED,
# not CONTROL, so it matches their text even when parse_special is off -- on the
# real gpt-oss file too. Hearth's prompt code must guard user text against them.
ALWAYS_PARSED = ("<|start|>", "<|channel|>", "<|message|>", "<|constrain|>", "<|end|>")
CONTROL_ONLY = ("<|startoftext|>", "<|endoftext|>", "<|return|>", "<|call|>")


def _load(path: Path, **kwargs: Any) -> llama_cpp.Llama:
    return llama_cpp.Llama(model_path=str(path), n_ctx=512, verbose=False, **kwargs)


def _special_ids(path: Path) -> dict[str, int]:
    reader = GGUFReader(path)
    tokens = reader.fields["tokenizer.ggml.tokens"]
    texts = [bytes(tokens.parts[i]).decode() for i in tokens.data]
    return {text: texts.index(text) for text in HARMONY_SPECIALS}


def test_tiny_gptoss_generates_with_finite_logits(gptoss_path: Path) -> None:
    llm = _load(gptoss_path, logits_all=True)
    try:
        prompt = llm.tokenize(HEADER + b"<|start|>assistant", add_bos=False, special=True)
        llm.eval(prompt)
        logits = llm.scores[: llm.n_tokens]
        assert np.isfinite(logits).all()
        assert logits.std() > 0.1  # the random weights really reach the output
        llm.reset()
        generated = list(itertools.islice(llm.generate(prompt, temp=0.0), 8))
        assert len(generated) == 8
        assert all(0 <= tok < llm.n_vocab() for tok in generated)
    finally:
        llm.close()


def test_tiny_gptoss_streams_a_completion(gptoss_mxfp4_path: Path) -> None:
    llm = _load(gptoss_mxfp4_path, flash_attn=True, swa_full=False)
    try:
        out = llm.create_completion("hello", max_tokens=6, temperature=1.0, seed=3)
        assert isinstance(out, dict)  # not streamed
        assert out["usage"]["completion_tokens"] >= 1
        assert out["choices"][0]["finish_reason"] in ("length", "stop")
    finally:
        llm.close()


def test_harmony_specials_have_their_own_ids_and_end_generation(gptoss_path: Path) -> None:
    ids = _special_ids(gptoss_path)
    llm = _load(gptoss_path)
    try:
        tokens = llm.tokenize(HEADER, add_bos=False, special=True)
        assert tokens[0] == ids["<|start|>"] and tokens[-1] == ids["<|end|>"]
        assert ids["<|message|>"] in tokens
        assert llm.detokenize(tokens, special=True) == HEADER
        assert llm.token_eos() == ids["<|return|>"]
        assert llm.token_bos() == ids["<|startoftext|>"]
        vocab = llm._model.vocab
        assert all(llama_cpp.llama_vocab_is_eog(vocab, ids[t]) for t in ("<|return|>", "<|call|>"))
        # <|end|> closes a message, not the turn: llama.cpp must not stop there.
        assert not llama_cpp.llama_vocab_is_eog(vocab, ids["<|end|>"])
    finally:
        llm.close()


def test_control_specials_are_plain_text_without_special(gptoss_path: Path) -> None:
    ids = _special_ids(gptoss_path)
    llm = _load(gptoss_path)
    try:
        for text in CONTROL_ONLY:
            plain = llm.tokenize(text.encode(), add_bos=False, special=False)
            assert ids[text] not in plain and len(plain) > 1
            assert llm.detokenize(plain) == text.encode()
            assert llm.tokenize(text.encode(), add_bos=False, special=True) == [ids[text]]
    finally:
        llm.close()


def test_llama_cpp_parses_harmony_framing_even_without_special(gptoss_path: Path) -> None:
    """Pins llama.cpp's gpt-oss override that Hearth's prompt building must work around."""
    ids = _special_ids(gptoss_path)
    llm = _load(gptoss_path)
    try:
        plain = llm.tokenize(HEADER, add_bos=False, special=False)
        assert [ids[t] for t in ("<|start|>", "<|message|>", "<|end|>")] == [
            tok for tok in plain if tok in ids.values()
        ]
        for text in ALWAYS_PARSED:
            assert llm.tokenize(text.encode(), add_bos=False, special=False) == [ids[text]]
    finally:
        llm.close()


@pytest.mark.parametrize("experts", ["f32", "mxfp4"])
def test_tiny_gptoss_metadata_reads_back(tmp_path: Path, experts: str) -> None:
    path = write_tiny_gptoss(tmp_path / "m.gguf", experts=experts, n_layers=3, n_ctx_train=8192)
    reader = GGUFReader(path)

    def scalar(key: str) -> object:
        return reader.fields[key].contents()

    assert scalar("general.architecture") == "gpt-oss"
    assert scalar("gpt-oss.block_count") == 3
    assert scalar("gpt-oss.context_length") == 8192
    assert scalar("gpt-oss.attention.sliding_window") == 128
    assert scalar("gpt-oss.expert_count") == 4 and scalar("gpt-oss.expert_used_count") == 2
    assert scalar("tokenizer.ggml.pre") == "gpt-4o"
    assert "tokenizer.chat_template" not in reader.fields
    tensor_types = {t.name: t.tensor_type for t in reader.tensors}
    expected = GGMLQuantizationType.MXFP4 if experts == "mxfp4" else GGMLQuantizationType.F32
    assert tensor_types["blk.2.ffn_down_exps.weight"] == expected
    assert tensor_types["blk.2.attn_sinks.weight"] == GGMLQuantizationType.F32
    assert path.stat().st_size < 1_000_000


def test_tiny_gptoss_is_deterministic_per_seed(tmp_path: Path) -> None:
    first = write_tiny_gptoss(tmp_path / "a.gguf", seed=7).read_bytes()
    again = write_tiny_gptoss(tmp_path / "b.gguf", seed=7).read_bytes()
    other = write_tiny_gptoss(tmp_path / "c.gguf", seed=8).read_bytes()
    assert first == again
    assert first != other and len(first) == len(other)


def test_full_size_plan_matches_the_real_20b_file() -> None:
    """Benchmarks on the generated file only mean something if it weighs what the real one does."""
    vocab = full_vocab()
    assert len(vocab.tokens) == FULL_VOCAB_SIZE == len(set(vocab.tokens))
    assert vocab.id_of("<|startoftext|>") == FULL_SPECIALS_START
    assert [vocab.id_of(t) for t in ("<|return|>", "<|start|>", "<|end|>", "<|message|>", "<|call|>")] == [
        200_002, 200_006, 200_007, 200_008, 200_012,
    ]
    assert abs(full_gptoss_size() - REAL_GPTOSS_20B_SIZE) / REAL_GPTOSS_20B_SIZE < 0.002


def test_cached_full_gptoss_reuses_a_complete_file(tmp_path: Path) -> None:
    target = tmp_path / "bench" / "gpt-oss-20b-shaped.gguf"
    target.parent.mkdir()
    with target.open("wb") as f:  # sparse: the right size without writing 12 GB
        f.truncate(full_gptoss_size())
    os.utime(target, (1_000_000, 1_000_000))
    assert cached_full_gptoss(target) == target
    assert target.stat().st_mtime == 1_000_000
    assert not target.with_name(target.name + ".part").exists()


def test_gemma_fixture_is_the_real_small_model(gemma_path: Path) -> None:
    assert gemma_path.stat().st_size == 253_113_024
    llm = llama_cpp.Llama(model_path=str(gemma_path), vocab_only=True, verbose=False)
    try:
        assert llm.metadata["general.architecture"] == "gemma3"
        assert llm.tokenize(b"hello", add_bos=False)
    finally:
        llm.close()
