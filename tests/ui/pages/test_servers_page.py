"""Settings › Servers and remote models in the window, against a real llama-cpp-python server on 127.0.0.1:
add a server, test it, see its models in the picker marked with the host, chat on one ("sent to HOST"),
and the once-per-server question before the first message leaves this computer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.context import AppContext
from app.engine.remote import RemoteEngine
from app.models import TokenStore
from app.servers import remote_model_ref
from tests.support.llama_server import RunningServer, free_port, llama_server
from tests.ui.helpers import send
from ui.pages.servers import install_remote_models, remote_picker_entries
from ui.shell.app import add_settings_page
from ui.shell.main_window import MainWindow


@pytest.fixture(scope="module")
def gemma_server(gemma_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with llama_server(gemma_path, tmp_path_factory.mktemp("srv")) as srv:
        yield srv


@pytest.fixture
def win(qtbot, ctx: AppContext) -> Iterator[MainWindow]:
    w = MainWindow(ctx)
    qtbot.addWidget(w)
    add_settings_page(w, TokenStore())
    install_remote_models(w.model_picker, w.controller)
    w.show()
    yield w
    w.settings_page.servers_panel.shutdown()
    w.close()


def _add(qtbot, win: MainWindow, name: str, url: str, key: str = "") -> bool:
    panel = win.settings_page.servers_panel
    panel.name.setText(name)
    panel.url.setText(url)
    panel.key.setText(key)
    with qtbot.waitSignal(panel.tested, timeout=20000) as sig:
        assert panel.add_server()
    return bool(sig.args[1])


def test_add_test_pick_and_chat_on_a_remote_model(qtbot, win: MainWindow, gemma_server: RunningServer,
                                                  memory_keyring) -> None:
    panel = win.settings_page.servers_panel
    assert _add(qtbot, win, "local-llama", gemma_server.url, key="sk-ui-1")
    host = f"127.0.0.1:{gemma_server.port}"
    assert "answers: 1 model" in panel.status.text()
    assert [panel.models.item(i).text() for i in range(panel.models.count())] == [gemma_server.model_id]
    assert "sk-ui-1" in memory_keyring.store.values()
    assert "sk-ui-1" not in (win.ctx.paths.config_dir / "servers.json").read_text()
    # The model is in the header's picker, marked with the host.
    ref = remote_model_ref(gemma_server.url, gemma_server.model_id)
    entry = next(e for e in win.model_picker.entries if e.path == ref)
    assert entry.badge == f"on {host}"
    # Choosing it "loads" it: a RemoteEngine, and the header says where the chat goes.
    with qtbot.waitSignal(win.controller.model_loaded, timeout=20000):
        win.open_model(ref)
    assert isinstance(win.controller.engine, RemoteEngine)
    badge = win.header.remote_badge
    assert badge.isVisible() and badge.text() == f"sent to {host}"
    assert win.model_label.text() == f"● connected · {host}"  # not "loaded · CPU": nothing runs here
    win.ctx.settings.system_prompt = "You tell stories."
    send(qtbot, win, "Once upon a time")
    msgs = win.ctx.store.messages(win.conversation_id)
    assert msgs[-1].role == "assistant" and msgs[-1].status == "complete" and msgs[-1].content.strip()
    # Back to "no model": the badge goes.
    win.model_picker.set_current(None)
    assert not badge.isVisible()


def test_a_server_that_is_down_says_so(qtbot, win: MainWindow) -> None:
    panel = win.settings_page.servers_panel
    assert not _add(qtbot, win, "nobody", f"http://127.0.0.1:{free_port()}/v1")
    assert "Cannot connect to 127.0.0.1" in panel.status.text()
    assert panel.test_button.isEnabled()
    panel.remove_selected()
    assert panel.list.count() == 0 and panel.controller.servers.list() == []


def test_first_message_to_a_new_server_asks_once(qtbot, win: MainWindow) -> None:
    c = win.controller
    c.servers.add("far", "http://gpu-box.invalid:8000/v1")
    c.servers.set_models("far", ["gpt-oss-120b"])
    c.servers_changed.emit()
    assert any(e.badge == "on gpu-box.invalid:8000" for e in win.model_picker.entries)
    assert remote_picker_entries(c.servers)[0].path == remote_model_ref("http://gpu-box.invalid:8000/v1",
                                                                        "gpt-oss-120b")
    c.engine = RemoteEngine("http://gpu-box.invalid:8000/v1", "gpt-oss-120b")  # as if chosen
    asked: list[str] = []
    c.confirm_send = lambda host: asked.append(host) or False
    cid = win.ctx.store.create().id
    with qtbot.waitSignal(c.notice, timeout=2000) as sig:
        assert c.send(cid, "hello") is False
    assert asked == ["gpu-box.invalid:8000"] and "Nothing was sent to gpu-box.invalid:8000" in sig.args[0]
    assert win.ctx.store.message_count(cid) == 0
    c.confirm_send = lambda host: asked.append(host) or True
    with qtbot.waitSignal(c.reply_failed, timeout=30000) as failed:
        assert c.send(cid, "hello")
    assert "gpu-box.invalid:8000" in failed.args[1]
    qtbot.waitUntil(lambda: not c.generating, timeout=10000)
    assert c.servers.find("far").approved
    # Asked once: the next message goes without a question.
    with qtbot.waitSignal(c.reply_failed, timeout=30000):
        assert c.send(cid, "again")
    qtbot.waitUntil(lambda: not c.generating, timeout=10000)
    assert asked == ["gpu-box.invalid:8000", "gpu-box.invalid:8000"]
