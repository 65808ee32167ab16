"""``hearth servers …``: the remote OpenAI-compatible servers Hearth may chat through.

Contract (scripts rely on it):
- ``hearth servers add NAME URL [--api-key-env VAR | --api-key-stdin] [--session-key]``
- ``hearth servers list [--json]``
- ``hearth servers rm NAME``
- ``hearth servers test NAME [--json]``: connects, lists the server's models

A key is never taken on the command line itself (it would stay in the shell's
history): it comes from an environment variable or stdin and goes to the keyring.

Exit codes: 0 ok, 1 the server failed (down, refused, ...), 2 bad arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from app.engine.remote import RemoteEngine, RemoteError
from app.exit_codes import EXIT_FAIL, EXIT_OK, EXIT_USAGE
from app.servers import KeyringUnavailable, ServerError, ServerStore


def add_servers_parser(sub: Any) -> None:
    s = sub.add_parser("servers", help="remote servers (vLLM, llama-server, Ollama, LM Studio, another Hearth)")
    ssub = s.add_subparsers(dest="servers_command")
    add = ssub.add_parser("add", help="add or replace a server")
    add.add_argument("name", help="a short name, e.g. gpu-box")
    add.add_argument("url", help="its OpenAI-compatible address, e.g. http://gpu-box.lan:8000/v1")
    key = add.add_mutually_exclusive_group()
    key.add_argument("--api-key-env", metavar="VAR", help="read the API key from this environment variable")
    key.add_argument("--api-key-stdin", action="store_true", help="read the API key from the first line of stdin")
    add.add_argument("--session-key", action="store_true",
                     help="don't store the key in the keyring (it is then lost when this command ends)")
    ls = ssub.add_parser("list", help="the servers added so far")
    ls.add_argument("--json", action="store_true")
    rm = ssub.add_parser("rm", help="remove a server and its key")
    rm.add_argument("name")
    t = ssub.add_parser("test", help="connect to a server and list its models")
    t.add_argument("name", help="a server's name or address")
    t.add_argument("--api-key-env", metavar="VAR", help="use the API key in this environment variable")
    t.add_argument("--json", action="store_true")


def _err(msg: str) -> None:
    print(f"hearth servers: {msg}", file=sys.stderr)


def store_for(ctx: Any) -> ServerStore:
    return ServerStore(ctx.paths.config_dir, is_offline=lambda: bool(ctx.settings.offline))


def key_from_env(var: str | None) -> tuple[str | None, str | None]:
    """(key, error): the key in $VAR; an error message when VAR is named but empty."""
    if not var:
        return None, None
    value = os.environ.get(var, "").strip()
    if not value:
        return None, f"the environment variable {var} is not set or empty."
    return value, None


def run_servers(args: argparse.Namespace, ctx: Any) -> int:
    cmd = getattr(args, "servers_command", None)
    store = store_for(ctx)
    try:
        if cmd == "add":
            return _add(args, store)
        if cmd == "list":
            return _list(args, store)
        if cmd == "rm":
            store.remove(args.name)
            print(f"Removed {args.name} (and its key).")
            return EXIT_OK
        if cmd == "test":
            return _test(args, store)
    except ServerError as exc:
        _err(str(exc))
        return EXIT_USAGE
    print("hearth servers: say what to do: add, list, rm or test (see hearth servers --help).", file=sys.stderr)
    return EXIT_USAGE


def _add(args: argparse.Namespace, store: ServerStore) -> int:
    key, problem = key_from_env(args.api_key_env)
    if problem:
        _err(problem)
        return EXIT_USAGE
    if args.api_key_stdin:
        key = sys.stdin.readline().strip()
        if not key:
            _err("no API key on stdin.")
            return EXIT_USAGE
    entry = store.add(args.name, args.url)
    where = ""
    if key:
        try:
            where = store.save_key(entry.name, key, remember=not args.session_key)
        except KeyringUnavailable as exc:
            _err(f"{exc} Use --session-key to use it for this command only, or --api-key-env with hearth chat.")
            store.remove(entry.name)
            return EXIT_FAIL
    note = {"keyring": " (API key in the system keyring)", "session": " (API key for this run only)"}.get(where, "")
    print(f"Added {entry.name}: {entry.url}{note}.")
    return EXIT_OK


def _list(args: argparse.Namespace, store: ServerStore) -> int:
    servers = store.list()
    if args.json:
        print(json.dumps([{"name": s.name, "url": s.url, "host": s.host, "has_key": store.key_for(s.url) is not None,
                           "approved": s.approved, "loopback": s.loopback, "models": s.models}
                          for s in servers], ensure_ascii=False))
        return EXIT_OK
    if not servers:
        print("No servers yet. Add one: hearth servers add NAME URL")
        return EXIT_OK
    for s in servers:
        key = "key" if store.key_for(s.url) else "no key"
        models = f", {len(s.models)} models" if s.models else ""
        print(f"{s.name}\t{s.url}\t({key}{models})")
    return EXIT_OK


def _test(args: argparse.Namespace, store: ServerStore) -> int:
    key, problem = key_from_env(args.api_key_env)
    if problem:
        _err(problem)
        return EXIT_USAGE
    entry = store.find(args.name)
    if entry is None and "/" not in args.name and ":" not in args.name:
        store.get(args.name)  # raises: no such server, with the list of names
    try:
        eng = store.engine(args.name, "", api_key=key)
    except RemoteError as exc:
        return _fail(args, str(exc), exc.kind)
    try:
        models = eng.list_models()
    except RemoteError as exc:
        return _fail(args, str(exc), exc.kind)
    finally:
        eng.close()
    if entry is not None:
        store.set_models(entry.name, [m.id for m in models])
    if args.json:
        print(json.dumps({"ok": True, "server": eng.host, "url": eng.base_url,
                          "models": [{"id": m.id, "owned_by": m.owned_by, "n_ctx": m.n_ctx} for m in models]},
                         ensure_ascii=False))
    else:
        print(f"{eng.host} answers; {len(models)} model{'s' if len(models) != 1 else ''}:")
        for m in models:
            ctx = f"\t(context {m.n_ctx})" if m.n_ctx else ""
            print(f"  {m.id}{ctx}")
    return EXIT_OK


def _fail(args: argparse.Namespace, message: str, kind: str) -> int:
    _err(message)
    if getattr(args, "json", False):
        print(json.dumps({"ok": False, "error": message, "kind": kind}))
    return EXIT_FAIL


def engine_for_cli(store: ServerStore, server: str, model: str, api_key: str | None) -> RemoteEngine:
    """The engine ``hearth chat --server`` uses (raises ServerError or RemoteError)."""
    return store.engine(server, model, api_key=api_key)
