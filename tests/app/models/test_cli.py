"""``hearth models ...`` end to end against the fake hub, with real files and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.models.cli import main
from app.models.download import DownloadJob, DownloadRequest, DownloadState
from tests.support.fakehub import FakeHub, make_blob
from app.models.network import NetworkConfig
from app.paths import resolve_paths
from app.settings import Settings, save_settings
from tests.app.models.conftest import FAST, write_gguf
from tests.gguf_models import write_tiny_gptoss

GPTOSS_REPO, GPTOSS_FILE = "ggml-org/gpt-oss-20b-GGUF", "gpt-oss-20b-MXFP4.gguf"


@pytest.fixture
def data_dir(tmp_path: Path, fakehub: FakeHub) -> Path:
    d = tmp_path / "data"
    paths = resolve_paths(d).ensure()
    save_settings(Settings(hf_endpoint=fakehub.url), paths.settings_path)
    return d


def hearth(data_dir: Path, *args: str) -> int:
    return main(["--data-dir", str(data_dir), *args])


def test_download_by_catalog_id_then_list_verify_rm(fakehub: FakeHub, data_dir: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    data = write_tiny_gptoss(tmp_path / "tiny.gguf").read_bytes()  # stands in for the 12 GB file
    fakehub.add_file(GPTOSS_REPO, GPTOSS_FILE, data)
    assert hearth(data_dir, "download", "gpt-oss-20b") == 0
    out, err = capsys.readouterr()
    assert "checksum verified" in out and GPTOSS_FILE in out
    assert "100.0%" in err and "ETA" in err  # the progress line
    assert (data_dir / "models" / GPTOSS_FILE).read_bytes() == data

    assert hearth(data_dir, "list", "--json") == 0
    listing = json.loads(capsys.readouterr().out)
    [model] = listing["models"]
    assert (model["name"], model["architecture"], model["catalog_id"]) == ("gpt-oss-20b-MXFP4", "gpt-oss",
                                                                          "gpt-oss-20b")
    assert model["size_bytes"] == len(data) and model["n_ctx_train"] > 0 and model["quantization"]
    assert listing["partial_downloads"] == [] and listing["problems"] == []

    assert hearth(data_dir, "list") == 0
    assert "gpt-oss-20b-MXFP4" in capsys.readouterr().out

    assert hearth(data_dir, "verify", "gpt-oss-20b") == 0
    assert "checksum verified" in capsys.readouterr().out

    assert hearth(data_dir, "rm", "gpt-oss-20b") == 0
    assert "freed" in capsys.readouterr().out
    assert not (data_dir / "models" / GPTOSS_FILE).exists()
    assert hearth(data_dir, "rm", "gpt-oss-20b") == 2


def test_failed_download_exits_1_and_leaves_nothing(fakehub: FakeHub, data_dir: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    fakehub.add_file("org/x-GGUF", "x.gguf", make_blob(500_000)).faults.corrupt_at = 1234
    assert hearth(data_dir, "download", "org/x-GGUF", "x.gguf") == 1
    assert "corrupt" in capsys.readouterr().err
    assert list((data_dir / "models").iterdir()) == []
    assert hearth(data_dir, "download", "org/x-GGUF", "missing.gguf") == 1
    assert "missing.gguf" in capsys.readouterr().err


def test_download_resumes_an_interrupted_one(fakehub: FakeHub, data_dir: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    data = write_tiny_gptoss(tmp_path / "x.gguf").read_bytes()
    f = fakehub.add_file("org/x-GGUF", "x.gguf", data)
    f.faults.drop_at = [len(data) // 2]
    job = DownloadJob(DownloadRequest("org/x-GGUF", "x.gguf"), data_dir / "models",
                      NetworkConfig(endpoint=fakehub.url), policy=FAST)
    for ev in job.run():
        if ev.state is DownloadState.RETRYING:
            job.pause()  # as if the app was quit right after the connection dropped
    assert job.state is DownloadState.PAUSED
    assert hearth(data_dir, "download", "org/x-GGUF", "x.gguf") == 0
    assert "resuming the earlier download of x.gguf" in capsys.readouterr().err
    assert fakehub.ranges("x.gguf")[-1] == f"bytes={len(data) // 2}-"
    assert (data_dir / "models" / "x.gguf").read_bytes() == data


def test_bad_arguments_exit_2(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert hearth(data_dir, "download", "no-such-model") == 2
    assert "not a catalog id" in capsys.readouterr().err
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a model")
    assert hearth(data_dir, "import", str(junk)) == 2
    assert "junk.gguf" in capsys.readouterr().err
    assert hearth(data_dir, "verify", "nothing") == 2


def test_import_list_and_verify_failure(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = write_gguf(tmp_path / "mine.gguf")
    assert hearth(data_dir, "import", str(src), "--copy") == 0
    assert "Imported mine" in capsys.readouterr().out
    copy = data_dir / "models" / "mine.gguf"
    with open(copy, "r+b") as fh:
        fh.seek(-1, 2)
        fh.write(b"\x00" if fh.read(1) != b"\x00" else b"\x01")
    assert hearth(data_dir, "verify") == 1
    assert "FAILED" in capsys.readouterr().out


def test_offline_mode_refuses_network_commands(fakehub: FakeHub, data_dir: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    paths = resolve_paths(data_dir)
    save_settings(Settings(offline=True, hf_endpoint=fakehub.url), paths.settings_path)
    assert hearth(data_dir, "download", "gpt-oss-20b") == 1
    assert "Offline mode is on" in capsys.readouterr().err
    assert hearth(data_dir, "search", "llama") == 1
    assert hearth(data_dir, "list") == 0  # what is installed still works
    assert fakehub.requests == []


def test_search_and_files(fakehub: FakeHub, data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fakehub.add_file("bob/llama-GGUF", "llama-Q4_K_M.gguf", make_blob(1_500_000))
    assert hearth(data_dir, "search", "llama") == 0
    assert "bob/llama-GGUF" in capsys.readouterr().out
    assert hearth(data_dir, "files", "bob/llama-GGUF") == 0
    out = capsys.readouterr().out
    assert "llama-Q4_K_M.gguf" in out and "1.5 MB" in out


def test_wired_into_the_hearth_command(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from app.cli import main as hearth_main

    assert hearth_main(["--data-dir", str(data_dir), "models", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["models"] == []


def test_split_set_download_fetches_every_part(fakehub: FakeHub, data_dir: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "split"
    src.mkdir()
    write_gguf(src / "big.gguf", n_layers=3, split_max_tensors=2)
    for part in sorted(src.iterdir()):
        fakehub.add_file("org/big-GGUF", f"Q4/{part.name}", part.read_bytes())
    assert hearth(data_dir, "download", "org/big-GGUF", "Q4/big-00001-of-00002.gguf") == 0
    capsys.readouterr()
    assert sorted(p.name for p in (data_dir / "models").glob("big-*")) == [
        "big-00001-of-00002.gguf", "big-00002-of-00002.gguf"]
    assert hearth(data_dir, "list", "--json") == 0
    [model] = json.loads(capsys.readouterr().out)["models"]
    assert model["name"] == "big" and len(model["parts"]) == 2
    assert hearth(data_dir, "verify", "big") == 0
