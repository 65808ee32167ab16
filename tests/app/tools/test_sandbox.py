"""The python sandbox itself: a real Deno + Pyodide process, state, limits, scratch folder."""

from __future__ import annotations

import json
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.tools import sandbox as sandbox_mod
from app.tools.sandbox import PythonSandbox, SandboxError, find_pyodide
from tests.app.tools.sandbox_support import shared_cache, small_limits

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "packaging"))
import fetch_pyodide  # noqa: E402  (packaging/ is scripts, not a package)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_cache(tmp_path_factory)


@pytest.fixture
def sandbox(tmp_path: Path, cache: Path) -> Iterator[PythonSandbox]:
    sb = PythonSandbox(tmp_path / "scratch", limits=small_limits(), cache_dir=cache)
    yield sb
    sb.close()


def test_state_survives_between_calls_like_a_notebook(sandbox: PythonSandbox) -> None:
    assert sandbox.run("import math\nx = 6 * 7").error is None
    r = sandbox.run("print('x is', x)\nmath.sqrt(x * x)")
    assert r.error is None
    assert r.output == "x is 42\n42.0\n"  # printed text, then the last expression's repr
    assert sandbox.run("x = None\nx").output == ""  # None is not echoed, as in Jupyter
    assert r.duration_ms >= 0 and sandbox.load_ms is not None


def test_an_exception_is_the_result_and_the_session_goes_on(sandbox: PythonSandbox) -> None:
    sandbox.run("def f(n):\n    return 10 / n")
    r = sandbox.run("print('before')\nf(0)")
    assert r.output == "before\n"
    assert r.error is not None and r.error.startswith("Traceback (most recent call last):")
    assert "ZeroDivisionError: division by zero" in r.error
    assert "return 10 / n" in r.error  # earlier cells' lines are quoted, as in Jupyter
    assert "_pyodide" not in r.error  # the driver's own frames are not shown
    assert "ZeroDivisionError" in r.text()
    assert sandbox.run("f(5)").output == "2.0\n"
    r = sandbox.run("raise SystemExit(2)")
    assert "SystemExit: 2" in (r.error or "")
    assert sandbox.run("f(2)").output == "5.0\n"


def test_timeout_kills_the_session_and_says_so(sandbox: PythonSandbox) -> None:
    sandbox.run("keep = 1")
    r = sandbox.run("while True:\n    pass", timeout=1.5)
    assert r.session_lost and r.error is not None
    assert "Timed out after 1.5 seconds" in r.error and "lost" in r.error
    assert 1400 <= r.duration_ms < 6000
    r = sandbox.run("print('alive'); 'keep' in globals()")
    assert r.error is None and r.output == "alive\nFalse\n"


def test_output_is_capped_with_a_note(sandbox: PythonSandbox) -> None:
    r = sandbox.run("print('y' * 5000)")
    assert r.output.startswith("y" * 2000)
    assert "y" * 2001 not in r.output
    assert "[output truncated: 3001 more characters were cut; the limit is 2000." in r.output
    assert sandbox.run("print('small')").output == "small\n"  # the cap is per call


def test_scratch_folder_is_mnt_data_and_the_cwd(sandbox: PythonSandbox) -> None:
    sandbox.scratch.mkdir(parents=True, exist_ok=True)
    (sandbox.scratch / "attached.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    r = sandbox.run("import os\nprint(os.getcwd())\nprint(open('attached.csv').read().splitlines()[1])\n"
                    "open('/mnt/data/result.txt', 'w').write('from python')")
    assert r.error is None, r.error
    assert r.output.splitlines()[:2] == ["/mnt/data", "1,2"]
    assert (sandbox.scratch / "result.txt").read_text(encoding="utf-8") == "from python"


def test_reset_drops_variables_but_keeps_files(sandbox: PythonSandbox) -> None:
    sandbox.run("v = 3\nopen('kept.txt', 'w').write('k')")
    sandbox.reset()
    r = sandbox.run("print(open('kept.txt').read())\nv")
    assert r.output == "k\n"
    assert "NameError: name 'v' is not defined" in (r.error or "")


def test_the_deno_command_grants_only_pyodide_and_the_scratch_folder(sandbox: PythonSandbox) -> None:
    cmd = sandbox.command()
    flags = [c for c in cmd if c.startswith("--allow") or c in ("-A", "--allow-all")]
    scratch = str(sandbox.scratch.resolve())
    assert sorted(f.split("=")[0] for f in flags) == ["--allow-read", "--allow-write"]
    read = next(f for f in flags if f.startswith("--allow-read=")).split("=", 1)[1].split(",")
    assert read == [str(find_pyodide()), scratch, str(sandbox.snapshot_path().resolve())]
    assert f"--allow-write={scratch}" in flags
    assert "--no-prompt" in cmd
    maker = sandbox.command(make_snapshot=True)
    assert f"--allow-write={sandbox.cache_dir.resolve()}" in maker and scratch not in ",".join(
        f for f in maker if f.startswith("--allow"))


def test_a_damaged_snapshot_is_replaced_not_fatal(tmp_path: Path, cache: Path) -> None:
    own_cache = tmp_path / "cache"
    sb = PythonSandbox(tmp_path / "s", limits=small_limits(), cache_dir=own_cache)
    own_cache.mkdir()
    sb.snapshot_path().write_bytes(b"not a memory snapshot")
    try:
        assert sb.run("print(1 + 1)").output == "2\n"
    finally:
        sb.close()


def test_missing_pyodide_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(sandbox_mod.ENV_PYODIDE_DIR, str(tmp_path / "nowhere"))
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "prefix"))
    with pytest.raises(SandboxError, match="Pyodide .* is not installed; looked in .*nowhere.*fetch_pyodide"):
        find_pyodide()


def test_a_broken_pyodide_fails_start_with_a_sandbox_error(tmp_path: Path) -> None:
    broken = tmp_path / "pyodide"
    broken.mkdir()
    (broken / "pyodide.mjs").write_text("throw new Error('broken on purpose')", encoding="utf-8")
    (broken / "pyodide.asm.wasm").write_bytes(b"\0asm")
    sb = PythonSandbox(tmp_path / "s", pyodide_dir=broken, cache_dir=tmp_path / "c")
    with pytest.raises(SandboxError, match="failed to start"):
        sb.run("print(1)")
    assert not sb.alive


# ---- packaging/fetch_pyodide.py ----------------------------------------------------------


def test_fetch_refuses_an_archive_with_the_wrong_sha256(tmp_path: Path) -> None:
    fake = tmp_path / "pyodide.tgz"
    with tarfile.open(fake, "w:gz") as tar:
        src = tmp_path / "pyodide.mjs"
        src.write_text("x", encoding="utf-8")
        tar.add(src, arcname="package/pyodide.mjs")
    with pytest.raises(fetch_pyodide.FetchError, match="sha256 .* expected 9a52704e"):
        fetch_pyodide.fetch(tmp_path / "out", archive=fake)
    assert not (tmp_path / "out").exists()
    assert fetch_pyodide.main([str(tmp_path / "out"), "--archive", str(fake)]) == 1


def test_fetch_offline_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fetch_pyodide, "URL", "http://127.0.0.1:9/pyodide.tgz")  # nothing listens on port 9
    with pytest.raises(fetch_pyodide.FetchError, match="could not download Pyodide .* --archive"):
        fetch_pyodide.fetch(tmp_path / "out")


def test_fetch_does_nothing_when_this_version_is_there(tmp_path: Path) -> None:
    installed = find_pyodide()
    assert fetch_pyodide.is_installed(installed)
    info = json.loads((installed / fetch_pyodide.MARKER).read_text(encoding="utf-8"))
    assert info == {"version": fetch_pyodide.VERSION, "sha256": fetch_pyodide.SHA256}
    assert fetch_pyodide.fetch(installed) is False  # no download, nothing touched
