"""The local library: listing, import (in place / copy), split sets, verify, remove, HF cache discovery."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import tarfile
from pathlib import Path

import pytest

from app.errors import Cancelled, HearthError, NotGGUFError
from app.models.architectures import KNOWN_ARCHITECTURES, LLAMA_CPP_VERSION
from app.models.catalog import load_catalog
from app.models.errors import ImportRejectedError, ModelNotInstalledError
from app.models.hfcache import find_cached_models, hf_cache_dir
from app.models.library import IN_MODELS_DIR, IN_PLACE, ModelLibrary
from app.models.network import CancelToken
from tests.app.models.conftest import write_gguf
from tests.gguf_models import write_tiny_gptoss

# `make test` downloads the pinned sdist next to the venv (for the gpt-oss template too).
LLAMA_SDIST = Path(sys.prefix) / "sdist" / f"llama_cpp_python-{LLAMA_CPP_VERSION}.tar.gz"


def test_installed_models_are_listed_with_their_metadata(models_dir: Path) -> None:
    write_tiny_gptoss(models_dir / "gpt-oss-tiny.gguf")
    write_gguf(models_dir / "small-llama.gguf", name="Small Llama")
    (models_dir / "half.gguf.part").write_bytes(b"GGUF" + b"\0" * 100)  # an unfinished download
    (models_dir / "notes.txt").write_text("not a model")
    lib = ModelLibrary(models_dir)
    models = {m.name: m for m in lib.list_installed()}
    assert set(models) == {"gpt-oss-tiny", "small-llama"}
    oss = models["gpt-oss-tiny"]
    assert oss.architecture == "gpt-oss" and oss.quantization and oss.n_params > 0
    assert oss.n_ctx_train == 4096 and oss.location == IN_MODELS_DIR
    assert oss.size_bytes == (models_dir / "gpt-oss-tiny.gguf").stat().st_size
    assert models["small-llama"].title == "Small Llama"
    [partial] = lib.list_partial()
    assert partial.filename == "half.gguf" and partial.request is None


def test_broken_and_unknown_architecture_files_are_not_offered(models_dir: Path) -> None:
    (models_dir / "garbage.gguf").write_bytes(b"this is not a model at all" * 10)
    write_gguf(models_dir / "alien.gguf", arch="notarealarch")
    scan = ModelLibrary(models_dir).scan()
    assert scan.models == []
    problems = {p.path.name: p.message for p in scan.problems}
    assert set(problems) == {"garbage.gguf", "alien.gguf"}
    assert "notarealarch" in problems["alien.gguf"] and "cannot run" in problems["alien.gguf"]


def test_import_in_place_and_remove_forgets_without_deleting(models_dir: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "my-models"
    elsewhere.mkdir()
    src = write_gguf(elsewhere / "mine.gguf")
    lib = ModelLibrary(models_dir)
    model = lib.import_model(src, copy=False)
    assert model.location == IN_PLACE and model.path == src and model.name == "mine"
    assert [m.name for m in ModelLibrary(models_dir).list_installed()] == ["mine"]  # remembered on disk
    registry = json.loads((models_dir / "library.json").read_text())
    assert str(src) in registry["in_place"]
    result = lib.remove("mine")
    assert result.forgotten and result.deleted == () and src.exists()
    assert lib.list_installed() == []


def test_import_by_copy_hashes_and_verify_detects_damage(models_dir: Path, tmp_path: Path) -> None:
    src = write_tiny_gptoss(tmp_path / "gpt-oss-tiny.gguf")
    lib = ModelLibrary(models_dir)
    model = lib.import_model(src, copy=True)
    dest = models_dir / "gpt-oss-tiny.gguf"
    assert model.path == dest and model.location == IN_MODELS_DIR and model.has_reference_hash
    assert dest.read_bytes() == src.read_bytes() and src.exists()
    assert lib.recorded_hash(dest) == hashlib.sha256(src.read_bytes()).hexdigest()
    ok = lib.verify("gpt-oss-tiny")
    assert ok.ok and ok.checked_hash
    with open(dest, "r+b") as f:  # flip a byte in the tensor data, past the header
        f.seek(-10, os.SEEK_END)
        b = f.read(1)
        f.seek(-10, os.SEEK_END)
        f.write(bytes([b[0] ^ 0xFF]))
    bad = lib.verify("gpt-oss-tiny")
    assert not bad.ok and bad.checked_hash and "damaged" in bad.message
    with pytest.raises(HearthError, match="already in"):
        lib.import_model(src, copy=True)  # never overwrites


def test_import_rejects_non_gguf_and_unknown_architectures(models_dir: Path, tmp_path: Path) -> None:
    lib = ModelLibrary(models_dir)
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"PK\x03\x04 a zip file")
    with pytest.raises(NotGGUFError):
        lib.import_model(junk)
    alien = write_gguf(tmp_path / "alien.gguf", arch="notarealarch")
    with pytest.raises(ImportRejectedError, match="notarealarch"):
        lib.import_model(alien, copy=True)
    assert lib.list_installed() == [] and list(models_dir.iterdir()) == []


def test_split_set_is_one_model_everywhere(models_dir: Path, tmp_path: Path) -> None:
    src_dir = tmp_path / "split"
    src_dir.mkdir()
    write_gguf(src_dir / "big.gguf", n_layers=3, split_max_tensors=2)
    parts = sorted(src_dir.iterdir())
    assert [p.name for p in parts] == ["big-00001-of-00002.gguf", "big-00002-of-00002.gguf"]
    lib = ModelLibrary(models_dir)
    model = lib.import_model(parts[1], copy=True)  # any part stands for the set
    assert model.name == "big" and len(model.parts) == 2
    assert model.size_bytes == sum(p.stat().st_size for p in parts)
    assert [m.name for m in lib.list_installed()] == ["big"]
    assert lib.verify("big").checked_hash
    (models_dir / "big-00002-of-00002.gguf").unlink()
    scan = lib.scan()
    assert scan.models == [] and "missing" in scan.problems[0].message
    shutil.copy(parts[1], models_dir)
    result = lib.remove("big")
    assert result.freed_bytes == model.size_bytes and not any(models_dir.glob("big-*"))


def test_remove_frees_the_disk(models_dir: Path) -> None:
    write_tiny_gptoss(models_dir / "gpt-oss-tiny.gguf")
    lib = ModelLibrary(models_dir)
    size = (models_dir / "gpt-oss-tiny.gguf").stat().st_size
    result = lib.remove("gpt-oss-tiny.gguf")  # the file name works as well as the name
    assert result.freed_bytes == size and not (models_dir / "gpt-oss-tiny.gguf").exists()
    with pytest.raises(ModelNotInstalledError, match="No installed model is called 'gpt-oss-tiny'"):
        lib.remove("gpt-oss-tiny")


def test_verify_without_a_reference_checks_the_header_only(models_dir: Path) -> None:
    write_gguf(models_dir / "found.gguf")
    lib = ModelLibrary(models_dir)
    result = lib.verify("found")
    assert result.ok and not result.checked_hash and "no published checksum" in result.message


def test_verify_can_be_cancelled(models_dir: Path, tmp_path: Path) -> None:
    lib = ModelLibrary(models_dir)
    lib.import_model(write_gguf(tmp_path / "c.gguf"), copy=True)
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        lib.verify("c", cancel=token)


def test_catalog_model_is_recognised_by_its_file_and_id(models_dir: Path) -> None:
    write_tiny_gptoss(models_dir / "nomic-embed-text-v1.5.Q8_0.gguf")
    lib = ModelLibrary(models_dir, catalog=load_catalog())
    [m] = lib.list_installed()
    assert m.catalog_id == "nomic-embed-text-v1.5"  # its size is not marked exact, so the name decides
    assert lib.get("nomic-embed-text-v1.5").path == m.path


def _fake_hf_cache(root: Path, repo_id: str, files: dict[str, Path], revision: str = "abc123") -> Path:
    """The layout huggingface_hub writes: snapshot symlinks into blobs named by sha256."""
    repo = root / ("models--" + repo_id.replace("/", "--"))
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    snap = repo / "snapshots" / revision
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(revision)
    for name, src in files.items():
        sha = hashlib.sha256(src.read_bytes()).hexdigest()
        blob = repo / "blobs" / sha
        shutil.copy(src, blob)
        link = snap / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    return snap


def test_models_in_the_hugging_face_cache_are_found_and_offered(models_dir: Path, tmp_path: Path) -> None:
    cache = Path(os.environ["HF_HUB_CACHE"])
    assert hf_cache_dir() == cache
    oss = write_tiny_gptoss(tmp_path / "gpt-oss-tiny.gguf")
    split_dir = tmp_path / "s"
    split_dir.mkdir()
    write_gguf(split_dir / "sp.gguf", n_layers=3, split_max_tensors=2)
    snap = _fake_hf_cache(cache, "ggml-org/gpt-oss-tiny-GGUF", {"gpt-oss-tiny.gguf": oss})
    _fake_hf_cache(cache, "someone/split-GGUF", {f"Q4/{p.name}": p for p in sorted(split_dir.iterdir())})
    found = {c.repo_id: c for c in find_cached_models()}
    assert set(found) == {"ggml-org/gpt-oss-tiny-GGUF", "someone/split-GGUF"}
    assert found["ggml-org/gpt-oss-tiny-GGUF"].sha256 == hashlib.sha256(oss.read_bytes()).hexdigest()
    assert found["someone/split-GGUF"].n_parts == 2 and found["someone/split-GGUF"].name == "sp"

    lib = ModelLibrary(models_dir)
    offered = lib.find_hf_cache_models()
    assert len(offered) == 2
    model = lib.import_model(snap / "gpt-oss-tiny.gguf", copy=False)  # use it where it is
    assert model.location == IN_PLACE and model.has_reference_hash
    assert lib.verify(model.name).checked_hash  # the blob's name is its sha256
    assert [c.repo_id for c in lib.find_hf_cache_models()] == ["someone/split-GGUF"]


def test_architecture_list_matches_the_pinned_llama_cpp() -> None:
    if not LLAMA_SDIST.exists():
        pytest.skip(f"{LLAMA_SDIST} is missing: `make test` downloads it")
    with tarfile.open(LLAMA_SDIST) as tar:
        member = next(n for n in tar.getnames() if n.endswith("vendor/llama.cpp/src/llama-arch.cpp"))
        f = tar.extractfile(member)
        assert f is not None
        src = f.read().decode("utf-8")
    block = src[src.index("LLM_ARCH_NAMES = {"):]
    block = block[: block.index("};")]
    names = set(re.findall(r'\{\s*LLM_ARCH_\w+,\s*"([^"]+)"\s*\}', block)) - {"clip", "(unknown)"}
    assert names == KNOWN_ARCHITECTURES
