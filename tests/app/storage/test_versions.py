"""Answer versions: regenerate and edit keep every version; the chat goes on from the one shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.chat import ChatSession, ReplyFinished, SamplingSettings
from app.engine.client import EngineClient
from app.storage import ConversationStore, Database


@pytest.fixture
def store(tmp_path: Path):
    db = Database(tmp_path / "h.db")
    yield ConversationStore(db)
    db.close()


def texts(store: ConversationStore, cid: int) -> list[str]:
    return [m.content for m in store.messages(cid)]


def test_forks_nest_and_switching_shows_each_branch_whole(store: ConversationStore) -> None:
    c = store.create()
    store.add_message(c.id, "user", "q1")
    store.add_message(c.id, "assistant", "a1")
    # regenerate: a second and a third answer
    assert store.fork_at(c.id, 1)
    store.add_message(c.id, "assistant", "a1-v2")
    store.fork_at(c.id, 1)
    store.add_message(c.id, "assistant", "a1-v3")
    assert store.version_groups(c.id)[1].active == 2 and store.version_groups(c.id)[1].total == 3
    # the chat goes on from the version shown: back to the first answer, then continue
    store.select_version(c.id, 1, 0)
    assert texts(store, c.id) == ["q1", "a1"]
    store.add_message(c.id, "user", "q2")
    store.add_message(c.id, "assistant", "a2")
    store.fork_at(c.id, 3)  # a fork inside the first version
    store.add_message(c.id, "assistant", "a2-v2")
    assert texts(store, c.id) == ["q1", "a1", "q2", "a2-v2"]
    # flip to the third answer: the later turns belong to the first version and leave with it
    store.select_version(c.id, 1, 2)
    assert texts(store, c.id) == ["q1", "a1-v3"]
    assert set(store.version_groups(c.id)) == {1}
    # and back: the nested fork comes back as it was
    store.select_version(c.id, 1, 0)
    assert texts(store, c.id) == ["q1", "a1", "q2", "a2-v2"]
    assert store.version_groups(c.id)[3].total == 2
    store.select_version(c.id, 3, 0)
    assert texts(store, c.id) == ["q1", "a1", "q2", "a2"]
    # search and export follow the shown branch
    assert "a2" in store.export_markdown(c.id) and "a1-v3" not in store.export_markdown(c.id)


def test_fork_of_nothing_changes_nothing(store: ConversationStore) -> None:
    c = store.create()
    store.add_message(c.id, "user", "q1")
    assert not store.fork_at(c.id, 1)
    assert store.version_groups(c.id) == {}
    with pytest.raises(IndexError):
        store.select_version(c.id, 1, 0)


def test_versions_go_with_a_deleted_conversation(store: ConversationStore) -> None:
    c = store.create()
    store.add_message(c.id, "user", "q1")
    store.add_message(c.id, "assistant", "a1")
    store.fork_at(c.id, 1)
    store.delete(c.id)
    n = store.db.conn.execute("SELECT COUNT(*) FROM message_versions").fetchone()[0]
    assert n == 0


def _finish(events) -> dict:
    done = [e for e in events if isinstance(e, ReplyFinished)]
    assert done
    return done[-1].stats


def test_real_engine_regenerate_and_edit_keep_versions_and_the_prompt_follows_the_shown_one(
        tmp_path: Path, gemma_path: Path) -> None:
    db = Database(tmp_path / "h.db")
    store = ConversationStore(db)
    eng = EngineClient()
    try:
        eng.load_blocking(str(gemma_path), {"n_ctx": 2048, "n_threads": 2})
        s = ChatSession(store, eng, sampling=SamplingSettings(temperature=0.9, max_tokens=12, seed=1))
        c = store.create()
        _finish(s.send(c.id, "Name a colour."))
        first = store.messages(c.id)[-1].content
        s.sampling = SamplingSettings(temperature=0.9, max_tokens=12, seed=7)
        _finish(s.regenerate(c.id))
        second = store.messages(c.id)[-1].content
        assert store.version_groups(c.id)[1].total == 2
        # edit the question: the old question and both answers stay
        q = store.messages(c.id)[0]
        _finish(s.edit_and_resend(c.id, q.id, "Name an animal."))
        assert [m.content for m in store.messages(c.id)][0] == "Name an animal."
        assert store.version_groups(c.id)[0].total == 2
        store.select_version(c.id, 0, 0)
        assert [m.content for m in store.messages(c.id)] == ["Name a colour.", second]
        store.select_version(c.id, 1, 0)
        assert [m.content for m in store.messages(c.id)] == ["Name a colour.", first]
        # the next turn's prompt holds the version shown, not the others
        _finish(s.send(c.id, "Why?"))
        prompt = eng.last_prompt if hasattr(eng, "last_prompt") else None
        msgs = [m.content for m in store.messages(c.id)]
        assert msgs[:3] == ["Name a colour.", first, "Why?"]
        if prompt is not None:
            assert first in prompt and "Name an animal." not in prompt
    finally:
        eng.close()
        db.close()
