"""The Hugging Face token: keyring when there is one, this session only when there is not, never a file."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.models.errors import KeyringUnavailableError
from app.models.token import NO_KEYRING, TokenStore
from tests.keyrings import MemoryKeyring


def test_token_is_kept_in_the_keyring(memory_keyring: MemoryKeyring, tmp_path: Path) -> None:
    store = TokenStore()
    assert store.get() is None and store.source is None
    assert store.keyring_status()[0]
    assert store.save("  hf_abc123  ") == "keyring"
    assert list(memory_keyring.store.values()) == ["hf_abc123"]
    assert TokenStore().get() == "hf_abc123" and TokenStore().source == "keyring"  # another run finds it
    store.clear()
    assert TokenStore().get() is None and memory_keyring.store == {}
    # Nothing was written anywhere on disk under the test's home and data dirs.
    assert not any("hf_abc123" in p.read_text(errors="ignore") for p in tmp_path.rglob("*") if p.is_file())


@pytest.mark.usefixtures("no_keyring")
def test_without_a_keyring_it_says_so_and_keeps_the_token_for_this_run_only(tmp_path: Path) -> None:
    store = TokenStore()
    usable, why = store.keyring_status()
    assert not usable and why == NO_KEYRING and "this session only" in why
    with pytest.raises(KeyringUnavailableError, match="No system keyring"):
        store.save("hf_session_tok")
    assert store.get() is None  # not saved anywhere as a fallback
    assert store.save("hf_session_tok", remember=False) == "session"
    assert store.get() == "hf_session_tok" and store.source == "session"
    assert TokenStore().get() is None  # a new run does not have it
    assert not any("hf_session_tok" in p.read_text(errors="ignore") for p in tmp_path.rglob("*") if p.is_file())


def test_hf_token_environment_variable_is_a_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_from_env")
    assert TokenStore().get() == "hf_from_env" and TokenStore().source == "environment"
