"""Documents attached to chats: extraction, the SQLite index, retrieval and citations (Qt-free)."""

# The database module imports this package's migration; importing it first keeps
# that cycle in one order whichever module is imported first.
import app.storage.db  # noqa: F401
