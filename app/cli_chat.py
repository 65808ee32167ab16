"""``hearth chat``: the same chat core as the GUI, in a terminal."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from typing import Any

from app.chat import (
    ChatSession, Delta, ReplyFailed, ReplyFinished, SamplingSettings, ToolCallEvent, tool_calls_summary,
)
from app.context import AppContext
from app.engine.client import EngineClient
from app.errors import HearthError, ModelLoadError
from app.exit_codes import EXIT_FAIL, EXIT_LOAD, EXIT_OK, EXIT_USAGE
from app.loading import LoadChoice, load_model
from app.presets import PresetStore, apply_preset, presets_path

log = logging.getLogger(__name__)


def _err(msg: str) -> None:
    print(f"hearth chat: {msg}", file=sys.stderr)


def conversation_arg(args: argparse.Namespace, store: Any) -> tuple[Any, bool]:
    """The conversation ``--conversation`` names (None when it names none); False if it is unknown."""
    if args.conversation is None:
        return None, True
    try:
        return store.get(args.conversation), True
    except KeyError:
        _err(f"there is no conversation with id {args.conversation} (see the app's sidebar).")
        return None, False


def prompts_arg(args: argparse.Namespace, example: str) -> list[str] | None:
    """The messages to send, or None (said why) when there is none or one is empty."""
    prompts = list(args.prompts)
    if not prompts:
        _err(f"give a message to send, e.g. {example}")
        return None
    if any(not p.strip() for p in prompts):
        _err("a message is empty; write something to send.")
        return None
    return prompts


def run_chat(args: argparse.Namespace, ctx: AppContext) -> int:
    store = ctx.store
    conv, ok = conversation_arg(args, store)
    if not ok:
        return EXIT_USAGE
    model_path = args.chat_model or (conv.model if conv else None)
    if not model_path:
        _err("name a model with --model PATH (a .gguf file).")
        return EXIT_USAGE
    prompts = prompts_arg(args, 'hearth chat --model M.gguf "Hello"')
    if prompts is None:
        return EXIT_USAGE
    for name, val, lo in (("--ctx", args.ctx, 256), ("--max-tokens", args.max_tokens, 1)):
        if val is not None and val < lo:
            _err(f"{name} must be at least {lo}.")
            return EXIT_USAGE
    if args.temperature is not None and not 0 <= args.temperature <= 5:
        _err("--temperature must be between 0 and 5.")
        return EXIT_USAGE
    preset = None
    if getattr(args, "preset", None):
        try:
            preset = PresetStore(presets_path(ctx.paths.settings_path)).get(args.preset)
        except KeyError as exc:
            _err(f"{exc.args[0]}")
            return EXIT_USAGE
    from app.documents.chat_support import parse_passwords

    try:
        passwords = parse_passwords(getattr(args, "password", None) or [])
    except ValueError as exc:
        _err(f"{exc}.")
        return EXIT_USAGE

    engine = EngineClient()
    embedder = None
    tools = None
    try:
        t0 = time.perf_counter()
        choice: LoadChoice | None = None
        try:
            for item in load_model(engine, model_path, ctx.settings, n_ctx=args.ctx,
                                   states_dir=str(ctx.paths.states_dir)):
                if isinstance(item, LoadChoice):
                    choice = item
        except ModelLoadError as exc:
            _err(str(exc))
            return EXIT_LOAD
        assert choice is not None and engine.model_info is not None
        if choice.retry_note:
            _err(choice.retry_note)
        info = engine.model_info
        load_s = time.perf_counter() - t0
        created = conv is None
        if conv is None:
            conv = store.create(model=str(model_path), reasoning_effort=ctx.settings.reasoning_effort,
                                system_prompt=ctx.settings.system_prompt,
                                options={"overflow": ctx.settings.overflow})
            if preset is None and ctx.settings.default_preset:
                try:
                    preset = PresetStore(presets_path(ctx.paths.settings_path)).get(ctx.settings.default_preset)
                except KeyError:
                    log.warning("the default preset %r is gone; using the settings", ctx.settings.default_preset)
        store.update(conv.id, model=str(model_path))
        # A preset first, then what the command line says on top of it.
        if preset is not None:
            apply_preset(store, conv.id, preset)
        updates: dict[str, Any] = {}
        if args.reasoning:
            updates["reasoning_effort"] = args.reasoning
        if args.system is not None:
            updates["system_prompt"] = args.system
        store.update(conv.id, **updates)
        if args.overflow:
            store.set_options(conv.id, overflow=args.overflow)
        if args.no_tools:
            store.set_options(conv.id, tools=False)
        conv = store.get(conv.id)
        if not args.no_tools:
            from app.errors import McpError
            from app.tools.selection import build_chat_tools

            try:
                tools = build_chat_tools(getattr(args, "tools", None), ctx.settings, ctx.paths,
                                         yes=bool(getattr(args, "yes", False)))
            except ValueError as exc:
                _err(str(exc))
                return EXIT_USAGE
            except McpError as exc:
                _err(str(exc))
                return EXIT_FAIL
        extra_context = None
        if args.attach or _has_attachments(ctx, conv.id):
            from app.documents.chat_support import prepare_attachments
            from app.documents.embedder import Embedder, find_embedding_model

            emb_path = find_embedding_model(ctx.settings, ctx.models_dir)
            embedder = Embedder(emb_path) if emb_path is not None else None
            try:
                extra_context = prepare_attachments(ctx, conv.id, args.attach, tools=tools,
                                                    n_ctx=int(choice.params.get("n_ctx") or 0) or None,
                                                    embed_fn=embedder,
                                                    embed_model=embedder.model_name if embedder else None,
                                                    passwords=passwords)
            except HearthError as exc:
                _err(str(exc))
                if created:  # nothing was said in it: leave no empty "New chat" in the history
                    store.delete(conv.id)
                    conv = None
                return EXIT_USAGE
        session = ChatSession(
            store, engine, tools=tools, extra_context=extra_context,
            sampling=SamplingSettings(
                temperature=args.temperature if args.temperature is not None else ctx.settings.temperature,
                top_p=args.top_p if args.top_p is not None else ctx.settings.top_p,
                max_tokens=args.max_tokens or ctx.settings.max_tokens,
                seed=args.seed,
            ),
        )
        code = EXIT_OK
        for prompt in prompts:
            code = _one_turn(session, conv.id, prompt, args, choice, info, load_s)
            if code != EXIT_OK:
                break
        return code
    finally:
        if ctx.settings.save_states_on_exit and engine.loaded and conv is not None:
            try:
                engine.save_states(str(ctx.paths.states_dir), [f"conv-{conv.id}"],
                                   ctx.settings.saved_state_max_bytes)
            except HearthError:
                pass
        engine.close()
        if embedder is not None:
            embedder.close()
        if tools is not None:
            tools.close()  # the MCP servers and python sessions this chat started


def _has_attachments(ctx: AppContext, conversation_id: int) -> bool:
    """A continued conversation keeps the documents attached to it earlier."""
    from app.documents.index import DocumentIndex

    return bool(DocumentIndex(ctx.db).attachments(conversation_id))


def _one_turn(session: ChatSession, conv_id: int, prompt: str, args: argparse.Namespace,
              choice: Any, info: dict[str, Any], load_s: float) -> int:
    out = sys.stdout
    start_seq = session.store.message_count(conv_id)
    finished = None
    failed = None
    in_thinking = False
    for ev in session.send(conv_id, prompt):
        if isinstance(ev, Delta):
            if args.json:
                continue
            if ev.channel == "analysis":
                if args.show_reasoning:
                    if not in_thinking:
                        out.write("[thinking] ")
                        in_thinking = True
                    out.write(ev.text)
                    out.flush()
                continue
            if in_thinking:
                out.write("\n[answer] ")
                in_thinking = False
            out.write(ev.text)
            out.flush()
        elif isinstance(ev, ToolCallEvent) and ev.result is not None and not args.json:
            out.write(f"\n[tool] {ev.name}({ev.arguments}) -> {ev.result}\n")
        elif isinstance(ev, ReplyFinished):
            finished = ev
        elif isinstance(ev, ReplyFailed):
            failed = ev
    if failed is not None:
        _err(failed.error)
        if args.json:
            print(json.dumps({"error": failed.error, "kind": failed.kind, "conversation_id": conv_id}))
        return EXIT_USAGE if failed.kind in ("context", "empty") else EXIT_FAIL
    assert finished is not None
    st = finished.stats
    if not args.json:
        out.write("\n")
        out.flush()
        return EXIT_OK
    turn_msgs = session.store.messages(conv_id)[start_seq:]
    reasoning = "".join(m.thinking for m in turn_msgs if m.role == "assistant")
    record = {
        "text": finished.message.content,
        "tokens": st.get("completion_tokens", 0),
        "tok_per_s": round(float(st.get("gen_tok_per_s", 0.0)), 3),
        "ttft_ms": round(float(st.get("ttft_ms", 0.0)), 3),
        "conversation_id": conv_id,
        "message_id": finished.message.id,
        "prompt_tokens": st.get("prompt_tokens", 0),
        "prompt_tokens_evaluated": st.get("prompt_tokens_evaluated", 0),
        "prompt_cache": st.get("prompt_cache"),
        "stop_reason": st.get("stop_reason"),
        "stopped": finished.message.status == "stopped",
        "reasoning": reasoning,
        "tool_calls": tool_calls_summary(turn_msgs),
        "raw": st.get("raw", ""),
        "citations": [{"file": c.get("file"), "page": c.get("page"), "text": c.get("text")}
                      for c in st.get("citations", [])],
        "n_ctx": st.get("n_ctx"),
        "context_used": st.get("context_used"),
        "dropped_messages": st.get("dropped_messages", 0),
        "model": info.get("name"),
        "architecture": info.get("architecture"),
        "load_s": round(load_s, 3),
        "plan": choice.plan,
        "load_params": choice.params,
        "worker_rss_bytes": st.get("worker_peak_rss_bytes") or st.get("worker_rss_bytes"),
    }
    print(json.dumps(record, ensure_ascii=False))
    sys.stdout.flush()
    return EXIT_OK
