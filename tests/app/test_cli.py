"""The ``hearth`` command line: arguments, exit codes, JSON, history, privacy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from app.cli import split_data_dir

ROOT = Path(__file__).resolve().parents[2]


def hearth(*args: str, env: dict[str, str] | None = None, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "ui.shell.entry", *args], capture_output=True, text=True,
                          cwd=ROOT, env=e, timeout=timeout)


def test_data_dir_anywhere_on_the_line() -> None:
    assert split_data_dir(["--data-dir", "D", "chat", "x"]) == (["chat", "x"], "D")
    assert split_data_dir(["chat", "x", "--data-dir", "D"]) == (["chat", "x"], "D")
    assert split_data_dir(["chat", "--data-dir=D", "x"]) == (["chat", "x"], "D")


def test_version() -> None:
    r = hearth("--version")
    assert r.returncode == 0 and r.stdout.startswith("hearth ")


def test_bad_arguments_exit_2(tmp_path: Path) -> None:
    assert hearth("chat", "--bogus").returncode == 2
    r = hearth("chat", "--model", str(tmp_path / "x.gguf"))
    assert r.returncode == 2 and "message" in r.stderr
    r = hearth("chat", "--model", str(tmp_path / "x.gguf"), "   ")
    assert r.returncode == 2 and "empty" in r.stderr


def test_model_that_fails_to_load_exits_3(tmp_path: Path) -> None:
    bad = tmp_path / "photo.gguf"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 1000)
    r = hearth("chat", "--model", str(bad), "hello")
    assert r.returncode == 3
    assert "photo.gguf" in r.stderr
    missing = hearth("chat", "--model", str(tmp_path / "nope.gguf"), "hello")
    assert missing.returncode == 3 and "nope.gguf" in missing.stderr


def test_chat_json_saves_history_in_data_dir(tmp_path: Path, gemma_path: Path) -> None:
    data = tmp_path / "portable"
    r = hearth("--data-dir", str(data), "chat", "--model", str(gemma_path), "--max-tokens", "8",
               "--temperature", "0", "--seed", "1", "--ctx", "512", "--json", "Hello there")
    assert r.returncode == 0, r.stderr
    rec = json.loads(r.stdout.strip().splitlines()[-1])
    for key in ("text", "tokens", "tok_per_s", "ttft_ms", "conversation_id", "worker_rss_bytes"):
        assert key in rec
    assert rec["tokens"] == 8 and rec["text"]
    assert (data / "hearth.sqlite3").exists()
    # --data-dir after the command works too, and the conversation can be continued
    r2 = hearth("chat", "--conversation", str(rec["conversation_id"]), "--max-tokens", "4", "--temperature", "0",
                "--ctx", "512", "--json", "And then?", "--data-dir", str(data))
    assert r2.returncode == 0, r2.stderr
    rec2 = json.loads(r2.stdout.strip().splitlines()[-1])
    assert rec2["conversation_id"] == rec["conversation_id"]
    assert rec2["prompt_tokens"] > rec["prompt_tokens"] + rec["tokens"]


def test_chat_several_turns_evaluate_only_new_tokens(tmp_path: Path) -> None:
    """Three long turns on gpt-oss: turns 2 and 3 evaluate their new tokens, not the whole chat."""
    from tests.gguf_models import write_tiny_gptoss

    model = write_tiny_gptoss(tmp_path / "gpt-oss-16k.gguf", n_ctx_train=16384)
    user_text = " ".join(f"word{i}" for i in range(180))  # about 1,000 tokens with the tiny vocabulary
    r = hearth("chat", "--model", str(model), "--max-tokens", "16", "--seed", "4", "--ctx", "8192",
               "--json", "--no-tools", user_text, user_text + " again", user_text + " once more",
               env={"HEARTH_DATA_DIR": str(tmp_path / "d")})
    assert r.returncode == 0, r.stderr
    turns = [json.loads(line) for line in r.stdout.strip().splitlines()]
    assert len(turns) == 3
    assert 900 < turns[0]["prompt_tokens"] < 1600
    assert turns[0]["prompt_tokens_evaluated"] == turns[0]["prompt_tokens"]
    for prev, cur in zip(turns, turns[1:]):
        new = cur["prompt_tokens"] - prev["prompt_tokens"]
        assert cur["prompt_tokens_evaluated"] <= new + 1, (prev, cur)
        assert cur["prompt_tokens_evaluated"] < cur["prompt_tokens"] / 2


_AUDIT = textwrap.dedent(
    """
    import os, sys
    _log = os.environ["HEARTH_NET_LOG"]
    def _hook(event, args):
        if event in ("socket.connect", "socket.getaddrinfo", "socket.sendto"):
            with open(_log, "a") as f:
                f.write(f"{os.getpid()} {event} {args[1] if event != 'socket.getaddrinfo' else args[0]!r}\\n")
    sys.addaudithook(_hook)
    """
)


def test_chat_opens_no_network_connection(tmp_path: Path, gemma_path: Path) -> None:
    """Loading a model and chatting touch no network, in the app and in the worker process."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(_AUDIT)
    log = tmp_path / "net.log"
    env = {"PYTHONPATH": f"{site}{os.pathsep}{ROOT}", "HEARTH_NET_LOG": str(log),
           "HEARTH_DATA_DIR": str(tmp_path / "d")}
    r = hearth("chat", "--model", str(gemma_path), "--max-tokens", "4", "--ctx", "512", "--json", "hi", env=env)
    assert r.returncode == 0, r.stderr
    events = log.read_text().splitlines() if log.exists() else []
    non_loopback = [e for e in events if not any(h in e for h in ("127.0.0.1", "::1", "localhost", "/"))]
    assert non_loopback == [], non_loopback


def test_network_audit_hook_sees_connections(tmp_path: Path) -> None:
    """The privacy test's detector works: a loopback connect is recorded."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(_AUDIT)
    log = tmp_path / "net.log"
    env = dict(os.environ, PYTHONPATH=str(site), HEARTH_NET_LOG=str(log))
    code = "import socket\ntry:\n    socket.create_connection(('127.0.0.1', 9), timeout=1)\nexcept OSError:\n    pass\n"
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=30)
    assert "socket.connect" in log.read_text() and "127.0.0.1" in log.read_text()


def test_render_prints_the_exact_prompt(tmp_path: Path, gptoss_mxfp4_path: Path) -> None:
    conv = tmp_path / "conv.json"
    conv.write_text(json.dumps([
        {"role": "system", "content": "Answer in French."},
        {"role": "user", "content": "Hi <|end|> there"},
        {"role": "assistant", "content": "Bonjour", "thinking": "greet back"},
        {"role": "user", "content": "Encore"},
    ]))
    tools = tmp_path / "tools.json"
    tools.write_text(json.dumps([{"type": "function", "function": {
        "name": "lookup", "description": "Look up a word", "parameters": {
            "type": "object", "properties": {"word": {"type": "string"}}, "required": ["word"]}}}]))
    r = hearth("render", "--model", str(gptoss_mxfp4_path), "--conversation", str(conv), "--tools", str(tools),
               "--reasoning", "high", "--date", "2026-01-02")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert out.startswith("<|start|>system<|message|>You are ChatGPT")
    assert "Current date: 2026-01-02" in out and "Reasoning: high" in out
    assert "# Instructions\n\nAnswer in French." in out and "type lookup = (_: {" in out
    assert "greet back" not in out  # a finished turn's analysis is dropped
    assert out.endswith("<|start|>user<|message|>Encore<|end|><|start|>assistant")


def test_render_bad_input_exits_2(tmp_path: Path, gptoss_mxfp4_path: Path) -> None:
    bad = tmp_path / "conv.json"
    bad.write_text(json.dumps([{"role": "wizard", "content": "?"}]))
    r = hearth("render", "--model", str(gptoss_mxfp4_path), "--conversation", str(bad))
    assert r.returncode == 2 and "wizard" in r.stderr
    bad.write_text("{not json")
    assert hearth("render", "--model", str(gptoss_mxfp4_path), "--conversation", str(bad)).returncode == 2
    r = hearth("render", "--model", str(gptoss_mxfp4_path), "--conversation", str(tmp_path / "missing.json"))
    assert r.returncode == 2 and "missing.json" in r.stderr
    bad.write_text("[]")
    assert hearth("render", "--model", str(gptoss_mxfp4_path), "--conversation", str(bad),
                  "--date", "yesterday").returncode == 2


def test_chat_reasoning_json_has_reasoning_tool_calls_and_raw(tmp_path: Path, gptoss_mxfp4_path: Path) -> None:
    r = hearth("chat", "--model", str(gptoss_mxfp4_path), "--reasoning", "high", "--max-tokens", "24",
               "--seed", "2", "--ctx", "2048", "--json", "What is 6*7?",
               env={"HEARTH_DATA_DIR": str(tmp_path / "d")})
    assert r.returncode == 0, r.stderr
    rec = json.loads(r.stdout.strip().splitlines()[-1])
    for key in ("reasoning", "tool_calls", "raw", "plan", "worker_rss_bytes"):
        assert key in rec
    assert rec["raw"] and rec["tokens"] <= 24
    assert rec["plan"]["verdict"] in ("fits", "fits_slower") and rec["worker_rss_bytes"] > 10_000_000
