"""``hearth serve`` as a real process, driven by the official openai client."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import openai
import pytest

from tests.support.hearth_serve import hearth_serve

ROOT = Path(__file__).resolve().parents[3]


def _serve(*args: str, data: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "app", "serve", "--data-dir", str(data), *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))


def test_hearth_serve_answers_the_openai_client(tmp_path: Path, gptoss_mxfp4_path: Path) -> None:
    with hearth_serve(tmp_path / "data", "--model", str(gptoss_mxfp4_path), "--port", "0", "--ctx", "512",
                      "--api-key", "k3y") as srv:
        assert srv.port > 0
        c = openai.OpenAI(base_url=srv.url, api_key="k3y", max_retries=0, timeout=60)
        model = gptoss_mxfp4_path.stem
        r = c.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hi"}], max_tokens=4)
        assert r.usage.completion_tokens <= 4 and r.usage.prompt_tokens > 10
        events = [e.type for e in c.responses.create(model=model, input="Hi", max_output_tokens=4, stream=True)]
        assert events[0] == "response.created" and events[-1] in ("response.completed", "response.incomplete")
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=srv.url, api_key="wrong", max_retries=0).models.list()
    code = srv.proc.returncode
    assert code == 0
    # Requests are not saved to the history unless Settings say so.
    from app.context import AppContext

    ctx = AppContext.create(tmp_path / "data")
    try:
        assert ctx.store.list() == []
    finally:
        ctx.close()


def test_other_addresses_need_an_api_key(tmp_path: Path) -> None:
    proc = _serve("--model", "whatever.gguf", "--host", "0.0.0.0", "--port", "0", data=tmp_path / "data")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and out == ""
    assert "0.0.0.0" in err and "--api-key" in err


def test_serve_needs_a_model(tmp_path: Path) -> None:
    proc = _serve("--port", "0", data=tmp_path / "data")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "--model" in err
