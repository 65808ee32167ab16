"""Build llama.cpp libraries that run on any machine of the target platform, for the bundles.

The development venv's llama-cpp-python is compiled with ``-march=native``: it
may use instructions (AVX-512, say) that the person receiving a bundle does not
have, and die with "illegal instruction". For a redistributable build this
script compiles the same llama-cpp-python release with ``GGML_NATIVE=OFF``:

* x86-64 (Linux, Windows): ``GGML_BACKEND_DL`` + ``GGML_CPU_ALL_VARIANTS``:
  one CPU backend per instruction-set level (SSE4.2 ... AVX-512, AMX), and
  ggml picks the best one the running CPU supports when it starts.
* macOS arm64: Metal, with the CPU code at the Apple M1 baseline that every
  Apple Silicon Mac has.

It runs ``pip wheel`` on the llama-cpp-python sdist and unpacks the libraries
into OUT/lib (what ``llama_cpp`` loads) and OUT/backends (the CPU variants,
which ggml looks for next to the executable), then writes OUT/manifest.json,
which ``packaging/hearth.spec`` reads. Usage::

    python packaging/portable_llama.py --out build/portable-llama [--sdist FILE]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path, PurePosixPath

log = logging.getLogger(__name__)

LLAMA_VERSION = "0.3.36"
MANIFEST = "manifest.json"
# ggml's loadable backends: libggml-cpu-haswell.so, ggml-cpu-x64.dll, libggml-cuda.so...
BACKEND_MODULE = re.compile(r"^(lib)?ggml-(cpu|cuda|hip|metal|vulkan|blas|rpc|sycl|opencl|musa|cann)\b")
BUILD_INFO = "build-info.json"  # next to the kept wheel: the CMake arguments it was built with

# LLAVA_BUILD=OFF: Hearth never loads the multimodal library, and it costs
# minutes of compile time. GGML_NATIVE=OFF on every platform: no -march=native.
COMMON_ARGS = ("-DGGML_NATIVE=OFF", "-DLLAVA_BUILD=OFF")
DISPATCH_ARGS = ("-DGGML_BACKEND_DL=ON", "-DGGML_CPU_ALL_VARIANTS=ON")
METAL_ARGS = ("-DGGML_METAL=ON", "-DGGML_METAL_EMBED_LIBRARY=ON")


def default_cmake_args(system: str | None = None, machine: str | None = None) -> list[str]:
    """The portable CMake arguments for this (or the given) platform."""
    system = system or platform.system()
    machine = (machine or platform.machine()).lower()
    if system == "Darwin":
        return [*COMMON_ARGS, *METAL_ARGS]
    if machine in ("x86_64", "amd64"):
        return [*COMMON_ARGS, *DISPATCH_ARGS]
    # Other CPUs (Linux arm64): ggml's ALL_VARIANTS list for ARM needs a newer
    # compiler than some distributions have; a plain non-native build is safe.
    return list(COMMON_ARGS)


def _lib_suffixes() -> tuple[str, ...]:
    if sys.platform == "win32":
        return (".dll",)
    if sys.platform == "darwin":
        return (".dylib", ".so")
    return (".so",)


def _is_library(name: str) -> bool:
    """True for libfoo.so, libfoo.so.0, libfoo.so.0.25.3, foo.dll, libfoo.dylib."""
    return any(name.endswith(s) or f"{s}." in name for s in _lib_suffixes())


def _canonical_name(name: str) -> str:
    """The name ``llama_cpp``/ggml open a library by: libfoo.so.0.25.3 -> libfoo.so."""
    for suffix in _lib_suffixes():
        if f"{suffix}." in name:
            return name.split(f"{suffix}.", 1)[0] + suffix
    return name


def build_wheel(source: str, wheel_dir: Path, cmake_args: list[str], python: str) -> Path:
    """Compile llama-cpp-python into a wheel in ``wheel_dir``; returns the wheel's path."""
    wheel_dir.mkdir(parents=True, exist_ok=True)
    for old in wheel_dir.glob("llama_cpp_python-*.whl"):
        old.unlink()
    env = dict(os.environ)
    env["CMAKE_ARGS"] = " ".join(cmake_args)
    env.setdefault("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 2))
    cmd = [python, "-m", "pip", "wheel", "--no-cache-dir", "--no-deps",
           "--no-binary", "llama-cpp-python", "-w", str(wheel_dir), source]
    log.info("CMAKE_ARGS=%s", env["CMAKE_ARGS"])
    log.info("running %s", shlex.join(cmd))
    subprocess.run(cmd, env=env, check=True)
    wheels = sorted(wheel_dir.glob("llama_cpp_python-*.whl"))
    if len(wheels) != 1:
        raise SystemExit(f"expected one llama_cpp_python wheel in {wheel_dir}, found {wheels}")
    return wheels[0]


def unpack_libraries(wheel: Path, out: Path) -> tuple[list[str], list[str]]:
    """Unpack the wheel's libraries: llama_cpp/lib/* to out/lib, the backend modules to out/backends.

    A wheel cannot hold symlinks, so libfoo.so, libfoo.so.0 and libfoo.so.0.25.3
    arrive as three copies; only the name each one is opened by is kept:
    ``llama_cpp`` opens libllama.so by path, libllama.so needs libggml.so.0 and
    libggml-base.so.0 (its DT_NEEDED sonames, found through its $ORIGIN runpath).
    """
    lib_dir, backend_dir = out / "lib", out / "backends"
    for d in (lib_dir, backend_dir):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
    libs: list[str] = []
    backends: list[str] = []
    with zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            path = PurePosixPath(info.filename)
            if info.is_dir() or not _is_library(path.name):
                continue
            if path.parent == PurePosixPath("llama_cpp/lib"):
                dest, bucket = lib_dir, libs
            elif path.parent.name == "bin" and BACKEND_MODULE.match(path.name):
                # ggml's backend modules (GGML_BACKEND_DL) install to <prefix>/bin;
                # on Windows the core DLLs land there too, but those are in llama_cpp/lib.
                dest, bucket = backend_dir, backends
            else:
                continue
            with zf.open(info) as src, open(dest / path.name, "wb") as dst:
                shutil.copyfileobj(src, dst)
            bucket.append(path.name)
    return sorted(libs), sorted(backends)


def _needed_names(lib_dir: Path) -> set[str]:
    """Sonames the libraries in ``lib_dir`` ask for (Linux; elsewhere every name is kept)."""
    if not sys.platform.startswith("linux") or shutil.which("readelf") is None:
        return set()
    needed: set[str] = set()
    for f in lib_dir.iterdir():
        res = subprocess.run(["readelf", "-d", str(f)], capture_output=True, text=True, check=False)
        for line in res.stdout.splitlines():
            if "(NEEDED)" in line and "[" in line:
                needed.add(line.split("[", 1)[1].split("]", 1)[0])
    return needed


def prune_duplicates(lib_dir: Path) -> tuple[list[str], dict[str, str]]:
    """Keep each library once, under the name the loader opens it by.

    Returns the files kept and the links to make: the plain name (libggml.so,
    which tools open by path, Hearth's backend probe among them) becomes a
    symlink to the soname file (libggml.so.0, what libllama.so links to), so both
    names load the one library and ggml keeps one backend registry.
    """
    if not sys.platform.startswith("linux"):
        return sorted(p.name for p in lib_dir.iterdir()), {}
    needed = _needed_names(lib_dir)
    groups: dict[str, list[Path]] = {}
    for f in lib_dir.iterdir():
        groups.setdefault(_canonical_name(f.name), []).append(f)
    links: dict[str, str] = {}
    for canonical, files in groups.items():
        # libllama.so is opened by path from Python; the ggml libraries by soname.
        keep = sorted(f.name for f in files if f.name in needed) or [canonical]
        for f in files:
            if f.name not in keep:
                f.unlink()
        if canonical not in keep:
            (lib_dir / canonical).symlink_to(keep[0])
            links[canonical] = keep[0]
    return sorted(p.name for p in lib_dir.iterdir() if not p.is_symlink()), links


def _reusable_wheel(wheel_dir: Path, cmake_args: list[str]) -> tuple[Path | None, float]:
    """A wheel kept by an earlier run with the same CMake arguments (the compile takes long)."""
    try:
        info = json.loads((wheel_dir / BUILD_INFO).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None, 0.0
    wheel = wheel_dir / str(info.get("wheel", ""))
    if info.get("cmake_args") != cmake_args or not wheel.is_file() or wheel.suffix != ".whl":
        return None, 0.0
    return wheel, float(info.get("build_seconds", 0.0))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="output folder (lib/, backends/, manifest.json)")
    ap.add_argument("--sdist", help="llama-cpp-python sdist to build (default: download from the package index)")
    ap.add_argument("--version", default=LLAMA_VERSION, help="llama-cpp-python version when downloading")
    ap.add_argument("--python", default=sys.executable, help="the Python whose pip builds the wheel")
    ns = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="portable_llama: %(message)s")

    extra = os.environ.get("HEARTH_LLAMA_CMAKE_ARGS")
    cmake_args = shlex.split(extra) if extra else default_cmake_args()
    if "-DGGML_NATIVE=OFF" not in cmake_args:
        raise SystemExit("a redistributable llama.cpp build needs -DGGML_NATIVE=OFF in its CMake arguments")
    source = ns.sdist if ns.sdist and Path(ns.sdist).is_file() else f"llama-cpp-python=={ns.version}"

    out: Path = ns.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST).unlink(missing_ok=True)  # a failed build must not look finished
    wheel_dir = out / "wheel"
    kept_wheel, build_s = _reusable_wheel(wheel_dir, cmake_args)
    if kept_wheel is None:
        t0 = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="hearth-wheel-") as tmp:
            wheel = build_wheel(source, Path(tmp), cmake_args, ns.python)
            build_s = time.monotonic() - t0
            shutil.rmtree(wheel_dir, ignore_errors=True)
            wheel_dir.mkdir()
            kept_wheel = wheel_dir / wheel.name
            shutil.copy2(wheel, kept_wheel)
        (wheel_dir / BUILD_INFO).write_text(json.dumps(
            {"wheel": kept_wheel.name, "cmake_args": cmake_args, "build_seconds": round(build_s, 1)}, indent=2),
            encoding="utf-8")
    else:
        log.info("reusing %s (built with the same CMake arguments)", kept_wheel)
    libs, backends = unpack_libraries(kept_wheel, out)
    libs, links = prune_duplicates(out / "lib")
    if not libs:
        raise SystemExit(f"{kept_wheel.name} holds no llama_cpp/lib libraries")
    if "-DGGML_BACKEND_DL=ON" in cmake_args and not backends:
        raise SystemExit(f"{kept_wheel.name} holds no ggml backend modules although GGML_BACKEND_DL is on")
    manifest = {
        "llama_cpp_python": kept_wheel.name.split("-")[1],
        "wheel": kept_wheel.name,
        "cmake_args": cmake_args,
        "platform": f"{platform.system()}-{platform.machine()}",
        "libs": libs,
        "links": links,
        "backends": backends,
        "build_seconds": round(build_s, 1),
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    log.info("%d libraries, %d backend modules in %s (compiled in %.0f s)", len(libs), len(backends), out, build_s)
    return 0


if __name__ == "__main__":
    sys.exit(main())
