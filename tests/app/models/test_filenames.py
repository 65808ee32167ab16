"""Remote file names become local paths only when they are plain file names on every OS."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from app.models import hub
from app.models.cli import run_models
from app.models.download import DownloadJob, DownloadRequest, DownloadState
from app.models.errors import UnsafeFileNameError
from app.models.filenames import local_file_name, plain_name_problem
from app.models.library import ModelLibrary
from app.models.network import NetworkConfig
from app.paths import resolve_paths
from tests.app.models.conftest import FAST
from tests.support.fakehub import FakeHub, make_blob

REPO = "org/tiny-GGUF"
UNSAFE = [
    "..\\..\\win.gguf", "C:\\Windows\\win.gguf", "C:win.gguf", "\\\\server\\share\\win.gguf", "..", ".", "",
    "trail/", "dir/..", "a\0b.gguf", "model.gguf:stream", "NUL.gguf", "con", "name.gguf.", "name.gguf ", "   ",
    "x" * 300 + ".gguf", "bad\nname.gguf",
]


@pytest.mark.parametrize("name", UNSAFE)
def test_unsafe_names_are_refused_with_the_reason(name: str) -> None:
    with pytest.raises(UnsafeFileNameError) as err:
        local_file_name(name, source=REPO)
    msg = str(err.value)
    assert repr(name) in msg and REPO in msg and "not a plain file name" in msg


@pytest.mark.parametrize("path,name", [
    ("model.gguf", "model.gguf"), ("Q8_0/model-Q8_0.gguf", "model-Q8_0.gguf"), ("/abs/model.gguf", "model.gguf"),
    ("a/b/c d (1).gguf", "c d (1).gguf"), ("ünïcode.gguf", "ünïcode.gguf"), ("..model.gguf", "..model.gguf"),
])
def test_plain_names_pass(path: str, name: str) -> None:
    assert local_file_name(path) == name
    assert plain_name_problem(name) is None


def _job(models_dir: Path, net: NetworkConfig, filename: str) -> DownloadJob:
    return DownloadJob(DownloadRequest(REPO, filename), models_dir, net, policy=FAST, library=ModelLibrary(models_dir))


@pytest.mark.parametrize("name", ["..\\..\\win.gguf", "C:\\win.gguf", "..", "trail/"])
def test_download_of_an_unsafe_name_fails_before_any_file_is_written(fakehub: FakeHub, net: NetworkConfig,
                                                                     tmp_path: Path, name: str) -> None:
    models_dir = tmp_path / "deep" / "models"
    models_dir.mkdir(parents=True)
    fakehub.add_file(REPO, name.rstrip("/") or "x", make_blob(1000))
    before = sorted(p for p in tmp_path.rglob("*"))
    job = _job(models_dir, net, name)
    events = list(job.run())
    assert events[-1].state is DownloadState.FAILED
    assert repr(name) in events[-1].message and "not a plain file name" in events[-1].message
    assert "already" not in events[-1].message
    assert sorted(p for p in tmp_path.rglob("*")) == before
    assert not fakehub.requests  # refused before asking the server
    job.cancel()  # nothing to delete, and no error for it


def test_listing_leaves_out_unsafe_names(fakehub: FakeHub, net: NetworkConfig) -> None:
    fakehub.add_file(REPO, "good.gguf", make_blob(100))
    fakehub.add_file(REPO, "..\\..\\win.gguf", make_blob(100, seed=1))
    fakehub.add_file(REPO, "sub/C:\\evil.gguf", make_blob(100, seed=2))
    assert [m.name for m in hub.list_gguf_files(REPO, net)] == ["good.gguf"]


@pytest.mark.parametrize("name", ["..\\..\\win.gguf", "..", "trail/"])
def test_cli_download_rejects_the_name_as_a_usage_error(fakehub: FakeHub, tmp_path: Path, name: str) -> None:
    import argparse

    paths = resolve_paths(tmp_path / "data")
    args = argparse.Namespace(models_command="download", repo_id=REPO, filename=name, revision="main",
                              no_progress=True)
    out, err = io.StringIO(), io.StringIO()
    assert run_models(args, paths, out=out, err=err) == 2
    assert repr(name) in err.getvalue() and "not a plain file name" in err.getvalue()


def test_remove_partial_never_leaves_the_models_folder(tmp_path: Path) -> None:
    models_dir = tmp_path / "models"
    models_dir.mkdir()
    outside = tmp_path / "precious.part"
    outside.write_bytes(b"keep me")
    with pytest.raises(Exception, match="no unfinished download"):
        ModelLibrary(models_dir).remove_partial("../precious")
    assert outside.read_bytes() == b"keep me"
