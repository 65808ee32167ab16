"""Hearth's local OpenAI-compatible API server (``hearth serve`` and Settings › Local server)."""
