"""``hearth models ...``: list, catalog, search, files, download, import, verify, rm, token.

Exit codes: 0 ok, 1 the operation failed (download or verification failed,
offline, network), 2 bad arguments or input (unknown name or catalog id, not a
usable GGUF), 130 interrupted (a download's part file is kept for resuming).
Progress goes to stderr; results to stdout.
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, TextIO

from app.errors import Cancelled, HearthError, ModelLoadError
from app.gguf_names import SPLIT_RE, split_part_names
from app.models import hub
from app.models.catalog import CatalogEntry, find_entry, load_catalog
from app.models.download import DownloadJob, DownloadProgress, DownloadRequest, DownloadState
from app.models.errors import KeyringUnavailableError, ModelNotInstalledError, OfflineError, UnsafeFileNameError
from app.models.filenames import local_file_name
from app.models.library import InstalledModel, ModelLibrary, validate_gguf
from app.models.network import NetworkConfig
from app.models.token import TokenStore
from app.models.units import format_bytes, format_duration, format_params, format_rate
from app.paths import AppPaths, resolve_paths
from app.settings import load_settings

log = logging.getLogger(__name__)

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def add_models_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``models`` and its subcommands to the top-level ``hearth`` subparsers."""
    m: argparse.ArgumentParser = subparsers.add_parser("models", help="list, download, import, verify and remove models",
                              description="Manage the models Hearth can run.")
    sub = m.add_subparsers(dest="models_command", metavar="COMMAND", parser_class=type(m))

    p = sub.add_parser("list", help="installed models (and unfinished downloads)")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser("catalog", help="the curated models Hearth offers")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser("search", help="search Hugging Face for GGUF models")
    p.add_argument("query")
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser("files", help="the GGUF files of a Hugging Face repository, with sizes")
    p.add_argument("repo_id", metavar="REPO_ID")
    p.add_argument("--revision", default="main")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser("download", help="download a model (resumes an interrupted download)")
    p.add_argument("repo_id", metavar="REPO_ID|CATALOG_ID", help="a Hugging Face repo, or a catalog id")
    p.add_argument("filename", metavar="FILENAME", nargs="?", help="the file in the repo (not for catalog ids)")
    p.add_argument("--revision", default="main")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")

    p = sub.add_parser("import", help="add a GGUF file you already have")
    p.add_argument("path", metavar="PATH")
    p.add_argument("--copy", action="store_true", help="copy it into the models folder (default: use it in place)")

    p = sub.add_parser("verify", help="re-check installed models' checksums")
    p.add_argument("name", metavar="NAME", nargs="?", help="one model (default: all)")

    p = sub.add_parser("rm", help="delete a model (or an unfinished download)")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--delete-file", action="store_true",
                   help="for a model used in place: delete its file too (default: only forget it)")

    p = sub.add_parser("token", help="store a Hugging Face access token in the system keyring")
    p.add_argument("--clear", action="store_true", help="forget the stored token")
    p.add_argument("--status", action="store_true", help="say whether a token is set, and where")
    return m


# --- context -------------------------------------------------------------------------------


class _Ctx:
    def __init__(self, paths: AppPaths, out: TextIO, err: TextIO) -> None:
        self.paths = paths
        self.out = out
        self.err = err
        settings = load_settings(paths.settings_path)
        self.models_dir = Path(settings.models_dir).expanduser() if settings.models_dir else paths.default_models_dir
        self.tokens = TokenStore()
        self.net = NetworkConfig(offline=settings.offline, endpoint=settings.hf_endpoint, proxy=settings.proxy,
                                 token=self.tokens.get())
        hub.configure_environment(self.net.offline)
        self.catalog = load_catalog()
        self.library = ModelLibrary(self.models_dir, paths, catalog=self.catalog)

    def say(self, text: str = "") -> None:
        print(text, file=self.out)

    def warn(self, text: str) -> None:
        print(f"hearth models: {text}", file=self.err)


def run_models(args: argparse.Namespace, paths: AppPaths, *, out: TextIO | None = None,
               err: TextIO | None = None) -> int:
    """Run ``hearth models ...``; returns the exit code."""
    out = out or sys.stdout
    err = err or sys.stderr
    command = getattr(args, "models_command", None)
    if not command:
        print("hearth models: give a command: list, catalog, search, files, download, import, verify, rm, token",
              file=err)
        return EXIT_USAGE
    try:
        ctx = _Ctx(paths, out, err)
    except HearthError as exc:
        print(f"hearth models: {exc}", file=err)
        return EXIT_FAIL
    handler = {"list": _list, "catalog": _catalog, "search": _search, "files": _files, "download": _download,
               "import": _import, "verify": _verify, "rm": _rm, "token": _token}[command]
    try:
        return handler(ctx, args)
    except (ModelNotInstalledError, ModelLoadError) as exc:
        ctx.warn(str(exc))
        return EXIT_USAGE
    except OfflineError as exc:
        ctx.warn(str(exc))
        return EXIT_FAIL
    except Cancelled as exc:
        ctx.warn(str(exc))
        return EXIT_INTERRUPTED
    except HearthError as exc:
        ctx.warn(str(exc))
        return EXIT_FAIL


# --- list / catalog ------------------------------------------------------------------------


def _model_json(m: InstalledModel) -> dict[str, Any]:
    d = asdict(m)
    d["path"] = str(m.path)
    d["parts"] = [str(p) for p in m.parts]
    return d


def _list(ctx: _Ctx, args: argparse.Namespace) -> int:
    scan = ctx.library.scan()
    cached = ctx.library.find_hf_cache_models()
    if args.json:
        ctx.say(json.dumps({
            "models_dir": str(ctx.models_dir),
            "models": [_model_json(m) for m in scan.models],
            "partial_downloads": [{"filename": p.filename, "bytes_done": p.bytes_done, "total": p.total,
                                   "repo_id": p.request.repo_id if p.request else None} for p in scan.partial],
            "problems": [{"path": str(p.path), "message": p.message} for p in scan.problems],
            "hf_cache": [{"repo_id": c.repo_id, "filename": c.filename, "path": str(c.path), "size_bytes": c.size}
                         for c in cached],
        }, indent=2))
        return EXIT_OK
    if not scan.models:
        ctx.say(f"No models installed in {ctx.models_dir}.")
        ctx.say("Download one with: hearth models download gpt-oss-20b")
    else:
        rows = [("NAME", "ARCH", "PARAMS", "QUANT", "CONTEXT", "SIZE", "LOCATION")]
        for m in scan.models:
            rows.append((m.name, m.architecture, format_params(m.n_params), m.quantization, f"{m.n_ctx_train:,}",
                         format_bytes(m.size_bytes), str(m.path)))
        _table(ctx, rows)
    for p in scan.partial:
        pct = f"{100 * p.bytes_done / p.total:.0f}%" if p.total else format_bytes(p.bytes_done)
        how = (f"resume: hearth models download {p.request.repo_id} {p.request.filename}" if p.request
               else f"remove: hearth models rm {p.filename}")
        ctx.say(f"Unfinished download: {p.filename} ({pct}); {how}")
    for prob in scan.problems:
        ctx.say(f"Not usable: {prob.path}: {prob.message}")
    for c in cached:
        ctx.say(f"In the Hugging Face cache: {c.repo_id} {c.filename} ({format_bytes(c.size)}); "
                f"use it with: hearth models import {c.path}")
    return EXIT_OK


def _table(ctx: _Ctx, rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        ctx.say("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())


def _catalog(ctx: _Ctx, args: argparse.Namespace) -> int:
    installed = {m.catalog_id for m in ctx.library.list_installed() if m.catalog_id}
    if args.json:
        ctx.say(json.dumps([dict(e.to_dict(), installed=e.id in installed) for e in ctx.catalog], indent=2))
        return EXIT_OK
    rows = [("ID", "SIZE", "ROLE", "LICENSE", "INSTALLED")]
    for e in ctx.catalog:
        rows.append((e.id, format_bytes(e.size_bytes), e.role, e.license, "yes" if e.id in installed else ""))
    _table(ctx, rows)
    return EXIT_OK


# --- search / files ----------------------------------------------------------------------


def _search(ctx: _Ctx, args: argparse.Namespace) -> int:
    repos = hub.search_models(args.query, ctx.net, limit=max(1, args.limit))
    if args.json:
        ctx.say(json.dumps([asdict(r) for r in repos], indent=2))
        return EXIT_OK
    if not repos:
        ctx.say(f"No GGUF repositories match '{args.query}'.")
        return EXIT_OK
    rows = [("REPOSITORY", "DOWNLOADS", "LIKES")]
    rows += [(r.repo_id, f"{r.downloads or 0:,}", f"{r.likes or 0:,}") for r in repos]
    _table(ctx, rows)
    ctx.say("See a repository's files: hearth models files REPO_ID")
    return EXIT_OK


def _files(ctx: _Ctx, args: argparse.Namespace) -> int:
    models = hub.list_gguf_files(args.repo_id, ctx.net, revision=args.revision)
    if args.json:
        ctx.say(json.dumps([{"name": m.name, "size": m.size, "files": [asdict(f) for f in m.files]}
                            for m in models], indent=2))
        return EXIT_OK
    if not models:
        ctx.say(f"{args.repo_id} has no GGUF files.")
        return EXIT_OK
    rows = [("FILE", "SIZE", "PARTS")]
    rows += [(m.first.filename, format_bytes(m.size), str(len(m.files)) if m.is_split else "") for m in models]
    _table(ctx, rows)
    ctx.say(f"Download one: hearth models download {args.repo_id} FILE")
    return EXIT_OK


# --- download -------------------------------------------------------------------------------


class ProgressBar:
    """One carriage-return line on stderr: percent, bytes, speed, ETA (at most ~10 updates/s)."""

    def __init__(self, stream: TextIO, width: int = 28) -> None:
        self.stream = stream
        self.width = width
        self._tty = bool(getattr(stream, "isatty", lambda: False)())
        self._last = 0.0
        self._open = False
        self._text = ""

    def update(self, ev: DownloadProgress) -> None:
        now = time.monotonic()
        if ev.state in (DownloadState.RETRYING, DownloadState.STARTING):
            self._line(ev.message)
            return
        if ev.state.finished or ev.state is DownloadState.VERIFYING:
            if ev.total and ev.state is not DownloadState.FAILED:
                self._draw(ev)
            self.end()
            return
        # Not a terminal: a line every few seconds instead of an animated bar.
        if now - self._last < (0.1 if self._tty else 5.0):
            return
        self._last = now
        self._draw(ev)

    def _draw(self, ev: DownloadProgress) -> None:
        frac = ev.fraction or 0.0
        filled = int(self.width * frac)
        bar = "#" * filled + "-" * (self.width - filled)
        if ev.state is DownloadState.CHECKING:
            text = f"{ev.filename}: {(ev.message or 'checking').lower()} {100 * frac:5.1f}%"
        else:
            text = (f"{ev.filename} [{bar}] {100 * frac:5.1f}%  {format_bytes(ev.bytes_done)}/"
                    f"{format_bytes(ev.total or 0)}  {format_rate(ev.speed_bps)}  ETA {format_duration(ev.eta_s)}")
        if text == self._text:
            return
        self._text = text
        if self._tty:
            self.stream.write("\r" + text.ljust(100)[:120])
            self._open = True
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def _line(self, text: str) -> None:
        if text:
            self.end()
            self.stream.write(text + "\n")
            self.stream.flush()

    def end(self) -> None:
        if self._open:
            self.stream.write("\n")
            self.stream.flush()
            self._open = False


def _requests_for(ctx: _Ctx, args: argparse.Namespace) -> list[DownloadRequest] | None:
    if args.filename is None:
        entry = find_entry(ctx.catalog, args.repo_id)
        if entry is not None:
            return [entry.download_request()]
        partial = [p for p in ctx.library.list_partial() if p.request and p.filename == args.repo_id]
        if partial and partial[0].request is not None:
            return [partial[0].request]
        ctx.warn(f"'{args.repo_id}' is not a catalog id. Give REPO_ID FILENAME, or one of: "
                 + ", ".join(e.id for e in ctx.catalog))
        return None
    if "/" not in args.repo_id:
        ctx.warn(f"'{args.repo_id}' is not a repository id: it should look like owner/name.")
        return None
    names = [args.filename]
    m = SPLIT_RE.match(args.filename)
    if m:  # any part of a split set: download every part
        count = int(m.group("count"))
        names = split_part_names(m.group("prefix"), count)
    reqs = []
    for name in names:
        try:
            local_file_name(name, source=args.repo_id)
        except UnsafeFileNameError as exc:
            ctx.warn(str(exc))
            return None
        entry = next((e for e in ctx.catalog if e.repo_id == args.repo_id and e.filename == name), None)
        reqs.append(_request(args.repo_id, name, args.revision, entry))
    return reqs


def _request(repo_id: str, filename: str, revision: str, entry: CatalogEntry | None) -> DownloadRequest:
    return DownloadRequest(repo_id, filename, revision, sha256=entry.sha256 if entry else None,
                           catalog_id=entry.id if entry else None)


def _download(ctx: _Ctx, args: argparse.Namespace) -> int:
    requests = _requests_for(ctx, args)
    if requests is None:
        return EXIT_USAGE
    bar = None if args.no_progress else ProgressBar(ctx.err)
    final: list[Path] = []
    for req in requests:
        job = DownloadJob(req, ctx.models_dir, ctx.net, library=ctx.library)
        if job.part_path.exists():
            ctx.warn(f"resuming the earlier download of {req.basename}")
        last: DownloadProgress | None = None
        try:
            for last in job.run():
                if bar is not None:
                    bar.update(last)
        except KeyboardInterrupt:
            if bar is not None:
                bar.end()
            ctx.warn(f"interrupted: the partial download of {req.basename} is kept; "
                     "run the same command again to resume.")
            return EXIT_INTERRUPTED
        if last is None or last.state is not DownloadState.COMPLETED:
            ctx.warn(last.message if last else "the download did not start")
            return EXIT_FAIL
        assert last.path is not None
        final.append(last.path)
    try:
        info = validate_gguf(final[0])
    except ModelLoadError as exc:
        ctx.warn(f"downloaded and verified, but Hearth cannot run it: {exc}")
        return EXIT_FAIL
    ctx.say(f"Installed {final[0]} ({info.architecture}, {info.quantization}, "
            f"{format_bytes(sum(p.stat().st_size for p in final))}); checksum verified.")
    return EXIT_OK


# --- import / verify / rm / token -------------------------------------------------------------


def _import(ctx: _Ctx, args: argparse.Namespace) -> int:
    bar = ProgressBar(ctx.err)
    model = None
    for ev in ctx.library.iter_import(args.path, copy=args.copy):
        model = ev.model or model
        if args.copy and ev.model is None:
            bar.update(DownloadProgress("import", Path(args.path).name, DownloadState.DOWNLOADING,
                                        ev.bytes_done, ev.total))
    bar.end()
    assert model is not None
    how = "copied into the models folder" if model.location == "models_dir" and args.copy else "used in place"
    ctx.say(f"Imported {model.name}: {model.architecture}, {format_params(model.n_params)} parameters, "
            f"{model.quantization}, context {model.n_ctx_train:,}, {format_bytes(model.size_bytes)} ({how}: "
            f"{model.path}).")
    return EXIT_OK


def _verify(ctx: _Ctx, args: argparse.Namespace) -> int:
    names = [args.name] if args.name else [m.name for m in ctx.library.list_installed()]
    if not names:
        ctx.say("No models installed.")
        return EXIT_OK
    failed = 0
    bar = ProgressBar(ctx.err)
    for name in names:
        result = None
        for ev in ctx.library.iter_verify(name):
            if ev.result is None:
                bar.update(DownloadProgress("verify", ev.name, DownloadState.CHECKING, ev.bytes_done, ev.total,
                                            message="Verifying the checksum"))
            result = ev.result or result
        bar.end()
        assert result is not None
        ctx.say(("OK      " if result.ok else "FAILED  ") + result.message)
        failed += not result.ok
    return EXIT_FAIL if failed else EXIT_OK


def _rm(ctx: _Ctx, args: argparse.Namespace) -> int:
    try:
        result = ctx.library.remove(args.name, delete_in_place_files=args.delete_file)
    except ModelNotInstalledError:
        if any(p.filename == args.name for p in ctx.library.list_partial()):
            result = ctx.library.remove_partial(args.name)
            ctx.say(f"Removed the unfinished download {args.name} ({format_bytes(result.freed_bytes)} freed).")
            return EXIT_OK
        raise
    if result.deleted:
        ctx.say(f"Removed {result.name}: {format_bytes(result.freed_bytes)} freed.")
    else:
        ctx.say(f"Removed {result.name} from the list; its file was left where it is.")
    return EXIT_OK


def _token(ctx: _Ctx, args: argparse.Namespace) -> int:
    if args.clear:
        ctx.tokens.clear()
        ctx.say("The Hugging Face token was removed from the keyring.")
        return EXIT_OK
    if args.status:
        src = ctx.tokens.source
        ctx.say(f"A Hugging Face token is set ({src})." if src else "No Hugging Face token is set.")
        return EXIT_OK
    usable, why = ctx.tokens.keyring_status()
    if not usable:
        ctx.warn(why + " For the command line, set HF_TOKEN in the environment for one command instead.")
        return EXIT_FAIL
    token = getpass.getpass("Hugging Face access token (input hidden): ")
    if not token.strip():
        ctx.warn("no token entered")
        return EXIT_USAGE
    try:
        ctx.tokens.save(token, remember=True)
    except KeyringUnavailableError as exc:
        ctx.warn(str(exc))
        return EXIT_FAIL
    ctx.say("Token saved in the system keyring.")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Stand-alone entry (``python -m app.models.cli [--data-dir DIR] COMMAND ...``) for scripts and tests."""
    rest = list(sys.argv[1:] if argv is None else argv)
    data_dir = None
    for i, a in enumerate(rest):
        if a == "--data-dir" and i + 1 < len(rest):
            data_dir = rest[i + 1]
            del rest[i:i + 2]
            break
        if a.startswith("--data-dir="):
            data_dir = a.split("=", 1)[1]
            del rest[i]
            break
    if rest[:1] == ["models"]:
        rest = rest[1:]
    parser = argparse.ArgumentParser(prog="hearth")
    sub = parser.add_subparsers(dest="command")
    add_models_parser(sub)
    args = parser.parse_args(["models", *rest])
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    return run_models(args, resolve_paths(data_dir).ensure())


if __name__ == "__main__":
    sys.exit(main())
