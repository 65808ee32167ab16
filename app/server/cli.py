"""``hearth serve``: the local OpenAI-compatible API, headless.

The first line on stdout is ``listening on http://HOST:PORT`` once the model is
loaded and the server accepts requests (scripts wait for it; ``--port 0`` picks
a free port and this line says which).
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from app.context import AppContext
from app.engine.client import EngineClient
from app.errors import HearthError, ModelLoadError
from app.exit_codes import EXIT_FAIL, EXIT_LOAD, EXIT_OK, EXIT_USAGE
from app.loading import LoadChoice, load_model
from app.server.app import APIService, ServerOptions
from app.server.local import ServerError, bind_socket, check_binding, url_of, uvicorn_server

log = logging.getLogger(__name__)


def add_serve_parser(sub: Any) -> None:
    s = sub.add_parser("serve", help="serve the model to other programs (OpenAI-compatible API)")
    s.add_argument("--model", dest="serve_model", help="GGUF model file to serve")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this computer only)")
    s.add_argument("--port", type=int, help="port (default from Settings, 8642; 0 = any free port)")
    s.add_argument("--api-key", help="require 'Authorization: Bearer KEY' (needed for any address but loopback)")
    s.add_argument("--ctx", type=int, help="context size in tokens")
    s.add_argument("--max-queue", type=int, default=32, help="requests waiting or running before 429 (default 32)")
    s.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                   help="let browser pages from ORIGIN call the API (repeat; none by default)")


def _err(msg: str) -> None:
    print(f"hearth serve: {msg}", file=sys.stderr)


def history_saver(ctx: AppContext) -> Any:
    """Saves API exchanges as conversations (only when Settings say so)."""
    from app.storage.conversations import title_from

    def save(model: str, messages: list[dict[str, Any]], text: str, reasoning: str) -> None:
        store = ctx.store
        last_user = next((m.get("content") or "" for m in reversed(messages) if m["role"] == "user"), "API request")
        conv = store.create(title=title_from(last_user), model=model)
        for m in messages:
            if m["role"] in ("user", "assistant") and m.get("content"):
                store.add_message(conv.id, m["role"], m["content"])
        store.add_message(conv.id, "assistant", text, thinking=reasoning, status="complete")

    return save


def options_from(ctx: AppContext, *, api_key: str | None, cors: list[str], max_queue: int = 32) -> ServerOptions:
    s = ctx.settings
    return ServerOptions(api_key=api_key or None, max_queue=max_queue,
                         cors_origins=tuple(cors or s.server_cors_origins),
                         max_tokens=s.max_tokens, reasoning_effort=s.reasoning_effort)


def run_serve(args: argparse.Namespace, ctx: AppContext) -> int:
    model = args.serve_model
    if not model:
        _err("name a model with --model PATH (a .gguf file).")
        return EXIT_USAGE
    port = args.port if args.port is not None else ctx.settings.server_port
    if not 0 <= port <= 65535:
        _err("--port must be from 0 to 65535 (0 picks a free port).")
        return EXIT_USAGE
    if args.ctx is not None and args.ctx < 256:
        _err("--ctx must be at least 256.")
        return EXIT_USAGE
    if args.max_queue < 1:
        _err("--max-queue must be at least 1.")
        return EXIT_USAGE
    api_key = args.api_key or None
    try:
        check_binding(args.host, api_key)
        sock = bind_socket(args.host, port)  # before the load: a taken port is said at once
    except ServerError as exc:
        _err(str(exc))
        return EXIT_USAGE
    engine = EngineClient()
    embedder = None
    service = None
    try:
        try:
            choice: LoadChoice | None = None
            for item in load_model(engine, model, ctx.settings, n_ctx=args.ctx, states_dir=str(ctx.paths.states_dir)):
                if isinstance(item, LoadChoice):
                    choice = item
        except ModelLoadError as exc:
            _err(str(exc))
            return EXIT_LOAD
        if choice is not None and choice.retry_note:
            _err(choice.retry_note)
        from app.documents.embedder import Embedder, find_embedding_model

        emb_path = find_embedding_model(ctx.settings, ctx.models_dir)
        embedder = Embedder(emb_path) if emb_path is not None else None
        service = APIService(
            engine, options_from(ctx, api_key=api_key, cors=args.cors_origin, max_queue=args.max_queue),
            embedder=embedder,
            save_exchange=history_saver(ctx) if ctx.settings.server_save_requests_to_history else None,
        )
        server = uvicorn_server(service)
        print(f"listening on {url_of(sock)}", flush=True)
        log.info("serving %s on %s", model, url_of(sock))
        try:
            server.run(sockets=[sock])
        except KeyboardInterrupt:
            pass  # uvicorn shut down gracefully, then re-raised the Ctrl-C: the normal way to stop
        print("hearth serve: stopped", file=sys.stderr)
        return EXIT_OK
    except HearthError as exc:
        _err(str(exc))
        return EXIT_FAIL
    finally:
        if service is not None:
            service.close()
        engine.close()
        if embedder is not None:
            embedder.close()
        sock.close()
