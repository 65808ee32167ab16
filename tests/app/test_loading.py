"""Loading through the planner, with one more conservative retry after running out of memory."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.engine.client import EngineClient
from app.errors import ModelLoadError, NotGGUFError
from app.loading import LoadChoice, choose_load, load_model
from app.settings import Settings


class OOMOnceEngine(EngineClient):
    """The real engine, except that the first load reports llama.cpp's out-of-memory failure."""

    def __init__(self) -> None:
        super().__init__()
        self.attempts: list[dict] = []

    def load(self, path, params, **kw):  # type: ignore[override]
        self.attempts.append(dict(params))
        if len(self.attempts) == 1:
            err = ModelLoadError(f"{Path(path).name}: not enough memory to load this model with these settings.")
            err.kind = "oom"  # type: ignore[attr-defined]
            raise err
        yield from super().load(path, params, **kw)


def test_plan_respects_user_settings(gemma_path: Path) -> None:
    c = choose_load(str(gemma_path), Settings(context_size=2048, threads=1))
    assert c.params["n_ctx"] == 2048 and c.params["n_threads"] == 1
    assert c.params["flash_attn"] is True and c.params["swa_full"] is False
    assert c.plan["verdict"] in ("fits", "fits_slower") and c.explanation


def test_not_a_model_is_refused_before_any_worker_starts(tmp_path: Path) -> None:
    bad = tmp_path / "letter.gguf"
    bad.write_text("Dear landlord, ...")
    with pytest.raises(NotGGUFError, match="letter.gguf"):
        choose_load(str(bad), Settings())


def test_out_of_memory_retries_once_with_a_smaller_plan(gemma_path: Path) -> None:
    eng = OOMOnceEngine()
    try:
        items = list(load_model(eng, str(gemma_path), Settings(context_size=16384)))
        choice = items[-1]
        assert isinstance(choice, LoadChoice)
        assert len(eng.attempts) == 2
        assert eng.attempts[1]["n_ctx"] < eng.attempts[0]["n_ctx"]
        assert "ran out of memory" in choice.retry_note and "context" in choice.retry_note
        assert eng.loaded and eng.model_info["n_ctx"] == eng.attempts[1]["n_ctx"]
    finally:
        eng.close()


def test_other_load_errors_are_not_retried(tmp_path: Path) -> None:
    eng = OOMOnceEngine()
    eng.attempts.append({})  # no injected failure
    bad = tmp_path / "broken.gguf"
    with open(bad, "wb") as f:
        f.write(b"GGUF\x03\x00\x00\x00" + b"\x00" * 64)
    try:
        with pytest.raises(ModelLoadError, match="broken.gguf"):
            list(load_model(eng, str(bad), Settings()))
        assert len(eng.attempts) == 1
    finally:
        eng.close()
