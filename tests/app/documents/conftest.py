from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.documents.index import DocumentIndex
from app.storage import ConversationStore, Database

# Hypothesis would otherwise keep its cache in ./.hypothesis, inside the working tree.
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", str(Path(tempfile.gettempdir()) / "hearth-hypothesis"))


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    d = Database(tmp_path / "hearth.sqlite3")
    yield d
    d.close()


@pytest.fixture
def store(db: Database) -> ConversationStore:
    return ConversationStore(db)


@pytest.fixture
def conv_id(store: ConversationStore) -> int:
    return store.create().id


@pytest.fixture
def index(db: Database) -> DocumentIndex:
    return DocumentIndex(db)


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    d = tmp_path / "docs"
    d.mkdir()
    return d
