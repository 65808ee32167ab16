"""Hybrid ranking is switched on by an installed embedding model, through a real engine worker."""

from __future__ import annotations

import shutil
from pathlib import Path

from app.documents.embedder import Embedder, find_embedding_model
from app.documents.index import DocumentIndex
from app.settings import Settings
from app.storage import ConversationStore, Database
from tests.gguf_models import write_tiny_gptoss


def test_no_embedding_model_means_keyword_search(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    write_tiny_gptoss(models / "chat-model.gguf")  # a chat model is not an embedding model
    assert find_embedding_model(Settings(), models) is None
    assert find_embedding_model(Settings(embedding_model=str(tmp_path / "gone.gguf")), models) is None


def test_named_embedding_model_embeds_passages(tmp_path: Path, gemma_path: Path) -> None:
    path = find_embedding_model(Settings(embedding_model=str(gemma_path)), tmp_path)
    assert path == gemma_path
    emb = Embedder(path)
    db = Database(tmp_path / "h.db")
    try:
        index = DocumentIndex(db, embed_fn=emb, embed_model=emb.model_name)
        conv = ConversationStore(db).create()
        doc = tmp_path / "garden.txt"
        doc.write_text("The roses need pruning in early spring.\n\nThe boiler is serviced each March.\n")
        events = list(index.ingest(doc, conv.id))
        assert getattr(events[-1], "embedded", False), events[-1]
        n = db.conn.execute("SELECT count(*) FROM embeddings").fetchone()[0]
        assert n >= 1
        hits = index.search(conv.id, "when is the boiler serviced", k=2)
        assert hits and "boiler" in hits[0].text
    finally:
        emb.close()
        db.close()


def test_embedding_architecture_is_found_in_the_models_folder(tmp_path: Path) -> None:
    import gguf

    models = tmp_path / "models"
    models.mkdir()
    w = gguf.GGUFWriter(str(models / "nomic-embed.gguf"), "nomic-bert")
    w.add_block_count(1)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    shutil.copy(models / "nomic-embed.gguf", models / "z-other.gguf")
    assert find_embedding_model(Settings(), models) == models / "nomic-embed.gguf"
