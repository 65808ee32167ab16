"""One engine, two users (the window and the local API server): a Stop ends only its own turn."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import app.documents  # noqa: F401 - the full schema
from app.chat import ChatSession, ReplyFinished, SamplingSettings
from app.engine.client import EngineClient
from app.prompt import Segment
from app.storage import ConversationStore, Database


def test_a_stop_in_the_window_leaves_an_api_request_running(tmp_path: Path, gemma_path: Path) -> None:
    engine = EngineClient()
    db = Database(tmp_path / "h.db")
    try:
        engine.load_blocking(str(gemma_path), {"n_ctx": 512, "n_threads": 2, "flash_attn": True, "swa_full": False})
        api_stats: dict = {}
        first_token = threading.Event()

        def api_request() -> None:  # what the API server does on its own thread
            req = {"max_tokens": 48, "temperature": 0.0, "ignore_eos": True, "use_cache": False}
            for ev in engine.generate(req, [Segment("Once upon a time", False)]):
                if hasattr(ev, "text"):
                    first_token.set()
                else:
                    api_stats.update(ev.stats)

        api = threading.Thread(target=api_request)
        api.start()
        assert first_token.wait(60)
        store = ConversationStore(db)
        session = ChatSession(store, engine, sampling=SamplingSettings(max_tokens=8))
        conv = store.create()
        events: list = []
        chat = threading.Thread(target=lambda: events.extend(session.send(conv.id, "Hello")))
        chat.start()
        time.sleep(0.3)  # the window's turn now waits for the engine
        session.stop()
        api.join(120)
        chat.join(120)
        assert api_stats["stop_reason"] == "length" and api_stats["completion_tokens"] == 48
        done = [e for e in events if isinstance(e, ReplyFinished)]
        assert done and done[-1].message.status == "stopped"
    finally:
        engine.close()
        db.close()
