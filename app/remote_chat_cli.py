"""``hearth chat --server URL --remote-model NAME …``: the terminal chat on a model served elsewhere.

Same chat core (history, tools run locally, documents retrieved locally with only
the passages sent) and the same ``--json`` fields as a local chat; ``architecture``
is "remote". Naming the server on the command line is the consent to send to it;
Offline mode still blocks every server that is not on this computer.
"""

from __future__ import annotations

import argparse
import sys
import time
from types import SimpleNamespace
from typing import Any

from app.chat import ChatSession, SamplingSettings
from app.cli_chat import _has_attachments, _one_turn, conversation_arg, prompts_arg
from app.context import AppContext
from app.engine.remote import RemoteEngine, RemoteError
from app.errors import HearthError
from app.exit_codes import EXIT_LOAD, EXIT_OK, EXIT_USAGE
from app.servers import ServerError, remote_model_ref
from app.servers_cli import key_from_env, store_for


def _err(msg: str) -> None:
    print(f"hearth chat: {msg}", file=sys.stderr)


def run_remote_chat(args: argparse.Namespace, ctx: AppContext) -> int:
    store = ctx.store
    conv, ok = conversation_arg(args, store)
    if not ok:
        return EXIT_USAGE
    if getattr(args, "chat_model", None):
        _err("--model (a local GGUF) and --server (a remote model) cannot be used together.")
        return EXIT_USAGE
    prompts = prompts_arg(args, 'hearth chat --server URL --remote-model NAME "Hello"')
    if prompts is None:
        return EXIT_USAGE
    if args.max_tokens is not None and args.max_tokens < 1:
        _err("--max-tokens must be at least 1.")
        return EXIT_USAGE
    if args.temperature is not None and not 0 <= args.temperature <= 5:
        _err("--temperature must be between 0 and 5.")
        return EXIT_USAGE
    key, problem = key_from_env(getattr(args, "api_key_env", None))
    if problem:
        _err(problem)
        return EXIT_USAGE
    from app.documents.chat_support import parse_passwords

    try:
        passwords = parse_passwords(getattr(args, "password", None) or [])
    except ValueError as exc:
        _err(f"{exc}.")
        return EXIT_USAGE

    servers = store_for(ctx)
    engine: RemoteEngine | None = None
    embedder = None
    try:
        t0 = time.perf_counter()
        try:
            engine = servers.engine(args.server, args.remote_model or "", api_key=key)
            models = engine.list_models()
            if not args.remote_model:
                if len(models) != 1:
                    names = ", ".join(m.id for m in models[:12]) or "none"
                    _err(f"{engine.host} serves {len(models)} models; name one with --remote-model ({names}).")
                    return EXIT_USAGE
                engine.close()
                engine = servers.engine(args.server, models[0].id, api_key=key)
            engine.test_connection()
        except ServerError as exc:
            _err(str(exc))
            return EXIT_USAGE
        except RemoteError as exc:
            _err(str(exc))
            return EXIT_LOAD
        info = engine.model_info or {}
        load_s = time.perf_counter() - t0
        ref = remote_model_ref(engine.base_url, engine.model)
        created = conv is None
        if conv is None:
            conv = store.create(model=ref, reasoning_effort=args.reasoning or ctx.settings.reasoning_effort,
                                system_prompt=args.system if args.system is not None else ctx.settings.system_prompt)
        else:
            updates: dict[str, Any] = {"model": ref}
            if args.reasoning:
                updates["reasoning_effort"] = args.reasoning
            if args.system is not None:
                updates["system_prompt"] = args.system
            store.update(conv.id, **updates)
        tools = None
        if not args.no_tools:
            from app.harmony.tools import default_registry

            tools = default_registry()
        extra_context = None
        if args.attach or _has_attachments(ctx, conv.id):
            # Retrieval runs here, with the local embedding model: only the passages chosen
            # for each question are sent to the server.
            from app.documents.chat_support import prepare_attachments
            from app.documents.embedder import Embedder, find_embedding_model

            emb_path = find_embedding_model(ctx.settings, ctx.models_dir)
            embedder = Embedder(emb_path) if emb_path is not None else None
            try:
                extra_context = prepare_attachments(ctx, conv.id, args.attach, tools=tools, n_ctx=engine.n_ctx,
                                                    embed_fn=embedder,
                                                    embed_model=embedder.model_name if embedder else None,
                                                    passwords=passwords)
            except HearthError as exc:
                _err(str(exc))
                if created:
                    store.delete(conv.id)
                    conv = None
                return EXIT_USAGE
        session = ChatSession(
            store, engine, tools=tools, extra_context=extra_context,  # type: ignore[arg-type]
            sampling=SamplingSettings(
                temperature=args.temperature if args.temperature is not None else ctx.settings.temperature,
                top_p=args.top_p if args.top_p is not None else ctx.settings.top_p,
                max_tokens=args.max_tokens or ctx.settings.max_tokens,
                seed=args.seed,
            ),
        )
        choice = SimpleNamespace(plan=None, params={"server": engine.host, "base_url": engine.base_url})
        code = EXIT_OK
        for prompt in prompts:
            code = _one_turn(session, conv.id, prompt, args, choice, info, load_s)
            if code != EXIT_OK:
                break
        return code
    finally:
        if engine is not None:
            engine.close()
        if embedder is not None:
            embedder.close()
