"""``python -m app``: the headless commands (the GUI starts from ui.entry)."""

from __future__ import annotations

import sys

from app.cli import main

if __name__ == "__main__":
    sys.exit(main())
