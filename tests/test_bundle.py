"""The installable bundle (PyInstaller): it starts headless, chats with gpt-oss and exits cleanly.

The first run builds the bundle with ``make bundle`` when dist/ has none or it
is older than the sources (the portable llama.cpp build is made once and kept
in build/portable-llama). ``HEARTH_BUNDLE_PREBUILT=1`` uses dist/ as it is
(the bundles workflow builds first, also on Windows and macOS, without make).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from app import __version__

ROOT = Path(__file__).resolve().parent.parent
DIST = ROOT / "dist"
PORTABLE_LLAMA = ROOT / "build" / "portable-llama"
BUILD_TIMEOUT_S = 3 * 3600  # the first build compiles llama.cpp's CPU backend for every CPU level
IS_WIN = sys.platform == "win32"
IS_MAC = sys.platform == "darwin"
LIB_SUFFIX = ".dll" if IS_WIN else (".dylib" if IS_MAC else ".so")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(BUILD_TIMEOUT_S + 600)]


@dataclass(frozen=True)
class Bundle:
    app_dir: Path  # dist/hearth: the one-folder app
    exe: Path  # the executable people run (inside Hearth.app on macOS)
    contents: Path  # where PyInstaller put the libraries and assets

    @property
    def backends(self) -> list[Path]:
        """ggml's CPU-variant modules, found by ggml next to the executable."""
        return sorted(self.exe.parent.glob(f"*ggml-cpu-*{LIB_SUFFIX}"))


def _sources() -> Iterator[Path]:
    for package in ("app", "ui"):
        yield from (ROOT / package).rglob("*.py")
        yield from (ROOT / package).rglob("*.mjs")
    yield from (p for p in (ROOT / "assets").rglob("*") if p.is_file())
    for name in ("hearth.spec", "hearth_main.py"):
        yield ROOT / "packaging" / name
    yield ROOT / "pyproject.toml"
    yield PORTABLE_LLAMA / "manifest.json"


def _is_stale(exe: Path) -> bool:
    if not exe.exists():
        return True
    built = exe.stat().st_mtime
    return any(p.exists() and p.stat().st_mtime > built for p in _sources())


def _build(log_dir: Path) -> None:
    if shutil.which("make") is None:
        pytest.fail("the bundle is missing or stale and `make` is not installed to build it "
                    "(build it with packaging/hearth.spec, then set HEARTH_BUNDLE_PREBUILT=1)")
    log = log_dir / "make-bundle.log"
    with open(log, "wb") as out:
        proc = subprocess.run(["make", "bundle"], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                              timeout=BUILD_TIMEOUT_S, check=False)
    if proc.returncode != 0:
        tail = log.read_text(encoding="utf-8", errors="replace")[-4000:]
        pytest.fail(f"make bundle failed (exit {proc.returncode}); end of {log}:\n{tail}")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    app_dir = DIST / "hearth"
    exe = app_dir / ("hearth.exe" if IS_WIN else "hearth")
    if not os.environ.get("HEARTH_BUNDLE_PREBUILT") and _is_stale(exe):
        _build(tmp_path_factory.mktemp("bundle-build"))
    if IS_MAC and (DIST / "Hearth.app").is_dir():
        mac_exe = DIST / "Hearth.app" / "Contents" / "MacOS" / "hearth"
        return Bundle(app_dir=DIST / "Hearth.app", exe=mac_exe, contents=DIST / "Hearth.app" / "Contents")
    assert exe.is_file(), f"no bundled executable at {exe}"
    return Bundle(app_dir=app_dir, exe=exe, contents=app_dir / "_internal")


def _bundle_processes(bundle: Bundle) -> list[psutil.Process]:
    """Running processes started from the bundle (the app, its engine worker, helpers)."""
    found = []
    root = str(bundle.app_dir.resolve())
    for proc in psutil.process_iter(["exe"]):
        exe = proc.info.get("exe") or ""
        if exe.startswith(root):
            found.append(proc)
    return found


def _run(bundle: Bundle, args: Sequence[str], cwd: Path, *, env: dict[str, str] | None = None,
         timeout: float = 180.0) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run the bundled executable; returns the result and its wall time. Kills its whole group on timeout."""
    full_env = {**os.environ, **(env or {})}
    t0 = time.perf_counter()
    kwargs: dict[str, Any] = {"start_new_session": True} if not IS_WIN else {}
    proc = subprocess.Popen([str(bundle.exe), *args], cwd=cwd, env=full_env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, encoding="utf-8", errors="replace", **kwargs)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        if IS_WIN:
            subprocess.run(["taskkill", "/F", "/T", "/PID", str(proc.pid)], capture_output=True, check=False)
        else:
            os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"{bundle.exe.name} {' '.join(args)} did not finish in {timeout:.0f} s:\n{err[-3000:]}")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err), time.perf_counter() - t0


def _assert_nothing_left_running(bundle: Bundle) -> None:
    deadline = time.monotonic() + 10
    while (left := _bundle_processes(bundle)) and time.monotonic() < deadline:
        time.sleep(0.1)
    for proc in left:
        proc.kill()
    assert not left, f"the bundle left processes running: {[p.cmdline() for p in left]}"


def test_version_starts_fast_and_matches_the_source(bundle: Bundle, tmp_path: Path) -> None:
    r, wall = _run(bundle, ["--version"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"hearth {__version__}"
    assert wall < 30, f"--version took {wall:.1f} s"


def test_chat_with_gptoss_answers_headless_and_exits_cleanly(bundle: Bundle, tmp_path: Path,
                                                             gptoss_mxfp4_path: Path) -> None:
    data = tmp_path / "data"
    r, _wall = _run(bundle, ["chat", "--model", str(gptoss_mxfp4_path), "--max-tokens", "8", "--json", "hello"],
                    tmp_path, env={"HEARTH_DATA_DIR": str(data)})
    assert r.returncode == 0, r.stderr[-3000:]
    lines = [ln for ln in r.stdout.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stdout
    rec = json.loads(lines[0])
    assert rec["architecture"] == "gpt-oss"
    assert 0 < rec["tokens"] <= 8
    assert rec["prompt_tokens"] > 0
    assert rec["worker_rss_bytes"], "the engine ran in its own (bundled) worker process"
    assert (data / "hearth.sqlite3").is_file(), "the conversation was saved in the data dir"
    _assert_nothing_left_running(bundle)


def test_the_python_tool_runs_sandboxed_from_the_bundle(bundle: Bundle, tmp_path: Path) -> None:
    # Deno and Pyodide ship in the bundle: the tool works with nothing else installed.
    r, _wall = _run(bundle, ["tools", "run", "python", "--code", "x = 6 * 7", "--code", "print(x)", "--json"],
                    tmp_path, env={"HEARTH_DATA_DIR": str(tmp_path / "data"), "HEARTH_PYODIDE_DIR": ""},
                    timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    calls = [json.loads(ln) for ln in r.stdout.splitlines() if ln.strip()]
    assert [c["error"] for c in calls] == [None, None] and calls[1]["output"].strip() == "42", calls
    _assert_nothing_left_running(bundle)


def test_the_bundled_llama_cpp_is_portable(bundle: Bundle) -> None:
    """No -march=native: the CPU code comes as variants that ggml picks from at run time."""
    lib_dir = bundle.contents / ("Frameworks" if IS_MAC else "") / "llama_cpp" / "lib"
    if IS_MAC:
        return  # Metal build: one CPU baseline (Apple M1), checked by the build's manifest
    assert lib_dir.is_dir(), f"no llama_cpp/lib in {bundle.contents}"
    assert not list(lib_dir.glob(f"*ggml-cpu{LIB_SUFFIX}*")), "a single (native) CPU backend was bundled"
    names = {p.name for p in bundle.backends}
    variant = "{}ggml-cpu-{}" + LIB_SUFFIX
    prefix = "" if IS_WIN else "lib"
    for tag in ("x64", "sse42", "haswell", "skylakex"):
        assert variant.format(prefix, tag) in names, f"CPU variant {tag} missing from {sorted(names)}"
    objdump = shutil.which("objdump")
    if objdump and not IS_WIN:
        # The baseline variant and the core libraries must run on any x86-64 CPU:
        # no AVX (ymm) or AVX-512 (zmm) registers anywhere in their code.
        for lib in [bundle.exe.parent / variant.format(prefix, "x64"), *lib_dir.glob(f"lib*{LIB_SUFFIX}*")]:
            asm = subprocess.run([objdump, "-d", str(lib)], capture_output=True, text=True, check=True).stdout
            assert "%ymm" not in asm and "%zmm" not in asm, f"{lib.name} needs AVX; it would crash older CPUs"


def test_hardware_probe_finds_the_best_cpu_variant(bundle: Bundle, tmp_path: Path) -> None:
    """`hearth hw` runs the llama.cpp probe through the bundled executable itself."""
    r, _wall = _run(bundle, ["hw", "--json"], tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    hw = json.loads(r.stdout)
    backend = hw["backend"]
    assert backend["probed"], backend
    assert backend["llama_cpp_version"] == "0.3.36"
    assert any(d["type"] == "cpu" for d in backend["devices"]), backend
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists() and re.search(r"^flags\s*:.*\bavx2\b", cpuinfo.read_text(), re.MULTILINE):
        # This CPU has AVX2, so ggml must have picked a variant that uses it.
        assert "AVX2 = 1" in backend["system_info"], backend["system_info"]


@pytest.mark.skipif(IS_MAC or IS_WIN, reason="the app folder is rebuilt with symlinks (Linux layout)")
def test_oldest_cpus_get_the_baseline_variant_and_still_chat(bundle: Bundle, tmp_path: Path,
                                                              gptoss_mxfp4_path: Path) -> None:
    """With only the plain x86-64 variant present (what a CPU without AVX gets), a chat still works."""
    app = tmp_path / "app"
    app.mkdir()
    shutil.copy2(bundle.exe, app / bundle.exe.name)  # ggml looks next to the real executable
    (app / bundle.contents.name).symlink_to(bundle.contents, target_is_directory=True)
    shutil.copy2(bundle.exe.parent / "libggml-cpu-x64.so", app / "libggml-cpu-x64.so")
    baseline = Bundle(app_dir=app, exe=app / bundle.exe.name, contents=app / bundle.contents.name)
    r, _wall = _run(baseline, ["hw", "--json"], tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    info = json.loads(r.stdout)["backend"]["system_info"]
    assert "AVX" not in info, f"the baseline variant uses AVX: {info}"
    r, _wall = _run(baseline, ["chat", "--model", str(gptoss_mxfp4_path), "--max-tokens", "4", "--json", "hi"],
                    tmp_path, env={"HEARTH_DATA_DIR": str(tmp_path / "data")})
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads(r.stdout.strip().splitlines()[-1])["tokens"] > 0
    _assert_nothing_left_running(baseline)


def test_catalog_and_icon_ship_in_the_bundle(bundle: Bundle, tmp_path: Path) -> None:
    r, _wall = _run(bundle, ["models", "catalog", "--json"], tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert any(m["id"] == "gpt-oss-20b" for m in json.loads(r.stdout))
    assets = next(p for p in (bundle.contents / "assets", bundle.contents / "Resources" / "assets") if p.exists())
    assert (assets / "hearth.png").is_file()


def test_gui_starts_offscreen_and_quits(bundle: Bundle, tmp_path: Path) -> None:
    r, wall = _run(bundle, [], tmp_path, env={"HEARTH_EXIT_AFTER_SHOW": "1", "QT_QPA_PLATFORM": "offscreen",
                                              "HEARTH_DATA_DIR": str(tmp_path / "data")})
    assert r.returncode == 0, r.stderr[-3000:]
    m = re.search(r"HEARTH_SHOWN ms=([\d.]+) rss=(\d+)", r.stdout)
    assert m, f"the window was never shown:\n{r.stdout}\n{r.stderr[-3000:]}"
    assert float(m.group(1)) < 30_000
    assert wall < 60, f"the GUI took {wall:.1f} s to show and quit"
    _assert_nothing_left_running(bundle)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the tarball is the Linux download")
def test_linux_tarball_installs_a_menu_entry_and_command(bundle: Bundle, tmp_path: Path) -> None:
    tarballs = sorted(DIST.glob("hearth-linux-*.tar.gz"))
    assert tarballs, "make bundle writes dist/hearth-linux-<arch>.tar.gz"
    safe: dict[str, Any] = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}  # Python >= 3.10.12
    with tarfile.open(tarballs[-1]) as tf:
        tf.extractall(tmp_path / "unpacked", **safe)
    (top,) = (tmp_path / "unpacked").iterdir()
    assert {"hearth", "hearth.desktop", "hearth.png", "install.sh", "README.txt"} <= {p.name for p in top.iterdir()}
    home = tmp_path / "home"
    env = {**os.environ, "HOME": str(home), "XDG_DATA_HOME": str(home / "share"), "PATH": "/usr/bin:/bin"}
    r = subprocess.run([str(top / "install.sh")], env=env, capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 0, r.stderr
    assert f"Hearth {__version__} is installed" in r.stdout
    desktop = (home / "share" / "applications" / "hearth.desktop").read_text(encoding="utf-8")
    exec_line = next(ln for ln in desktop.splitlines() if ln.startswith("Exec="))
    installed = Path(exec_line.removeprefix("Exec="))
    assert installed.is_file() and os.access(installed, os.X_OK)
    assert (home / "share" / "icons" / "hicolor" / "256x256" / "apps" / "hearth.png").is_file()
    command = home / ".local" / "bin" / "hearth"
    v = subprocess.run([str(command), "--version"], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert v.stdout.strip() == f"hearth {__version__}", v.stderr
    r = subprocess.run([str(top / "install.sh"), "--uninstall"], env=env, capture_output=True, text=True,
                       timeout=60, check=False)
    assert r.returncode == 0, r.stderr
    assert not installed.exists() and not command.exists()
    assert not (home / "share" / "applications" / "hearth.desktop").exists()
