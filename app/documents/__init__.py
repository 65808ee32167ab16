"""Documents attached to chats: extraction, the SQLite index, retrieval and citations (Qt-free)."""

# Whichever documents module is imported, the documents tables' migration is
# registered with app.storage before any database is opened.
import app.documents.schema  # noqa: F401
