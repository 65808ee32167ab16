"""The curated catalog: its entries, their planner numbers, and the fit hook."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.errors import HearthError
from app.hardware.info import HardwareInfo
from app.models.architectures import is_known_architecture
from app.models.catalog import CATALOG_PATH, CatalogEntry, FitVerdict, find_entry, load_catalog, planner_fit


def test_catalog_is_led_by_the_real_gpt_oss_20b_file() -> None:
    entries = load_catalog()
    first = entries[0]
    assert (first.id, first.repo_id, first.filename) == ("gpt-oss-20b", "ggml-org/gpt-oss-20b-GGUF",
                                                         "gpt-oss-20b-MXFP4.gguf")
    assert first.size_bytes == 12_109_566_624 and first.size_exact
    assert first.sha256 == "27cd6c432c7672cb812a92f611cf3ba7bbc35928262bb1e1253ff4ee6ae35901"
    assert (first.n_layers, first.n_embd, first.n_head, first.n_head_kv, first.head_dim) == (24, 2880, 64, 8, 64)
    assert (first.n_expert, first.n_expert_used, first.n_ctx_train, first.sliding_window) == (32, 4, 131072, 128)
    # 24 layers x 3 expert tensors of 32 x 2880 x 2880 MXFP4 weights (+ their F32 biases).
    assert first.expert_bytes == 24 * 3 * (32 * 2880 * 2880 * 17 // 32 + 32 * 2880 * 4)
    assert first.license == "apache-2.0" and first.role == "chat"
    request = first.download_request()
    assert (request.repo_id, request.filename, request.sha256, request.catalog_id) == (
        first.repo_id, first.filename, first.sha256, "gpt-oss-20b")


def test_catalog_has_unsloth_quants_a_small_chat_model_and_an_embedder() -> None:
    entries = load_catalog()
    assert sum(e.repo_id == "unsloth/gpt-oss-20b-GGUF" for e in entries) >= 2
    small = [e for e in entries if e.role == "chat" and e.size_bytes < 2_000_000_000]
    embed = [e for e in entries if e.role == "embedding"]
    assert small and embed and embed[0].filename.endswith(".gguf")
    for e in entries:
        assert is_known_architecture(e.architecture), e.id
        assert e.size_bytes > 0 and e.license and e.description
        assert e.sha256 is None or len(e.sha256) == 64
    assert find_entry(entries, "GPT-OSS-20B") is entries[0]
    assert find_entry(entries, "gpt-oss-20b-MXFP4.gguf") is entries[0]
    assert find_entry(entries, "nope") is None


def test_fit_hook_gives_each_entry_a_verdict() -> None:
    def fit(entry: CatalogEntry) -> FitVerdict:
        if entry.role == "embedding":
            raise ValueError("no plan for embedders")
        return FitVerdict("fits" if entry.size_bytes < 5e9 else "does_not_fit", f"{entry.name} checked")

    entries = load_catalog(fit=fit)
    by_id = {e.id: e for e in entries}
    assert by_id["gpt-oss-20b"].fit == FitVerdict("does_not_fit", "gpt-oss-20b checked")
    assert by_id["qwen2.5-1.5b-instruct"].fit is not None and by_id["qwen2.5-1.5b-instruct"].fit.verdict == "fits"
    emb = by_id["nomic-embed-text-v1.5"].fit
    assert emb is not None and emb.verdict == "unknown" and "no plan for embedders" in emb.summary


def test_planner_fit_uses_the_load_planner() -> None:
    small_box = HardwareInfo(source="profile:test", os="Linux", arch="x86_64", cpu_physical_cores=4,
                             cpu_logical_cores=8, ram_total=4 << 30, ram_available=3 << 30)
    big_box = HardwareInfo(source="profile:test", os="Linux", arch="x86_64", cpu_physical_cores=8,
                           cpu_logical_cores=16, ram_total=64 << 30, ram_available=60 << 30)
    small = {e.id: e.fit for e in load_catalog(fit=planner_fit(small_box))}
    big = {e.id: e.fit for e in load_catalog(fit=planner_fit(big_box))}
    assert small["gpt-oss-20b"] is not None and small["gpt-oss-20b"].verdict == "does_not_fit"
    assert small["qwen2.5-1.5b-instruct"] is not None and small["qwen2.5-1.5b-instruct"].verdict != "does_not_fit"
    assert big["gpt-oss-20b"] is not None and big["gpt-oss-20b"].verdict in ("fits", "fits_slower")
    assert big["gpt-oss-20b"].summary


def test_a_damaged_catalog_says_what_is_wrong(tmp_path: Path) -> None:
    good = json.loads(CATALOG_PATH.read_text())
    bad = tmp_path / "catalog.json"
    broken = dict(good["models"][0], n_layers="many")
    bad.write_text(json.dumps({"models": [broken]}))
    with pytest.raises(HearthError, match="entry gpt-oss-20b has a bad 'n_layers'"):
        load_catalog(bad)
    bad.write_text("{not json")
    with pytest.raises(HearthError, match="not valid JSON"):
        load_catalog(bad)
    with pytest.raises(HearthError, match="Cannot read the model catalog"):
        load_catalog(tmp_path / "missing.json")
