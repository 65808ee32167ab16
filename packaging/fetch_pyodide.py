"""Fetch Pyodide (CPython built for WebAssembly) from npm for Hearth's python tool sandbox.

Stdlib only, so the Makefile can run it before anything else is installed:

    python packaging/fetch_pyodide.py .venv/pyodide            # download, verify, unpack
    python packaging/fetch_pyodide.py DIR --archive pyodide.tgz  # offline: a tarball you have

The tarball's sha256 is pinned here; a mismatch stops with an error and leaves
nothing behind. Running it again when DIR already holds this version does nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

VERSION = "314.0.8"
URL = f"https://registry.npmjs.org/pyodide/-/pyodide-{VERSION}.tgz"
SHA256 = "9a52704e0ae5b07aaacb8e4fed9f1658e8024694a078695ea45ac79dee4cefcb"
MARKER = ".hearth-pyodide.json"
# What the sandbox needs from the npm package; source maps and demo pages stay out.
NEEDED = ("pyodide.mjs", "pyodide.asm.mjs", "pyodide.asm.wasm", "python_stdlib.zip", "pyodide-lock.json")
SKIPPED_SUFFIXES = (".map", ".html")


class FetchError(Exception):
    pass


def is_installed(target: Path) -> bool:
    try:
        info = json.loads((target / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return info.get("version") == VERSION and all((target / name).is_file() for name in NEEDED)


def _download(url: str, dest: Path) -> None:
    try:
        with urllib.request.urlopen(url, timeout=60) as resp, open(dest, "wb") as out:
            shutil.copyfileobj(resp, out)
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise FetchError(
            f"could not download Pyodide {VERSION} from {url} ({exc}). Hearth's python tool needs it once; "
            "connect to the internet and run this again, or pass --archive with a copy of "
            f"pyodide-{VERSION}.tgz (sha256 {SHA256})."
        ) from exc


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _unpack(archive: Path, dest: Path) -> None:
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar.getmembers():
            name = member.name
            if not name.startswith("package/") or not member.isfile():
                continue
            rel = name[len("package/"):]
            if not rel or "/" in rel or rel.startswith(".") or rel.endswith(SKIPPED_SUFFIXES):
                continue  # the package is flat; anything nested or hidden is not ours to unpack
            src = tar.extractfile(member)
            if src is None:
                continue
            with src, open(dest / rel, "wb") as out:
                shutil.copyfileobj(src, out)
    missing = [n for n in NEEDED if not (dest / n).is_file()]
    if missing:
        raise FetchError(f"the Pyodide archive lacks {', '.join(missing)}; is it really pyodide-{VERSION}.tgz?")


def fetch(target: Path, archive: Path | None = None) -> bool:
    """Put Pyodide into ``target``; False when it was already there. Raises FetchError."""
    target = target.resolve()
    if is_installed(target):
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".pyodide-", dir=target.parent) as tmp:
        tmpdir = Path(tmp)
        tgz = archive if archive is not None else tmpdir / "pyodide.tgz"
        if archive is None:
            print(f"Downloading Pyodide {VERSION} (6.5 MB) for the python tool…", file=sys.stderr)
            _download(URL, tgz)
        elif not archive.is_file():
            raise FetchError(f"no such file: {archive}")
        digest = _sha256(tgz)
        if digest != SHA256:
            raise FetchError(f"{tgz if archive else URL} has sha256 {digest}, expected {SHA256}: "
                             "refusing to use it (a damaged or different file)")
        staged = tmpdir / "pyodide"
        staged.mkdir()
        _unpack(tgz, staged)
        (staged / MARKER).write_text(json.dumps({"version": VERSION, "sha256": SHA256}) + "\n", encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        staged.rename(target)
    return True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("target", type=Path, help="folder to hold Pyodide (e.g. .venv/pyodide)")
    ap.add_argument("--archive", type=Path, help=f"use this pyodide-{VERSION}.tgz instead of downloading")
    args = ap.parse_args(argv)
    try:
        changed = fetch(args.target, args.archive)
    except FetchError as exc:
        print(f"fetch_pyodide: {exc}", file=sys.stderr)
        return 1
    if changed:
        print(f"Pyodide {VERSION} is in {args.target}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
