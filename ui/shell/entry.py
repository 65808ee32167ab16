"""The ``hearth`` executable: the GUI, or a headless command, from one entry point.

Qt is imported only when the GUI runs, so headless commands start fast.
"""

from __future__ import annotations

import multiprocessing
import sys
from typing import Sequence


def _run_gui(args: object) -> int:
    from ui.shell.app import run_gui

    return run_gui(args)  # type: ignore[arg-type]


def main(argv: Sequence[str] | None = None) -> int:
    multiprocessing.freeze_support()  # the bundled app starts its engine worker through itself
    from app.cli import main as cli_main

    return cli_main(argv, gui_runner=_run_gui)


if __name__ == "__main__":
    sys.exit(main())
