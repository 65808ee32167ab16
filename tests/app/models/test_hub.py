"""Hugging Face metadata through huggingface_hub, against the loopback fake hub."""

from __future__ import annotations

import time

import pytest

from app.models import hub
from app.models.errors import AuthRequiredError, NetworkError, RemoteNotFoundError
from tests.support.fakehub import FakeHub, make_blob
from app.models.network import NetworkConfig, RetryPolicy
from tests.app.models.conftest import FAST


def test_search_lists_gguf_repositories_most_downloaded_first(fakehub: FakeHub, net: NetworkConfig) -> None:
    fakehub.add_repo("alice/llama-7b-GGUF", downloads=10)
    fakehub.add_repo("bob/llama-3b-GGUF", downloads=500)
    fakehub.add_repo("carol/llama-safetensors", downloads=9000, tags=("safetensors",))
    fakehub.add_repo("dave/mistral-GGUF", downloads=99)
    hits = hub.search_models("llama", net)
    assert [h.repo_id for h in hits] == ["bob/llama-3b-GGUF", "alice/llama-7b-GGUF"]
    assert hits[0].downloads == 500 and "gguf" in hits[0].tags
    assert hub.search_models("nothing-like-this", net) == []


def test_repo_files_come_with_sizes_and_split_sets_grouped(fakehub: FakeHub, net: NetworkConfig) -> None:
    repo = "bob/llama-3b-GGUF"
    fakehub.add_file(repo, "llama-3b-Q4_K_M.gguf", make_blob(1000))
    fakehub.add_file(repo, "Q8_0/llama-3b-Q8_0-00001-of-00002.gguf", make_blob(700, seed=1))
    fakehub.add_file(repo, "Q8_0/llama-3b-Q8_0-00002-of-00002.gguf", make_blob(300, seed=2))
    fakehub.add_file(repo, "README.md", b"# readme", lfs=False)
    models = hub.list_gguf_files(repo, net)
    assert [(m.name, m.size, len(m.files)) for m in models] == [
        ("llama-3b-Q4_K_M.gguf", 1000, 1), ("llama-3b-Q8_0.gguf", 1000, 2)]
    assert models[1].is_split and models[1].first.filename == "Q8_0/llama-3b-Q8_0-00001-of-00002.gguf"
    assert all(f.sha256 and len(f.sha256) == 64 for m in models for f in m.files)


def test_file_info_gives_size_and_sha256(fakehub: FakeHub, net: NetworkConfig) -> None:
    f = fakehub.add_file("a/b", "m.gguf", make_blob(4321))
    info = hub.file_info("a/b", "m.gguf", net)
    assert (info.size, info.sha256, info.hash_kind) == (4321, f.sha256, "sha256")
    small = fakehub.add_file("a/b", "config.json", b"{}", lfs=False)
    info = hub.file_info("a/b", "config.json", net)
    assert info.sha256 is None and info.git_oid == small.git_oid and info.hash_kind == "git-sha1"
    with pytest.raises(RemoteNotFoundError, match="has no file named missing.gguf"):
        hub.file_info("a/b", "missing.gguf", net)


def test_endpoint_is_read_at_call_time(fakehub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    fakehub.add_file("a/b", "m.gguf", make_blob(10))
    monkeypatch.setenv("HF_ENDPOINT", fakehub.url)  # long after huggingface_hub was imported
    net = NetworkConfig()
    assert net.resolved_endpoint == fakehub.url
    assert hub.file_info("a/b", "m.gguf", net).size == 10
    assert hub.file_url("a/b", "m.gguf", net) == f"{fakehub.url}/a/b/resolve/main/m.gguf"


def test_busy_api_is_retried_honouring_retry_after(fakehub: FakeHub, net: NetworkConfig) -> None:
    fakehub.add_file("a/b", "m.gguf", make_blob(10))
    fakehub.api_errors = [(429, {"Retry-After": "1"}), (503, {})]
    t0 = time.monotonic()
    assert hub.file_info("a/b", "m.gguf", net, policy=FAST).size == 10
    assert time.monotonic() - t0 >= 1.0
    fakehub.api_errors = [(503, {})] * 3
    with pytest.raises(NetworkError, match="Could not reach"):
        hub.file_info("a/b", "m.gguf", net, policy=RetryPolicy(max_attempts=3, base_delay_s=0.01))


def test_gated_and_private_repos_explain_the_token(fakehub: FakeHub, net: NetworkConfig) -> None:
    fakehub.add_file("corp/secret-GGUF", "m.gguf", make_blob(10), token="hf_right")
    with pytest.raises(AuthRequiredError, match="add a Hugging Face access token"):
        hub.list_gguf_files("corp/secret-GGUF", net)
    assert hub.list_gguf_files("corp/secret-GGUF", NetworkConfig(endpoint=fakehub.url, token="hf_right"))


def test_the_fake_hub_speaks_what_huggingface_hub_expects() -> None:
    """HEAD /resolve as huggingface_hub reads it: commit, linked size and etag, a CDN on another host."""
    import huggingface_hub

    with FakeHub(cdn_host="localhost") as fakehub:
        f = fakehub.add_file("a/b", "m.gguf", make_blob(2048))
        url = huggingface_hub.hf_hub_url("a/b", "m.gguf", endpoint=fakehub.url)
        meta = huggingface_hub.get_hf_file_metadata(url, token=False, endpoint=fakehub.url)
    assert meta.size == 2048 and meta.etag == f.sha256 and meta.commit_hash
    assert meta.location.startswith(f"{fakehub.cdn_url}/cdn/{f.sha256}")


def test_only_hub_py_imports_huggingface_hub() -> None:
    """huggingface_hub reads its settings at import: one module imports it, lazily, after configuring."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[3] / "app"
    users = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for n in names:
                if n.split(".")[0] in ("huggingface_hub", "httpx2"):
                    users.append((n.split(".")[0], path.relative_to(root.parent).as_posix()))
    assert {f for lib, f in users if lib == "huggingface_hub"} == {"app/models/hub.py"}
    # httpx2 (declared in pyproject) is also the remote engine's HTTP client.
    assert {f for lib, f in users if lib == "httpx2"} <= {"app/models/hub.py", "app/engine/remote.py"}


def test_offline_mode_can_be_switched_off_again(monkeypatch) -> None:
    import os
    import sys

    from app.models.hub import configure_environment

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    configure_environment(True)
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    configure_environment(False)
    assert "HF_HUB_OFFLINE" not in os.environ
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:
        assert constants.HF_HUB_OFFLINE is False
