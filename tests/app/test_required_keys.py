"""A GGUF without a key llama.cpp requires is refused before loading, naming the key and the file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from gguf import GGUFWriter

from app.errors import NotGGUFError
from app.gguf_info import read_gguf_info
from app.loading import choose_load
from app.settings import Settings
from tests.gguf_models import write_tiny_gptoss

ROOT = Path(__file__).resolve().parents[2]


def _write(path: Path, *, skip: str) -> Path:
    """A small llama file with every key llama.cpp needs, except ``skip``."""
    w = GGUFWriter(path, "llama")
    adders = {
        "llama.context_length": lambda: w.add_context_length(2048),
        "llama.embedding_length": lambda: w.add_embedding_length(32),
        "llama.block_count": lambda: w.add_block_count(1),
        "tokenizer.ggml.model": lambda: w.add_tokenizer_model("gpt2"),
        "tokenizer.ggml.tokens": lambda: w.add_token_list(["a", "b"]),
    }
    for key, add in adders.items():
        if key != skip:
            add()
    w.add_head_count(4)
    w.add_tensor("token_embd.weight", np.zeros((2, 32), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.mark.parametrize("key", ["llama.context_length", "llama.embedding_length", "llama.block_count",
                                 "tokenizer.ggml.model", "tokenizer.ggml.tokens"])
def test_missing_key_is_named_before_loading(tmp_path: Path, key: str) -> None:
    path = _write(tmp_path / "partial.gguf", skip=key)
    assert key in read_gguf_info(path).missing_required_keys()
    with pytest.raises(NotGGUFError) as err:
        choose_load(str(path), Settings())
    msg = str(err.value)
    assert "partial.gguf" in msg and key in msg and "download or convert the model again" in msg


def test_complete_files_pass(tmp_path: Path) -> None:
    assert _write(tmp_path / "full.gguf", skip="").exists()
    assert read_gguf_info(tmp_path / "full.gguf").missing_required_keys() == []
    assert read_gguf_info(write_tiny_gptoss(tmp_path / "oss.gguf")).missing_required_keys() == []


def test_gpt_oss_keys(tmp_path: Path) -> None:
    # Rewrite the tiny gpt-oss without its sliding window: llama.cpp requires it for this architecture.
    from gguf import GGUFReader

    src = write_tiny_gptoss(tmp_path / "oss.gguf")
    r = GGUFReader(src)
    w = GGUFWriter(tmp_path / "no-swa.gguf", "gpt-oss")
    for field in r.fields.values():
        if field.name in ("gpt-oss.attention.sliding_window", "general.architecture") or field.name.startswith("GGUF."):
            continue
        w.add_key_value(field.name, field.contents(), field.types[0], field.types[-1] if len(field.types) > 1 else None)
    for t in r.tensors:
        w.add_tensor(t.name, t.data, raw_shape=t.data.shape, raw_dtype=t.tensor_type)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    assert read_gguf_info(tmp_path / "no-swa.gguf").missing_required_keys() == ["gpt-oss.attention.sliding_window"]


def test_cli_chat_exits_3_with_the_key(tmp_path: Path) -> None:
    path = _write(tmp_path / "nokeys.gguf", skip="tokenizer.ggml.model")
    env = dict(os.environ, HEARTH_DATA_DIR=str(tmp_path / "data"))
    r = subprocess.run([sys.executable, "-m", "ui.shell.entry", "chat", "--model", str(path), "hi"],
                       capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert r.returncode == 3, r.stderr
    assert "nokeys.gguf" in r.stderr and "tokenizer.ggml.model" in r.stderr
    assert "Traceback" not in r.stderr
