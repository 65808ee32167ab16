"""Hearth's desktop interface (PySide6). Talks to the core in app/ only."""
