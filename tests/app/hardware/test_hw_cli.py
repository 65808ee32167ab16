"""``hearth hw`` and ``hearth plan`` handlers: output, profiles, files, catalog ids, bad input."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from app.hardware import HardwareInfo
from app.hardware.cli import add_hw_parser, add_plan_parser, resolve_model, run_hw, run_plan
from app.paths import AppPaths, resolve_paths

GPTOSS_ENTRY = {
    "id": "gpt-oss-20b", "repo_id": "ggml-org/gpt-oss-20b-GGUF", "filename": "gpt-oss-20b-MXFP4.gguf",
    "size_bytes": 12_109_566_624, "license": "apache-2.0", "architecture": "gpt-oss", "n_layers": 24,
    "n_embd": 2880, "n_head": 64, "n_head_kv": 8, "head_dim": 64, "n_expert": 32, "n_expert_used": 4,
    "n_ctx_train": 131072, "sliding_window": 128, "expert_bytes": 10_178_887_680, "quantization": "MXFP4",
}


@pytest.fixture
def paths(tmp_path: Path) -> AppPaths:
    return resolve_paths(tmp_path / "data").ensure()


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="hearth")
    sub = parser.add_subparsers(dest="command")
    add_hw_parser(sub)
    add_plan_parser(sub)
    return parser.parse_args(argv)


def test_hw_json_is_the_schema_plan_reads(paths: AppPaths, capsys: pytest.CaptureFixture[str],
                                          tmp_path: Path) -> None:
    assert run_hw(_parse(["hw", "--json"]), paths) == 0
    out = capsys.readouterr().out
    hw = HardwareInfo.from_json(json.loads(out))
    assert hw.ram_total and hw.models_dir == str(paths.default_models_dir) and hw.disk_free
    f = tmp_path / "mine.json"
    f.write_text(out)
    assert run_plan(_parse(["plan", "x.gguf", "--hardware", str(f)]), paths) == 2  # x.gguf missing
    assert "x.gguf does not exist" in capsys.readouterr().err


def test_hw_text(paths: AppPaths, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_hw(_parse(["hw"]), paths) == 0
    out = capsys.readouterr().out
    assert "RAM:" in out and "CPU:" in out and "llama.cpp:" in out


def test_plan_a_file_on_a_profile(gemma_path: Path, paths: AppPaths, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_plan(_parse(["plan", str(gemma_path), "--hardware", "cpu-8gb", "--ctx", "4096", "--json"]), paths) == 0
    plan = json.loads(capsys.readouterr().out)
    for key in ("verdict", "ram_bytes", "vram_bytes", "n_ctx", "n_gpu_layers", "cpu_expert_layers",
                "est_tok_per_s", "explanation"):
        assert key in plan
    assert plan["verdict"] == "fits" and plan["n_ctx"] == 4096 and plan["n_gpu_layers"] == 0
    assert plan["hardware"] == "profile:cpu-8gb"
    assert run_plan(_parse(["plan", str(gemma_path), "--hardware", "cpu-8gb"]), paths) == 0
    text = capsys.readouterr().out
    assert text.startswith("Gemma 3 270m on profile:cpu-8gb: fits") and "Runs on the CPU" in text


def test_bad_input_exits_2_with_a_reason(gemma_path: Path, paths: AppPaths,
                                         capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert run_plan(_parse(["plan", str(gemma_path), "--hardware", "gpu-9000"]), paths) == 2
    assert "unknown hardware profile 'gpu-9000'" in capsys.readouterr().err
    assert run_plan(_parse(["plan", "no-such-model-id", "--hardware", "cpu-8gb"]), paths) == 2
    assert "no-such-model-id" in capsys.readouterr().err
    assert run_plan(_parse(["plan", str(gemma_path), "--ctx", "0"]), paths) == 2
    assert "--ctx" in capsys.readouterr().err
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"hello")
    assert run_plan(_parse(["plan", str(junk), "--hardware", "cpu-8gb"]), paths) == 2
    assert "junk.gguf" in capsys.readouterr().err


def test_catalog_id_plans_from_catalog_numbers(paths: AppPaths, tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.json"
    catalog.write_text(json.dumps({"models": [GPTOSS_ENTRY]}))
    spec = resolve_model("gpt-oss-20b", paths, catalog)
    assert spec.source == "catalog" and spec.catalog_id == "gpt-oss-20b"
    assert spec.is_moe and spec.n_full_layers == 12
    with pytest.raises(ValueError, match="catalog ids: gpt-oss-20b"):
        resolve_model("llama-9b", paths, catalog)
    with pytest.raises(ValueError, match="no model catalog"):
        resolve_model("gpt-oss-20b", paths, tmp_path / "missing.json")


def test_catalog_id_uses_the_downloaded_file(gptoss_mxfp4_path: Path, paths: AppPaths, tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.json"
    catalog.write_text(json.dumps({"models": [dict(GPTOSS_ENTRY, filename="tiny.gguf")]}))
    paths.default_models_dir.mkdir(parents=True, exist_ok=True)
    (paths.default_models_dir / "tiny.gguf").write_bytes(gptoss_mxfp4_path.read_bytes())
    spec = resolve_model("gpt-oss-20b", paths, catalog)
    assert spec.source == "gguf" and spec.n_layers == 2
