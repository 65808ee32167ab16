"""`hearth tools run python --code CODE [--code CODE …] [--json]`: the model's python tool by hand.

Each --code runs in turn in one sandboxed session, exactly as a model's calls would (state
kept between them), in the scratch folder ``<data dir>/python/cli``. With --json, one line
per call: {"output": …, "error": … or null, "duration_ms": …}. Exit 0 when the tool ran
(even if the code raised: that is in "error"), 2 for bad arguments, 1 when it could not run.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from app.paths import AppPaths
from app.exit_codes import EXIT_FAIL, EXIT_OK, EXIT_USAGE
from app.tools.python_tool import PythonSessions
from app.tools.sandbox import SandboxError


def run_python(args: argparse.Namespace, paths: AppPaths, settings: Any) -> int:
    codes: list[str] = list(getattr(args, "code", None) or [])
    if getattr(args, "tool_args", None):
        print("hearth tools run python: --args is for MCP tools; give the code with --code CODE.",
              file=sys.stderr)
        return EXIT_USAGE
    if not codes:
        print("hearth tools run python: nothing to run; give the code with --code CODE "
              "(repeat --code to run several pieces in one session).", file=sys.stderr)
        return EXIT_USAGE
    sessions = PythonSessions.for_paths(paths)
    try:
        for code in codes:
            try:
                res = sessions.run(None, code)
            except SandboxError as exc:
                print(f"hearth tools run python: the python tool could not run: {exc}", file=sys.stderr)
                return EXIT_FAIL
            if args.json:
                print(json.dumps({"output": res.output, "error": res.error, "duration_ms": res.duration_ms},
                                 ensure_ascii=False), flush=True)
            else:
                if res.output:
                    sys.stdout.write(res.output if res.output.endswith("\n") else res.output + "\n")
                if res.error:
                    sys.stdout.write(res.error if res.error.endswith("\n") else res.error + "\n")
                sys.stdout.flush()
    finally:
        sessions.close_all()
    return EXIT_OK
