"""Storage: the only package that opens SQLite connections."""

from app.storage.conversations import Conversation, ConversationStore, Message, SearchHit
from app.storage.db import Database

__all__ = ["Conversation", "ConversationStore", "Database", "Message", "SearchHit"]
