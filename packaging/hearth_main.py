"""Entry script of the bundled Hearth executable (PyInstaller); same command line as ``hearth``.

The bundle has no Python interpreter of its own, yet parts of Hearth run a short
script in a child process with ``sys.executable -c CODE [ARGS...]`` (the llama.cpp
backend probe, for one), and in a bundle ``sys.executable`` is this program. So a
frozen run whose first argument is ``-c`` executes CODE the way ``python -c``
would; every other command line goes to ``hearth`` unchanged.
"""

from __future__ import annotations

import multiprocessing
import os
import sys


def _run_inline_code(argv: list[str]) -> None:
    """Behave like ``python -c CODE ARGS...``: argv[0] is "-c", the code sees ARGS after it."""
    code = argv[1]
    sys.argv = ["-c", *argv[2:]]
    namespace = {"__name__": "__main__", "__builtins__": __builtins__}
    exec(compile(code, "<string>", "exec"), namespace)


def _restore_library_path() -> None:
    """Give programs Hearth starts (xdg-open, nvidia-smi...) the system's LD_LIBRARY_PATH.

    The bundle's launcher points LD_LIBRARY_PATH at the bundled libraries; this
    process's loader has read it already (and keeps using it for later dlopen
    calls), but a system program inheriting it could load the bundle's older
    libssl or libstdc++ and fail. Children that are this executable get it set
    again by the launcher.
    """
    if not (sys.platform.startswith("linux") and getattr(sys, "frozen", False)):
        return
    original = os.environ.pop("LD_LIBRARY_PATH_ORIG", None)
    if original is not None:
        os.environ["LD_LIBRARY_PATH"] = original
    else:
        os.environ.pop("LD_LIBRARY_PATH", None)


def main() -> int:
    _restore_library_path()
    # Before Hearth itself: a multiprocessing child (the engine worker, the resource
    # tracker) started through this executable must run its own code, not Hearth's.
    multiprocessing.freeze_support()
    if getattr(sys, "frozen", False) and len(sys.argv) >= 3 and sys.argv[1] == "-c":
        _run_inline_code(sys.argv[1:])
        return 0
    from ui.shell.entry import main as hearth_main

    return hearth_main()


if __name__ == "__main__":
    sys.exit(main())
