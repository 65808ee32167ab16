"""Hearth: run gpt-oss-20b privately on your own computer (Qt-free core)."""

__version__ = "0.1.0"
