"""``hearth serve`` as a real process, driven by the official openai client."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import openai
import pytest

ROOT = Path(__file__).resolve().parents[3]


def _serve(*args: str, data: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "app", "serve", "--data-dir", str(data), *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))


def test_hearth_serve_answers_the_openai_client(tmp_path: Path, gptoss_mxfp4_path: Path) -> None:
    proc = _serve("--model", str(gptoss_mxfp4_path), "--port", "0", "--ctx", "512", "--api-key", "k3y",
                  data=tmp_path / "data")
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline().strip()
        m = re.fullmatch(r"listening on (http://127\.0\.0\.1:(\d+))", first)
        assert m, (first, proc.stderr.read() if proc.poll() is not None else "")
        assert int(m.group(2)) > 0
        c = openai.OpenAI(base_url=m.group(1) + "/v1", api_key="k3y", max_retries=0, timeout=60)
        model = gptoss_mxfp4_path.stem
        r = c.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hi"}], max_tokens=4)
        assert r.usage.completion_tokens <= 4 and r.usage.prompt_tokens > 10
        events = [e.type for e in c.responses.create(model=model, input="Hi", max_output_tokens=4, stream=True)]
        assert events[0] == "response.created" and events[-1] in ("response.completed", "response.incomplete")
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=m.group(1) + "/v1", api_key="wrong", max_retries=0).models.list()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
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
