"""The architecture's import rules, checked on the source (napari-style contract)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
            if node.module.split(".")[0] == "ui":
                names.add("ui")
    return names


def _py_files(pkg: str) -> list[Path]:
    return sorted((ROOT / pkg).rglob("*.py"))


def test_core_never_imports_qt_or_ui() -> None:
    bad = [f"{p.relative_to(ROOT)} imports {sorted(_imports(p) & {'PySide6', 'ui'})}"
           for p in _py_files("app") if _imports(p) & {"PySide6", "ui"}]
    assert not bad, "app/ must stay Qt-free:\n" + "\n".join(bad)


def test_ui_never_imports_llama_cpp_or_huggingface_hub() -> None:
    bad = [str(p.relative_to(ROOT)) for p in _py_files("ui")
           if _imports(p) & {"llama_cpp", "huggingface_hub"}]
    assert not bad, "ui/ must go through app/: " + ", ".join(bad)


def test_only_the_engine_worker_imports_llama_cpp() -> None:
    users = {str(p.relative_to(ROOT)) for p in _py_files("app") if "llama_cpp" in _imports(p)}
    assert users <= {"app/engine/worker.py"}, users


def test_the_rule_checker_catches_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from PySide6.QtWidgets import QWidget\nimport llama_cpp\n")
    assert {"PySide6", "llama_cpp"} <= _imports(bad)


def test_test_and_benchmark_code_stays_out_of_the_product() -> None:
    stray = [str(p.relative_to(ROOT)) for p in _py_files("app") + _py_files("ui")
             if p.name.startswith(("fake", "bench", "pdfgen"))]
    assert not stray, "test helpers belong in tests/support/, benchmarks in tests/bench/: " + ", ".join(stray)
    users = [str(p.relative_to(ROOT)) for p in _py_files("app") + _py_files("ui") if "tests" in _imports(p)]
    assert not users, "the product never imports tests/: " + ", ".join(users)
