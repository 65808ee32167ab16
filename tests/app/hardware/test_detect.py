"""Hardware detection on this machine, failing probes, the JSON schema and the built-in profiles."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app.hardware import (
    PROFILE_NAMES,
    HardwareInfo,
    apple_working_set_estimate,
    builtin_profile,
    detect_hardware,
)
from app.hardware import backend_probe, detect
from app.hardware.backend_probe import probe_backends, simd_from_system_info

GIB = 1024**3


@pytest.fixture(scope="module")
def hw() -> HardwareInfo:
    return detect_hardware()


def test_detects_this_machine(hw: HardwareInfo, tmp_path: Path) -> None:
    assert hw.os and hw.arch in ("x86_64", "arm64")
    assert hw.ram_total and hw.ram_total > 1 * GIB
    assert hw.ram_available and 0 < hw.ram_available <= hw.ram_total
    assert hw.cpu_logical_cores and hw.cpu_logical_cores >= 1
    assert hw.threads >= 1
    assert hw.memory_bandwidth_gbps and hw.memory_bandwidth_gbps > 0 and hw.bandwidth_note
    if hw.arch == "x86_64" and sys.platform.startswith("linux"):
        assert "AVX" in hw.simd or not hw.simd and "simd" in hw.unknown


def test_llama_cpp_backends_are_probed_in_a_child(hw: HardwareInfo) -> None:
    assert hw.backend.probed, hw.backend.reason
    assert hw.backend.llama_cpp_version == "0.3.36"
    assert any(d.type == "cpu" for d in hw.backend.devices)
    if not hw.backend.gpu_offload:
        assert hw.gpu_offload is False
    assert "AVX2" in simd_from_system_info(hw.backend.system_info) or hw.arch != "x86_64" \
        or "AVX2" not in hw.simd


def test_detection_never_loads_llama_cpp_in_the_calling_process() -> None:
    # The GUI calls detect_hardware(); llama.cpp may only live in the engine worker.
    code = ("import sys; from app.hardware import detect_hardware; hw = detect_hardware(); "
            "print(hw.backend.probed, 'llama_cpp' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parents[3], check=True).stdout.split()
    assert out == ["True", "False"]


def test_gpu_probe_reports_a_gpu_or_why_not(hw: HardwareInfo) -> None:
    if any(g.vendor == "nvidia" for g in hw.gpus):
        g = next(g for g in hw.gpus if g.vendor == "nvidia")
        assert g.vram_total and g.driver and g.compute_capability
    elif sys.platform != "darwin":
        # No NVIDIA driver here (a container, a CPU machine): a reason, not a crash.
        assert "nvidia" in hw.unknown and "NVIDIA" in hw.unknown["nvidia"]


def test_free_disk_of_a_models_folder_not_yet_created(tmp_path: Path) -> None:
    hw = detect_hardware(tmp_path / "models" / "not-yet", probe_llama=False)
    assert hw.models_dir == str(tmp_path / "models" / "not-yet")
    assert hw.disk_free is not None
    assert abs(hw.disk_free - shutil.disk_usage(tmp_path).free) < 512 * 1024**2


def test_a_failing_probe_gives_unknown_with_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    # A container without /proc/cpuinfo: the CPU name and flags are unknown, detection goes on.
    def no_proc() -> str:
        raise FileNotFoundError(2, "No such file or directory", "/proc/cpuinfo")

    monkeypatch.setattr(detect, "_cpuinfo", no_proc)
    monkeypatch.setattr(sys, "platform", "linux")
    hw = detect_hardware(probe_llama=False)
    assert hw.cpu_model is None
    assert "/proc/cpuinfo" in hw.unknown["cpu_model"]
    assert hw.ram_total  # the other probes still ran
    assert hw.backend.reason == "not probed"


def test_backend_probe_without_llama_cpp_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    system_python = shutil.which("python3", path="/usr/bin:/bin")
    if system_python is None or system_python == sys.executable:
        pytest.skip("no second Python without llama-cpp-python on this machine")
    monkeypatch.setattr(backend_probe.sys, "executable", system_python)
    info = probe_backends(refresh=True)
    try:
        assert not info.probed
        assert info.reason and "llama" in info.reason
    finally:
        monkeypatch.undo()
        probe_backends(refresh=True)


def test_json_round_trip(hw: HardwareInfo, tmp_path: Path) -> None:
    text = hw.dumps()
    again = HardwareInfo.from_json(json.loads(text))
    assert again == hw
    f = tmp_path / "hw.json"
    f.write_text(text)
    loaded = HardwareInfo.load(f)
    assert loaded.ram_total == hw.ram_total and loaded.source == f"file:{f}"


@pytest.mark.parametrize("bad, message", [
    ({"ram_total": "lots"}, "ram_total"),
    ({"gpus": [{"name": "x", "vendor": "nvidia", "vram_total": -1}]}, "vram_total"),
    ({"schema_version": 99}, "newer"),
    ({"gpus": {"name": "x"}}, "gpus"),
    ([1, 2], "object"),
    ({"gpus": [{"vendor": "nvidia"}]}, "incomplete GPUInfo"),
])
def test_bad_hardware_json_is_a_clear_error(bad: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        HardwareInfo.from_json(bad)  # type: ignore[arg-type]


def test_unreadable_profile_file(tmp_path: Path) -> None:
    f = tmp_path / "hw.json"
    f.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        HardwareInfo.load(f)
    with pytest.raises(ValueError, match="cannot read"):
        HardwareInfo.load(tmp_path / "missing.json")


def test_builtin_profiles() -> None:
    assert set(PROFILE_NAMES) == {"apple-m-16gb", "nvidia-8gb-ram-16gb", "cpu-16gb", "cpu-8gb"}
    for name in PROFILE_NAMES:
        p = builtin_profile(name)
        assert p.source == f"profile:{name}" and p.description
        assert HardwareInfo.from_json(p.to_json()) == p
    apple = builtin_profile("apple-m-16gb")
    assert apple.is_apple_silicon and apple.gpu_offload
    assert apple.primary_gpu is not None and apple.primary_gpu.unified_memory
    nvidia = builtin_profile("nvidia-8gb-ram-16gb")
    assert nvidia.primary_gpu is not None and nvidia.primary_gpu.vram_total == 8 * GIB
    assert not builtin_profile("cpu-8gb").gpu_offload
    with pytest.raises(KeyError, match="cpu-16gb"):
        builtin_profile("gpu-9000")


def test_apple_working_set_estimate_matches_metal() -> None:
    # llama.cpp's Metal log on a 16 GB Mac: recommendedMaxWorkingSetSize = 10922.67 MB
    assert abs(apple_working_set_estimate(16 * GIB) / 1024**2 - 10922.67) < 0.5
    assert apple_working_set_estimate(64 * GIB) == 48 * GIB
