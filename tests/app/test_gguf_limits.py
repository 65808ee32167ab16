"""Crafted GGUF headers: every one is a NotGGUFError naming the file and the limit it broke.

The files are written byte by byte with struct (small: the limits are checked
before anything big is read), so each test controls exactly what the header claims.
"""

from __future__ import annotations

import struct
import sys
import tracemalloc
from pathlib import Path

import pytest

from app.documents.embedder import find_embedding_model
from app.errors import NotGGUFError
from app.gguf_info import read_gguf_info
from app.models.library import ModelLibrary
from tests.app.models.conftest import write_gguf

T_UINT32, T_FLOAT32, T_STRING, T_ARRAY = 4, 6, 8, 9


def s(text: str | bytes) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    return struct.pack("<Q", len(raw)) + raw


def kv_str(key: str, value: str) -> bytes:
    return s(key) + struct.pack("<I", T_STRING) + s(value)


def header(n_kv: int, n_tensors: int = 0) -> bytes:
    return b"GGUF" + struct.pack("<IQQ", 3, n_tensors, n_kv)


def write(path: Path, body: bytes, n_kv: int, n_tensors: int = 0) -> Path:
    path.write_bytes(header(n_kv, n_tensors) + body + b"\0" * 64)
    return path


def nested(depth: int) -> bytes:
    """An array of one array of one array ... ``depth`` deep, ending in an empty u32 array."""
    return struct.pack("<IQ", T_ARRAY, 1) * (depth - 1) + struct.pack("<IQ", T_UINT32, 0)


def deep_file(path: Path, depth: int = 2000) -> Path:
    body = kv_str("general.architecture", "llama") + s("evil") + struct.pack("<I", T_ARRAY) + nested(depth)
    return write(path, body, n_kv=2)


def test_arrays_nested_2000_deep_are_an_error_not_a_crash(tmp_path: Path) -> None:
    path = deep_file(tmp_path / "deep.gguf")
    assert path.stat().st_size < 30_000
    with pytest.raises(NotGGUFError) as err:
        read_gguf_info(path)
    msg = str(err.value)
    assert "deep.gguf" in msg and "nesting depth" in msg and "evil" in msg


def test_deeper_than_the_interpreter_allows(tmp_path: Path) -> None:
    # Deeper than Python's recursion limit: the depth check must stop it first.
    path = deep_file(tmp_path / "deeper.gguf", depth=sys.getrecursionlimit() * 3)
    with pytest.raises(NotGGUFError, match="deeper.gguf"):
        read_gguf_info(path)


def test_a_few_nested_levels_still_read(tmp_path: Path) -> None:
    path = deep_file(tmp_path / "ok.gguf", depth=3)
    info = read_gguf_info(path)
    assert info.architecture == "llama"
    assert info.metadata["evil"] == [[[]]]


def test_crafted_file_in_models_folder_is_listed_as_unusable(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    write_gguf(models / "good.gguf")
    deep_file(models / "bad.gguf")
    scan = ModelLibrary(models).scan()
    assert [m.name for m in scan.models] == ["good"]
    assert [p.path.name for p in scan.problems] == ["bad.gguf"]
    assert "bad.gguf" in scan.problems[0].message
    # The embedding-model lookup (every ``chat --attach``) skips it instead of crashing.
    assert find_embedding_model(object(), models) is None


def test_too_many_keys_is_refused_before_reading_them(tmp_path: Path) -> None:
    # The header claims 3 million keys; only the first few are present.
    path = write(tmp_path / "keys.gguf", kv_str("general.architecture", "llama"), n_kv=3_000_000)
    with pytest.raises(NotGGUFError) as err:
        read_gguf_info(path)
    msg = str(err.value)
    assert "keys.gguf" in msg and "number of metadata keys is 3,000,000" in msg and "limit of 65,536" in msg


def test_too_many_tensors(tmp_path: Path) -> None:
    path = write(tmp_path / "tensors.gguf", kv_str("general.architecture", "llama"), n_kv=1, n_tensors=10**7)
    with pytest.raises(NotGGUFError, match=r"tensors.gguf.*number of tensors is 10,000,000"):
        read_gguf_info(path)


def test_too_long_array(tmp_path: Path) -> None:
    body = kv_str("general.architecture", "llama") + s("big") + struct.pack("<IIQ", T_ARRAY, T_UINT32, 10**9)
    path = write(tmp_path / "array.gguf", body, n_kv=2)
    with pytest.raises(NotGGUFError, match=r"array.gguf.*length of the array big is 1,000,000,000"):
        read_gguf_info(path)


def test_too_long_key_and_string(tmp_path: Path) -> None:
    path = write(tmp_path / "key.gguf", struct.pack("<Q", 10_000) + b"k" * 10_000, n_kv=1)
    with pytest.raises(NotGGUFError, match=r"key.gguf.*length of a metadata key .* is 10,000"):
        read_gguf_info(path)
    body = s("general.architecture") + struct.pack("<IQ", T_STRING, 1 << 40)
    path = write(tmp_path / "string.gguf", body, n_kv=1)
    with pytest.raises(NotGGUFError, match=r"string.gguf.*value of general.architecture .* is 1,099,511,627,776"):
        read_gguf_info(path)


def test_many_small_arrays_are_bounded(tmp_path: Path) -> None:
    # Each small array is kept in memory: 2,000 arrays of 1,000 u32s (8 MB on disk)
    # would be ~80 MB of Python ints. The total is capped.
    one = struct.pack("<IIQ", T_ARRAY, T_UINT32, 1000) + b"\0" * 4000
    body = kv_str("general.architecture", "llama") + b"".join(s(f"a{i}") + one for i in range(2000))
    path = write(tmp_path / "small.gguf", body, n_kv=2001)
    tracemalloc.start()
    try:
        with pytest.raises(NotGGUFError, match=r"small.gguf.*small-array elements"):
            read_gguf_info(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 120 * 2**20


def test_non_finite_and_huge_hyperparameters(tmp_path: Path) -> None:
    body = (kv_str("general.architecture", "llama")
            + s("llama.embedding_length") + struct.pack("<If", T_FLOAT32, float("inf"))
            + s("llama.context_length") + struct.pack("<If", T_FLOAT32, float("nan")))
    info = read_gguf_info(write(tmp_path / "inf.gguf", body, n_kv=3))
    assert (info.n_embd, info.n_ctx_train) == (0, 0)
    body = kv_str("general.architecture", "llama") + s("llama.block_count") + struct.pack("<IQ", 10, 1 << 62)
    with pytest.raises(NotGGUFError, match=r"layers.gguf.*block_count"):
        read_gguf_info(write(tmp_path / "layers.gguf", body, n_kv=2))


def test_duplicate_token_key_does_not_misread(tmp_path: Path) -> None:
    # A big string vocabulary, then the same key again as a big number array:
    # the BOS lookup must not walk the old strings with the new length.
    vocab = struct.pack("<IIQ", T_ARRAY, T_STRING, 2000) + b"".join(s(f"t{i}") for i in range(2000))
    numbers = struct.pack("<IIQ", T_ARRAY, T_UINT32, 5000) + b"\0" * 20000
    body = (kv_str("general.architecture", "llama") + s("tokenizer.ggml.tokens") + vocab
            + s("tokenizer.ggml.tokens") + numbers
            + s("tokenizer.ggml.bos_token_id") + struct.pack("<II", T_UINT32, 4999))
    info = read_gguf_info(write(tmp_path / "dup.gguf", body, n_kv=4))
    assert info.bos_token is None and info.vocab_size == 5000


def test_big_vocabulary_bos_eos_strings(tmp_path: Path) -> None:
    vocab = struct.pack("<IIQ", T_ARRAY, T_STRING, 3000) + b"".join(s(f"t{i}") for i in range(3000))
    body = (kv_str("general.architecture", "llama") + s("tokenizer.ggml.tokens") + vocab
            + s("tokenizer.ggml.bos_token_id") + struct.pack("<II", T_UINT32, 1)
            + s("tokenizer.ggml.eos_token_id") + struct.pack("<II", T_UINT32, 2999))
    info = read_gguf_info(write(tmp_path / "vocab.gguf", body, n_kv=4))
    assert (info.bos_token, info.eos_token, info.vocab_size) == ("t1", "t2999", 3000)
