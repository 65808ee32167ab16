"""Fixtures for the model manager: a loopback fake Hugging Face hub, tiny GGUF files, fast retries."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import keyring
import numpy as np
import pytest
from gguf import GGUFWriter

from tests.support.fakehub import FakeHub
from app.models.network import NetworkConfig, RetryPolicy

FAST = RetryPolicy(max_attempts=6, base_delay_s=0.01, max_delay_s=0.05, max_retry_after_s=3.0,
                   connect_timeout_s=2.0, stall_timeout_s=5.0)


def write_gguf(path: Path, *, arch: str = "llama", name: str = "Tiny Test", n_layers: int = 2,
               split_max_tensors: int = 0, seed: int = 0) -> Path:
    """A few-KB GGUF with real metadata and tensors (split into parts when asked)."""
    rng = np.random.default_rng(seed)
    w = GGUFWriter(path, arch, split_max_tensors=split_max_tensors)
    w.add_name(name)
    w.add_block_count(n_layers)
    w.add_context_length(4096)
    w.add_embedding_length(16)
    w.add_feed_forward_length(32)
    w.add_head_count(2)
    w.add_head_count_kv(1)
    w.add_file_type(0)  # ALL_F32
    w.add_tensor("token_embd.weight", rng.standard_normal((8, 16)).astype(np.float32))
    for i in range(n_layers):
        w.add_tensor(f"blk.{i}.attn_q.weight", rng.standard_normal((16, 16)).astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.fixture
def fakehub() -> Iterator[FakeHub]:
    with FakeHub() as hub:
        yield hub


@pytest.fixture
def net(fakehub: FakeHub) -> NetworkConfig:
    return NetworkConfig(endpoint=fakehub.url)


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    d = tmp_path / "models"
    d.mkdir()
    return d




@pytest.fixture
def no_keyring() -> Iterator[None]:
    """The headless-Linux situation: keyring has no backend at all."""
    import keyring.backends.fail

    before = keyring.get_keyring()
    keyring.set_keyring(keyring.backends.fail.Keyring())
    try:
        yield
    finally:
        keyring.set_keyring(before)


@pytest.fixture(autouse=True)
def _hub_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI sets HF_HUB_OFFLINE / HF_HUB_DISABLE_TELEMETRY for its process; undo that after each test."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
