"""The ``hearth`` command line: the GUI by default, headless commands beside it.

Exit codes: 0 ok, 1 the operation failed, 2 bad arguments or input,
3 the model failed to load.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any, Sequence

from app import __version__
from app.errors import HearthError, ModelLoadError, StorageError
from app.exit_codes import EXIT_FAIL, EXIT_LOAD, EXIT_OK, EXIT_USAGE

log = logging.getLogger(__name__)

COMMANDS = ("chat", "render", "models", "hw", "plan", "gui")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"hearth: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def split_data_dir(argv: Sequence[str]) -> tuple[list[str], str | None]:
    """Take ``--data-dir DIR`` out of argv wherever it stands (before or after the command)."""
    rest: list[str] = []
    data_dir = None
    i = 0
    argv = list(argv)
    while i < len(argv):
        a = argv[i]
        if a == "--":
            rest.extend(argv[i:])
            break
        if a == "--data-dir":
            if i + 1 >= len(argv):
                raise SystemExit(_usage_error("--data-dir needs a folder"))
            data_dir = argv[i + 1]
            i += 2
            continue
        if a.startswith("--data-dir="):
            data_dir = a.split("=", 1)[1]
            i += 1
            continue
        rest.append(a)
        i += 1
    return rest, data_dir


def _usage_error(msg: str) -> int:
    print(f"hearth: error: {msg}", file=sys.stderr)
    return EXIT_USAGE


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="hearth", description="Run gpt-oss and other GGUF models privately on this computer.")
    p.add_argument("--version", action="version", version=f"hearth {__version__}")
    p.add_argument("--data-dir", help="keep all data (history, settings, models, logs) in this folder")
    p.add_argument("--model", help="open the app with this GGUF model loaded")
    p.add_argument("--verbose", action="store_true", help="log more")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)

    c = sub.add_parser("chat", help="chat with a model in the terminal")
    c.add_argument("prompts", nargs="*", help="one or more user messages (each is a turn)")
    c.add_argument("--model", dest="chat_model", help="GGUF model file")
    c.add_argument("--conversation", type=int, help="continue a saved conversation by id")
    c.add_argument("--ctx", type=int, help="context size in tokens")
    c.add_argument("--max-tokens", type=int, help="maximum tokens per reply")
    c.add_argument("--temperature", type=float)
    c.add_argument("--top-p", type=float)
    c.add_argument("--seed", type=int)
    c.add_argument("--reasoning", choices=("low", "medium", "high"), help="gpt-oss reasoning effort")
    c.add_argument("--show-reasoning", action="store_true", help="print the model's thinking too")
    c.add_argument("--system", help="system prompt (instructions; gpt-oss: the developer message)")
    c.add_argument("--preset", help="start from a preset (instructions, reasoning, sampling, tools): see Settings")
    c.add_argument("--overflow", choices=("drop", "summarize"),
                   help="when the chat outgrows the context: drop the oldest turns (default) or summarize them")
    c.add_argument("--no-tools", action="store_true", help="don't offer tools to the model")
    c.add_argument("--tools", help="tools to offer, comma-separated: calculator, date, python, documents, "
                                   "mcp (every enabled MCP server), mcp:NAME, or none")
    c.add_argument("--yes", action="store_true", help="allow every tool call without asking (for scripts)")
    c.add_argument("--attach", action="append", default=[], metavar="FILE", help="a document to ask about")
    c.add_argument("--password", action="append", default=[], metavar="FILE=PASSWORD",
                   help="the password of an attached encrypted PDF (repeat for several files)")
    c.add_argument("--json", action="store_true", help="print one JSON line per turn")
    c.add_argument("--server", help="chat with a model on this OpenAI-compatible server (URL or saved name)")
    c.add_argument("--remote-model", help="the server's model name (hearth servers test NAME lists them)")
    c.add_argument("--api-key-env", metavar="VAR", help="read the server's API key from this environment variable")

    r = sub.add_parser("render", help="print the exact prompt text for a conversation")
    r.add_argument("--model", dest="render_model", required=True, help="GGUF model file")
    r.add_argument("--conversation", required=True, help="OpenAI-style message list (JSON file)")
    r.add_argument("--tools", help="OpenAI tools list (JSON file)")
    r.add_argument("--reasoning", choices=("low", "medium", "high"), default="medium")
    r.add_argument("--date", help="current date to render, YYYY-MM-DD")

    sub.add_parser("gui", help="start the desktop app (the default)")
    _add_optional_commands(sub)
    return p


def _add_optional_commands(sub: Any) -> None:
    """Commands owned by other parts of the core (models, hardware)."""
    try:
        from app.models.cli import add_models_parser
    except ImportError:
        pass
    else:
        add_models_parser(sub)
    try:
        from app.hardware.cli import add_hw_parser, add_plan_parser
    except ImportError:
        pass
    else:
        add_hw_parser(sub)
        add_plan_parser(sub)
    from app.servers_cli import add_servers_parser

    add_servers_parser(sub)
    from app.tools.cli import add_tools_parser

    add_tools_parser(sub)
    from app.server.cli import add_serve_parser

    add_serve_parser(sub)


def main(argv: Sequence[str] | None = None, gui_runner: Any = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        argv, data_dir = split_data_dir(argv)
    except SystemExit as exc:
        return int(exc.code or EXIT_USAGE)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code if isinstance(exc.code, int) else EXIT_USAGE)
    args.data_dir = data_dir or args.data_dir
    command = args.command or "gui"
    if command == "gui":
        if gui_runner is None:
            print("hearth: the desktop app starts with the 'hearth' command (this entry point is headless).",
                  file=sys.stderr)
            return EXIT_USAGE
        return int(gui_runner(args))
    from app.context import AppContext, setup_logging

    try:
        ctx = AppContext.create(args.data_dir)
    except (OSError, HearthError) as exc:
        print(f"hearth: {exc}", file=sys.stderr)
        return EXIT_USAGE
    setup_logging(ctx.paths, logging.DEBUG if args.verbose else logging.INFO)
    try:
        if command == "chat":
            if getattr(args, "server", None):  # a model on a server of the user's (remote engine)
                from app.remote_chat_cli import run_remote_chat

                return run_remote_chat(args, ctx)
            from app.cli_chat import run_chat

            return run_chat(args, ctx)
        if command == "render":
            return run_render(args)
        if command == "models":
            from app.models.cli import run_models

            return run_models(args, ctx.paths)
        if command == "hw":
            from app.hardware.cli import run_hw

            return run_hw(args, ctx.paths)
        if command == "plan":
            from app.hardware.cli import run_plan

            return run_plan(args, ctx.paths)
        if command == "servers":
            from app.servers_cli import run_servers

            return run_servers(args, ctx)
        if command == "tools":
            from app.tools.cli import run_tools

            return run_tools(args, ctx.paths, ctx.settings)
        if command == "serve":
            from app.server.cli import run_serve

            return run_serve(args, ctx)
    except StorageError as exc:
        print(f"hearth: {exc}", file=sys.stderr)
        return EXIT_FAIL
    except KeyboardInterrupt:
        print("\nhearth: interrupted", file=sys.stderr)
        return 130
    finally:
        ctx.close()
    return EXIT_USAGE


def run_render(args: argparse.Namespace) -> int:
    """``hearth render``: the exact prompt text a conversation becomes for a model."""
    from app.chat import PromptBuilder
    from app.gguf_info import read_gguf_info
    from app.prompt import prompt_text

    try:
        messages = _read_json_file(args.conversation, "conversation")
        tools = _read_json_file(args.tools, "tools") if args.tools else None
        if not isinstance(messages, list):
            raise ValueError(f"{args.conversation}: expected a JSON list of messages")
        if tools is not None and not isinstance(tools, list):
            raise ValueError(f"{args.tools}: expected a JSON list of tools")
        if args.date:
            import datetime as _dt

            try:
                _dt.date.fromisoformat(args.date)
            except ValueError as exc:
                raise ValueError(f"--date {args.date}: expected YYYY-MM-DD") from exc
    except ValueError as exc:
        print(f"hearth render: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        info = read_gguf_info(args.render_model)
    except ModelLoadError as exc:
        print(f"hearth render: {exc}", file=sys.stderr)
        return EXIT_LOAD
    builder = PromptBuilder({
        "architecture": info.architecture, "chat_template": info.chat_template,
        "bos_token": info.bos_token or "", "eos_token": info.eos_token or "",
    })
    try:
        if builder.harmony:
            from app.harmony.render import validate_messages

            validate_messages(messages, tools)
        segments = builder.build(messages, tools=tools, reasoning_effort=args.reasoning, current_date=args.date)
    except (ValueError, TypeError, KeyError) as exc:
        print(f"hearth render: {exc}", file=sys.stderr)
        return EXIT_USAGE
    sys.stdout.write(prompt_text(segments))
    sys.stdout.flush()
    return EXIT_OK


def _read_json_file(path: str, what: str) -> Any:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"cannot read the {what} file {path}: {exc.strerror or exc}") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from exc
