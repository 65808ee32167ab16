"""Where Hearth keeps its files: platformdirs by default, one folder with --data-dir.

``--data-dir DIR`` (or ``HEARTH_DATA_DIR``) puts everything -- database, settings,
models, logs, caches -- under DIR, for portable installs and for tests.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

APP_NAME = "Hearth"
ENV_DATA_DIR = "HEARTH_DATA_DIR"


@dataclass(frozen=True)
class AppPaths:
    data_dir: Path
    config_dir: Path
    cache_dir: Path
    log_dir: Path

    @property
    def db_path(self) -> Path:
        return self.data_dir / "hearth.sqlite3"

    @property
    def settings_path(self) -> Path:
        return self.config_dir / "settings.json"

    @property
    def default_models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def states_dir(self) -> Path:
        """Saved conversation states (prompt caches) that survive a restart."""
        return self.cache_dir / "states"

    @property
    def crash_dir(self) -> Path:
        return self.log_dir / "crash-reports"

    def ensure(self) -> "AppPaths":
        for d in (self.data_dir, self.config_dir, self.cache_dir, self.log_dir):
            d.mkdir(parents=True, exist_ok=True)
        return self


def resolve_paths(data_dir: str | os.PathLike[str] | None = None) -> AppPaths:
    """Paths for this run: an explicit data dir, then $HEARTH_DATA_DIR, then the OS defaults."""
    chosen = data_dir or os.environ.get(ENV_DATA_DIR) or None
    if chosen:
        root = Path(chosen).expanduser().resolve()
        return AppPaths(
            data_dir=root,
            config_dir=root / "config",
            cache_dir=root / "cache",
            log_dir=root / "logs",
        )
    return AppPaths(
        data_dir=Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)),
        config_dir=Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)),
        cache_dir=Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False)),
        log_dir=Path(platformdirs.user_log_dir(APP_NAME, appauthor=False)),
    )
