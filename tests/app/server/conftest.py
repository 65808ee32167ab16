"""Fixtures for the API server tests: a server on 127.0.0.1 around any engine, and clients for it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import openai
import pytest

from app.engine.client import EngineClient
from app.server.app import APIService, ServerOptions
from app.server.local import LocalServer

# Small and fast: the tests run on 2 shared CPU cores.
PARAMS = {"n_ctx": 1024, "n_threads": 2, "flash_attn": True, "swa_full": False}


@contextmanager
def serving(engine: Any, **options: Any) -> Iterator[LocalServer]:
    embedder = options.pop("embedder", None)
    save = options.pop("save_exchange", None)
    server = LocalServer(APIService(engine, ServerOptions(**options), embedder=embedder, save_exchange=save))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def client(server: LocalServer, key: str = "none", *, timeout: float = 60, **kw: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key=key, max_retries=0, timeout=timeout, **kw)


@pytest.fixture
def real_engine() -> Iterator[Callable[..., EngineClient]]:
    """``load(path, **params)``: an engine with that model loaded; closed after the test."""
    engines: list[EngineClient] = []

    def load(path: Any, **params: Any) -> EngineClient:
        eng = EngineClient()
        engines.append(eng)
        eng.load_blocking(str(path), {**PARAMS, **params})
        return eng

    yield load
    for eng in engines:
        eng.close()
