"""The private llama-cpp-python internals the engine relies on still exist, as the kind of thing it expects.

A llama-cpp-python upgrade that renames or reshapes one of them fails here, naming it.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import pytest

from app.engine import llama_internals

llama_cpp = pytest.importorskip("llama_cpp")


def _resolve(path: str) -> tuple[Any, str]:
    """(owner, last name) for a path inside the llama_cpp package, importing submodules as needed."""
    parts = path.split(".")
    obj: Any = llama_cpp
    for i, name in enumerate(parts[:-1]):
        if not hasattr(obj, name) and inspect.ismodule(obj):
            importlib.import_module(f"{obj.__name__}.{name}")
        obj = getattr(obj, name, None)
        if obj is None:
            pytest.fail(f"llama_cpp.{'.'.join(parts[: i + 1])} is gone (needed for llama_cpp.{path})")
    return obj, parts[-1]


@pytest.mark.parametrize("path,kind", llama_internals.REQUIRED, ids=[p for p, _ in llama_internals.REQUIRED])
def test_every_internal_the_engine_uses_exists(path: str, kind: str) -> None:
    owner, name = _resolve(path)
    where = f"llama_cpp.{path} (llama-cpp-python {llama_cpp.__version__})"
    if kind == "instance attribute":
        src = inspect.getsource(owner.__init__)
        assert f"self.{name} =" in src or f"self.{name}:" in src, f"{where}: no longer set in {owner.__name__}.__init__"
        return
    member = inspect.getattr_static(owner, name, None)
    assert member is not None, f"{where} is gone"
    if kind == "method":
        assert inspect.isfunction(member), f"{where} is no longer a method (it is {type(member).__name__})"
    elif kind == "function":
        assert callable(member), f"{where} is no longer callable"
    elif kind.startswith("calls "):
        target = kind.removeprefix("calls ")
        assert f"{target}(" in inspect.getsource(member), f"{where} no longer calls {target} through its module"
    else:
        pytest.fail(f"unknown kind {kind!r} for {path}")


def test_sampler_signature_takes_what_the_engine_passes() -> None:
    params = inspect.signature(llama_cpp.Llama._init_sampler).parameters
    missing = {"top_k", "top_p", "min_p", "temp", "repeat_penalty"} - set(params)
    assert not missing, f"llama_cpp.Llama._init_sampler no longer takes {sorted(missing)}"
    sample = inspect.signature(importlib.import_module("llama_cpp._internals").LlamaSampler.sample).parameters
    assert list(sample)[:3] == ["self", "ctx", "idx"], "llama_cpp._internals.LlamaSampler.sample(ctx, idx) changed"


def test_installed_version_is_the_one_checked() -> None:
    assert llama_cpp.__version__ == llama_internals.PINNED_VERSION, (
        f"llama-cpp-python is {llama_cpp.__version__}, but app/engine/llama_internals.py was checked against "
        f"{llama_internals.PINNED_VERSION}: re-check every internal it uses, then update PINNED_VERSION"
    )


def test_the_makefile_pins_the_same_version() -> None:
    from pathlib import Path

    makefile = (Path(__file__).resolve().parents[3] / "Makefile").read_text(encoding="utf-8")
    assert f"LLAMA_VERSION := {llama_internals.PINNED_VERSION}" in makefile


def test_wrapped_model_loader_is_undone() -> None:
    inner = llama_cpp.llama_cpp
    original = inner.llama_model_load_from_file
    seen: list[Any] = []
    with llama_internals.wrapped_model_loader(llama_cpp, lambda f: seen.append(f) or (lambda *a: None)):
        assert inner.llama_model_load_from_file is not original
    assert seen == [original]
    assert inner.llama_model_load_from_file is original
