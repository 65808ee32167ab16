"""Saved servers (keys in the keyring, never in a file), Offline mode, and the ``hearth servers`` /
``hearth chat --server`` command lines against a real llama-cpp-python server on 127.0.0.1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import keyring.backends.fail
import pytest

from app.cli import main
from app.engine.remote import RemoteError
from app.servers import (
    KeyringUnavailable, ServerError, ServerStore, parse_remote_ref, remote_model_ref,
)
from tests.keyrings import MemoryKeyring
from tests.support.fault_proxy import FaultProxy
from tests.support.llama_server import RunningServer, llama_server

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def gemma_server(gemma_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with llama_server(gemma_path, tmp_path_factory.mktemp("srv")) as srv:
        yield srv


def hearth(*args: str, env: dict[str, str] | None = None, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "ui.shell.entry", *args], capture_output=True, text=True,
                          cwd=ROOT, env=e, timeout=timeout)


# ---- the store -----------------------------------------------------------------------------------


def test_key_goes_to_the_keyring_never_to_the_file(tmp_path: Path, memory_keyring: MemoryKeyring) -> None:
    store = ServerStore(tmp_path)
    entry = store.add("gpu-box", "http://gpu-box.lan:8000", api_key="sk-secret-123")
    assert entry.url == "http://gpu-box.lan:8000/v1" and entry.host == "gpu-box.lan:8000"
    text = (tmp_path / "servers.json").read_text()
    assert "sk-secret-123" not in text and "gpu-box.lan:8000/v1" in text
    assert "sk-secret-123" in memory_keyring.store.values()
    # A new store (the next run) finds the server and its key.
    again = ServerStore(tmp_path)
    assert [s.name for s in again.list()] == ["gpu-box"]
    assert again.key_for("gpu-box.lan:8000") == "sk-secret-123"
    assert again.engine("gpu-box", "gpt-oss-120b")._api_key == "sk-secret-123"
    again.remove("gpu-box")
    assert not memory_keyring.store and ServerStore(tmp_path).list() == []
    with pytest.raises(ServerError, match="no server named 'gpu-box'"):
        again.remove("gpu-box")


def test_no_keyring_says_so_and_keeps_the_key_for_this_run_only(tmp_path: Path) -> None:
    keyring.set_keyring(keyring.backends.fail.Keyring())
    store = ServerStore(tmp_path)
    store.add("box", "http://10.0.0.5:8080/v1")
    with pytest.raises(KeyringUnavailable, match="No system keyring"):
        store.save_key("box", "sk-1")
    assert store.save_key("box", "sk-1", remember=False) == "session"
    assert store.key_for("http://10.0.0.5:8080/v1") == "sk-1"
    assert "sk-1" not in (tmp_path / "servers.json").read_text()
    assert ServerStore(tmp_path).key_for("http://10.0.0.5:8080/v1") is None


def test_names_addresses_and_approval(tmp_path: Path) -> None:
    store = ServerStore(tmp_path)
    for bad_name in ("", " ", "a/b", "x" * 65):
        with pytest.raises(ServerError):
            store.add(bad_name, "http://h:1")
    with pytest.raises(ServerError, match="http:// or https://"):
        store.add("ok", "ftp://h")
    store.add("box", "http://box.lan:8000/v1")
    with pytest.raises(ServerError, match="already saved as 'box'"):
        store.add("other", "box.lan:8000")
    # The first message to a new server asks once; servers on this computer never ask.
    assert store.needs_approval("http://box.lan:8000/v1")
    assert store.needs_approval("http://unknown.lan/v1")
    assert not store.needs_approval("http://127.0.0.1:8080/v1")
    store.approve("box")
    assert not ServerStore(tmp_path).needs_approval("box.lan:8000")
    # Changing the address asks again.
    store.add("box", "http://box2.lan:8000/v1")
    assert store.needs_approval("http://box2.lan:8000/v1")
    ref = remote_model_ref("box2.lan:8000", "gpt-oss-120b")
    assert ref == "remote:http://box2.lan:8000/v1#gpt-oss-120b"
    assert parse_remote_ref(ref) == ("http://box2.lan:8000/v1", "gpt-oss-120b")
    assert parse_remote_ref("/models/gpt-oss-20b.gguf") is None


def test_offline_blocks_other_machines(tmp_path: Path) -> None:
    offline = [True]
    store = ServerStore(tmp_path, is_offline=lambda: offline[0])
    store.add("box", "http://box.lan:8000/v1")
    with pytest.raises(RemoteError) as err:
        store.engine("box", "m")
    assert err.value.kind == "offline" and "box.lan:8000" in str(err.value)
    assert store.engine("http://127.0.0.1:9/v1", "m").host == "127.0.0.1:9"
    offline[0] = False
    eng = store.engine("box", "m")
    offline[0] = True  # switched on mid-conversation: the next request is blocked
    with pytest.raises(RemoteError, match="Offline mode is on"):
        list(eng.chat([{"role": "user", "content": "hi"}]))


def test_unreadable_file_is_kept_aside(tmp_path: Path) -> None:
    (tmp_path / "servers.json").write_text("{not json")
    assert ServerStore(tmp_path).list() == []
    assert (tmp_path / "servers.json").exists() is False and (tmp_path / "servers.broken.json").exists()


# ---- hearth servers ---------------------------------------------------------------------------------


def test_servers_cli_add_list_test_rm(gemma_server: RunningServer, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      memory_keyring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch) -> None:
    data = str(tmp_path / "d")
    monkeypatch.setenv("MY_KEY", "sk-cli-42")
    assert main(["--data-dir", data, "servers", "add", "local", gemma_server.url, "--api-key-env", "MY_KEY"]) == 0
    assert "Added local" in capsys.readouterr().out
    assert "sk-cli-42" in memory_keyring.store.values()
    assert "sk-cli-42" not in (tmp_path / "d" / "config" / "servers.json").read_text()

    assert main(["--data-dir", data, "servers", "test", "local", "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["ok"] and [m["id"] for m in rec["models"]] == [gemma_server.model_id]

    assert main(["--data-dir", data, "servers", "list", "--json"]) == 0
    (entry,) = json.loads(capsys.readouterr().out)
    assert entry["name"] == "local" and entry["has_key"] and entry["models"] == [gemma_server.model_id]
    assert entry["loopback"] and "sk-cli-42" not in json.dumps(entry)

    assert main(["--data-dir", data, "servers", "rm", "local"]) == 0
    assert not memory_keyring.store
    assert main(["--data-dir", data, "servers", "rm", "local"]) == 2
    assert "no server named" in capsys.readouterr().err
    assert main(["--data-dir", data, "servers", "add", "x", "ftp://nope"]) == 2
    assert main(["--data-dir", data, "servers", "add", "x", "http://h:1", "--api-key-env", "UNSET_VAR_XYZ"]) == 2
    assert "UNSET_VAR_XYZ" in capsys.readouterr().err


def test_servers_cli_test_reports_failures(gemma_server: RunningServer, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    data = str(tmp_path / "d")
    with FaultProxy(gemma_server.port, status=401) as proxy:
        assert main(["--data-dir", data, "servers", "add", "guarded", proxy.url]) == 0
        assert main(["--data-dir", data, "servers", "test", "guarded", "--json"]) == 1
    out = capsys.readouterr()
    rec = json.loads(out.out.strip().splitlines()[-1])
    assert rec == {"ok": False, "error": rec["error"], "kind": "auth"} and f"127.0.0.1:{proxy.port}" in rec["error"]
    assert main(["--data-dir", data, "servers", "test", "nobody"]) == 2


# ---- hearth chat --server ---------------------------------------------------------------------------


def test_chat_server_json_has_the_local_fields(gemma_server: RunningServer, tmp_path: Path) -> None:
    data = tmp_path / "d"
    r = hearth("--data-dir", str(data), "chat", "--server", gemma_server.url, "--remote-model", gemma_server.model_id,
               "--max-tokens", "6", "--temperature", "0", "--seed", "1", "--no-tools", "--json",
               "--system", "You tell stories.", "Once upon a time", "And then?")
    assert r.returncode == 0, r.stderr
    lines = [json.loads(x) for x in r.stdout.strip().splitlines()]
    assert len(lines) == 2
    for rec in lines:
        for key in ("text", "tokens", "tok_per_s", "ttft_ms", "reasoning", "tool_calls", "citations",
                    "conversation_id"):
            assert key in rec, key
        assert rec["architecture"] == "remote" and rec["model"] == gemma_server.model_id
        assert rec["tokens"] <= 6 and rec["ttft_ms"] > 0
    assert lines[0]["tokens"] == 6 and lines[0]["text"].strip() and lines[0]["tok_per_s"] > 0
    assert lines[0]["conversation_id"] == lines[1]["conversation_id"]
    # History saved locally; the follow-up continues it.
    r2 = hearth("--data-dir", str(data), "chat", "--server", gemma_server.url, "--remote-model",
                gemma_server.model_id, "--conversation", str(lines[0]["conversation_id"]), "--max-tokens", "3",
                "--no-tools", "--json", "More")
    assert r2.returncode == 0, r2.stderr
    assert json.loads(r2.stdout.strip().splitlines()[-1])["conversation_id"] == lines[0]["conversation_id"]


def test_chat_server_failures_name_the_server(gemma_server: RunningServer, tmp_path: Path) -> None:
    data = str(tmp_path / "d")
    r = hearth("--data-dir", data, "chat", "--server", gemma_server.url, "--remote-model", "nope", "hi")
    assert r.returncode == 3 and "no model named 'nope'" in r.stderr and "127.0.0.1" in r.stderr
    r = hearth("--data-dir", data, "chat", "--server", gemma_server.url, "--remote-model", "m",
               "--api-key-env", "UNSET_VAR_XYZ", "hi")
    assert r.returncode == 2 and "UNSET_VAR_XYZ" in r.stderr
    settings = Path(data) / "config" / "settings.json"
    settings.write_text(json.dumps({"schema_version": 2, "offline": True}))
    r = hearth("--data-dir", data, "chat", "--server", "http://gpu-box.lan:8000/v1", "--remote-model", "m", "hi")
    assert r.returncode == 3 and "Offline mode is on" in r.stderr and "gpu-box.lan:8000" in r.stderr
