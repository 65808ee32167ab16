"""Another Hearth as the remote engine (issue 16): `hearth chat --server` against a real `hearth serve`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.hearth_serve import hearth_serve

ROOT = Path(__file__).resolve().parents[2]


def test_chat_with_a_model_served_by_another_hearth(tmp_path: Path, gptoss_mxfp4_path: Path) -> None:
    with hearth_serve(tmp_path / "server", "--model", str(gptoss_mxfp4_path), "--port", "0", "--ctx", "2048",
                      "--api-key", "s3cret") as srv:
        env = {**os.environ, "TEAM_KEY": "s3cret"}
        r = subprocess.run(
            [sys.executable, "-m", "app", "--data-dir", str(tmp_path / "client"), "chat", "--server",
             srv.url, "--remote-model", gptoss_mxfp4_path.stem, "--api-key-env", "TEAM_KEY",
             "--max-tokens", "12", "--reasoning", "low", "--json", "Hello there", "And again"],
            cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
        assert r.returncode == 0, r.stderr
        rows = [json.loads(line) for line in r.stdout.splitlines()]
        assert len(rows) == 2 and rows[0]["conversation_id"] == rows[1]["conversation_id"]
        for row in rows:
            assert row["architecture"] == "remote" and 0 < row["tokens"] <= 12
            for key in ("text", "tok_per_s", "ttft_ms", "reasoning", "tool_calls", "citations"):
                assert key in row
            # Hearth's server keeps reasoning apart from the answer: nothing of harmony leaks in.
            assert "<|channel|>" not in row["text"] and "<|message|>" not in row["text"]
        # A wrong key is refused, naming the server.
        bad = subprocess.run(
            [sys.executable, "-m", "app", "--data-dir", str(tmp_path / "client"), "chat", "--server",
             srv.url, "--remote-model", gptoss_mxfp4_path.stem, "--max-tokens", "4", "Hi"],
            cwd=ROOT, capture_output=True, text=True, timeout=120,
            env={**os.environ, "OPENAI_API_KEY": "wrong"})
        assert bad.returncode != 0 and "127.0.0.1" in bad.stderr, bad.stderr
    from app.context import AppContext

    # The history is on the client's machine; the serving Hearth saved nothing.
    client = AppContext.create(tmp_path / "client")
    server = AppContext.create(tmp_path / "server")
    try:
        msgs = client.store.messages(rows[0]["conversation_id"])
        assert [m.role for m in msgs if m.role in ("user", "assistant")] == ["user", "assistant"] * 2
        assert server.store.list() == []
    finally:
        client.close()
        server.close()
