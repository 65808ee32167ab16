"""AppContext: the one object built at start-up and passed down (no globals)."""

from __future__ import annotations

import logging
import logging.handlers
import os
from dataclasses import dataclass, field
from pathlib import Path

import app.documents  # noqa: F401 - registers the documents tables' migration before the database opens
from app.errors import StorageReadOnly
from app.paths import AppPaths, resolve_paths
from app.settings import Settings, load_settings, save_settings
from app.storage import ConversationStore, Database
from app.storage.db import check_writable

log = logging.getLogger(__name__)


@dataclass
class AppContext:
    paths: AppPaths
    settings: Settings
    _db: Database | None = field(default=None, repr=False)

    @classmethod
    def create(cls, data_dir: str | os.PathLike[str] | None = None) -> "AppContext":
        paths = resolve_paths(data_dir)
        try:
            paths.ensure()
        except OSError as exc:
            raise StorageReadOnly(
                f"Hearth cannot create its folder {exc.filename or paths.data_dir} ({exc.strerror or exc}). "
                "Make the data folder writable, or start Hearth with another one: hearth --data-dir FOLDER."
            ) from exc
        # Before anything else starts (a model load can take minutes): a history that
        # cannot be saved is said now, not at the first message.
        check_writable(paths.db_path)
        return cls(paths=paths, settings=load_settings(paths.settings_path))

    @property
    def db(self) -> Database:
        """The history database, opened (and migrated) on first use."""
        if self._db is None:
            self._db = Database(self.paths.db_path)
        return self._db

    @property
    def store(self) -> ConversationStore:
        return ConversationStore(self.db)

    @property
    def models_dir(self) -> Path:
        return Path(self.settings.models_dir) if self.settings.models_dir else self.paths.default_models_dir

    def save_settings(self) -> None:
        save_settings(self.settings, self.paths.settings_path)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def setup_logging(paths: AppPaths, level: int = logging.INFO, *, console: bool = False) -> None:
    """Rotating log file in the log dir (and stderr for the CLI when asked)."""
    paths.log_dir.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    root.setLevel(level)
    fmt = logging.Formatter("%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s")
    target = str(paths.log_dir / "hearth.log")
    if not any(isinstance(h, logging.handlers.RotatingFileHandler) and h.baseFilename == target
               for h in root.handlers):
        fh = logging.handlers.RotatingFileHandler(target, maxBytes=2_000_000, backupCount=5, encoding="utf-8")
        fh.setFormatter(fmt)
        root.addHandler(fh)
    if console:
        sh = logging.StreamHandler()
        sh.setLevel(logging.WARNING)
        sh.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
        root.addHandler(sh)
