"""The one place a name from elsewhere (a Hub listing, a catalog, the command line) becomes a local file name.

A repository path's last "/" component is the file's name; it must then be a
plain name on every OS, or joining it to the models folder could leave the
folder (``..``, ``C:\\x``, ``\\\\server\\x`` on Windows) or name the folder itself.
"""

from __future__ import annotations

from app.models.errors import UnsafeFileNameError

# Characters Windows forbids in file names; "/" and "\\" are separators there.
_WINDOWS_FORBIDDEN = set('<>:"/\\|?*')
# Device names Windows resolves whatever the folder or extension (CON, NUL.gguf, COM1.txt ...).
_WINDOWS_DEVICES = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(10)), *(f"LPT{i}" for i in range(10))}
_MAX_NAME_BYTES = 255  # the common limit of ext4, NTFS and APFS


def plain_name_problem(name: str) -> str | None:
    """Why ``name`` is not a plain file name on every OS, or None when it is."""
    if not name or not name.strip():
        return "it is empty"
    if name in (".", ".."):
        return "it names a folder, not a file"
    if "\0" in name or any(ord(c) < 32 for c in name):
        return "it contains control characters"
    if "/" in name or "\\" in name:
        return "it contains a folder separator"
    bad = sorted(set(name) & _WINDOWS_FORBIDDEN)
    if bad:
        return f"it contains {' '.join(bad)}, which Windows does not allow (a drive letter or stream name)"
    if name[-1] in ". ":
        return "it ends with a dot or a space, which Windows drops"
    if name.split(".", 1)[0].strip().upper() in _WINDOWS_DEVICES:
        return "it is a device name on Windows"
    if len(name.encode("utf-8", "surrogatepass")) > _MAX_NAME_BYTES:
        return f"it is longer than {_MAX_NAME_BYTES} bytes"
    return None


def local_file_name(remote_path: str, *, source: str = "") -> str:
    """The local file name for a path inside a repository (``sub/dir/model.gguf`` -> ``model.gguf``).

    Raises UnsafeFileNameError, naming the file and the reason, when the last
    component is not a plain file name on every OS.
    """
    name = remote_path.rsplit("/", 1)[-1]
    problem = plain_name_problem(name)
    if problem is None:
        return name
    where = f" from {source}" if source else ""
    raise UnsafeFileNameError(
        f"Hearth will not save the file {remote_path!r}{where}: {problem}, so it is not a plain file name "
        "and could be written outside the models folder. Choose another file, or ask the repository's "
        "owner to rename it."
    )


def is_plain_remote_name(remote_path: str) -> bool:
    """True when ``local_file_name`` accepts the path."""
    return plain_name_problem(remote_path.rsplit("/", 1)[-1]) is None
