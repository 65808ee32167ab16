"""The official gpt-oss chat template, found on this machine, rendered as llama-cpp-python does.

The template is never copied into the project: it is looked up in the unpacked
llama-cpp-python sdist, the installed package, a downloaded sdist tarball (the
build's ``.dev/`` folder) or pip's cache; tests skip when it is nowhere to be found.
"""

from __future__ import annotations

import datetime as _dt
import importlib.util
import json
import os
import sys
import tarfile
from pathlib import Path
from typing import Any, Callable

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

TEMPLATE_NAME = "openai-gpt-oss-120b.jinja"
_MEMBER_SUFFIX = "vendor/llama.cpp/models/templates/" + TEMPLATE_NAME
LLAMA_SRC = Path("/tmp/llama-src")  # where this project's build unpacks the sdist
SDIST_DIR = LLAMA_SRC / "llama_cpp_python-0.3.36"
ROOT = Path(__file__).resolve().parents[3]


def _pip_cache_dirs() -> list[Path]:
    dirs = []
    if os.environ.get("PIP_CACHE_DIR"):
        dirs.append(Path(os.environ["PIP_CACHE_DIR"]))
    home = Path.home()
    dirs += [home / ".cache" / "pip", home / "Library" / "Caches" / "pip"]
    if os.environ.get("LOCALAPPDATA"):
        dirs.append(Path(os.environ["LOCALAPPDATA"]) / "pip" / "Cache")
    return [d for d in dirs if d.is_dir()]


def _from_sdist_tarball(path: Path) -> str | None:
    """The template inside a cached llama-cpp-python sdist (pip stores response bodies unnamed)."""
    try:
        with path.open("rb") as fh:
            if fh.read(2) != b"\x1f\x8b":
                return None
        with tarfile.open(path, mode="r|gz") as tar:
            for k, member in enumerate(tar):
                if k == 0 and not member.name.startswith("llama_cpp_python"):
                    return None
                if member.name.endswith(_MEMBER_SUFFIX):
                    data = tar.extractfile(member)
                    return data.read().decode("utf-8") if data else None
    except (OSError, tarfile.TarError, EOFError):
        return None
    return None


def find_template() -> tuple[str | None, list[str]]:
    """(template text or None, the places looked at)."""
    looked: list[str] = []
    candidates: list[Path] = []
    if os.environ.get("HEARTH_GPT_OSS_TEMPLATE"):
        candidates.append(Path(os.environ["HEARTH_GPT_OSS_TEMPLATE"]))
    candidates.append(SDIST_DIR / _MEMBER_SUFFIX)
    candidates += sorted(LLAMA_SRC.glob("llama_cpp_python-*/" + _MEMBER_SUFFIX))
    spec = importlib.util.find_spec("llama_cpp")
    if spec and spec.origin:
        pkg = Path(spec.origin).parent
        looked.append(f"{pkg}/**/{TEMPLATE_NAME}")
        candidates += sorted(pkg.rglob(TEMPLATE_NAME))
    for path in candidates:
        looked.append(str(path))
        if path.is_file():
            return path.read_text(encoding="utf-8"), looked
    for tarball in sorted(ROOT.glob(".dev/llama_cpp_python-*.tar.gz")):
        looked.append(str(tarball))
        text = _from_sdist_tarball(tarball)
        if text:
            return text, looked
    for cache in _pip_cache_dirs():
        looked.append(f"llama-cpp-python sdists in pip's cache {cache}")
        for path in cache.rglob("*"):
            try:
                big = path.is_file() and path.stat().st_size > 10_000_000
            except OSError:
                continue
            if big:
                text = _from_sdist_tarball(path)
                if text:
                    return text, looked
    return None, looked


def _tojson(x: Any, ensure_ascii: bool = False, indent: int | None = None,
            separators: tuple[str, str] | None = None, sort_keys: bool = False) -> str:
    # Same as llama_cpp.llama_chat_format.Jinja2ChatFormatter.tojson.
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def make_renderer(template: str) -> Callable[..., str]:
    """Render like llama-cpp-python's Jinja2ChatFormatter (same environment and globals)."""
    env = ImmutableSandboxedEnvironment(loader=jinja2.BaseLoader(), trim_blocks=True, lstrip_blocks=True,
                                        extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = _tojson
    compiled = env.from_string(template)

    def raise_exception(message: str) -> None:
        raise ValueError(message)

    def render(messages: list[dict[str, Any]], *, tools: list[dict[str, Any]] | None = None,
               reasoning_effort: str = "medium", current_date: str = "2025-08-05",
               add_generation_prompt: bool = True, builtin_tools: list[str] | None = None) -> str:
        day = _dt.date.fromisoformat(current_date)
        return compiled.render(builtin_tools=builtin_tools,
            messages=messages, eos_token="<|return|>", bos_token="<|startoftext|>",
            raise_exception=raise_exception, add_generation_prompt=add_generation_prompt,
            functions=None, function_call=None, tools=tools, tool_choice=None,
            strftime_now=lambda fmt: day.strftime(fmt), reasoning_effort=reasoning_effort,
        )

    return render


def llama_cpp_formatter(template: str) -> Callable[..., str] | None:
    """llama-cpp-python's own formatter with a fixed date, if the package imports here."""
    if "llama_cpp" not in sys.modules and importlib.util.find_spec("llama_cpp") is None:
        return None
    try:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter
    except Exception:  # noqa: BLE001 - a broken native build only skips this cross-check
        return None

    def render(messages: list[dict[str, Any]], *, tools: list[dict[str, Any]] | None = None,
               reasoning_effort: str = "medium", current_date: str = "2025-08-05",
               add_generation_prompt: bool = True) -> str:
        day = _dt.date.fromisoformat(current_date)

        class Fixed(Jinja2ChatFormatter):
            @staticmethod
            def strftime_now(f: str) -> str:
                return day.strftime(f)

        fmt = Fixed(template, eos_token="<|return|>", bos_token="<|startoftext|>",
                    add_generation_prompt=add_generation_prompt)
        return fmt(messages=messages, tools=tools, reasoning_effort=reasoning_effort).prompt  # type: ignore[arg-type]

    return render
