"""Text out of documents: PDF, DOCX, plain text, Markdown, HTML, CSV and source code.

Page numbers and headings are kept so citations can say "report.pdf, p. 12".
The type comes from the content first and the extension second, so a binary
file renamed ``.pdf`` gets a clear error instead of garbage text.
"""

from __future__ import annotations

import codecs
import logging
import os
import re
import stat
from collections.abc import Iterable
from pathlib import Path

from app.documents.errors import (
    CorruptDocument, DocumentTooLarge, EmptyDocument, NoTextFound, UnreadableDocument, UnsupportedDocument,
    unreadable,
)
from app.documents.html_text import declared_charset, html_to_page
from app.documents.pages import ExtractedDoc, Extraction, ListExtraction, Page, normalize
from app.documents.pdf import PdfExtraction
from app.documents.word import read_docx

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 200 * 1024 * 1024
# A file under the size limit can still hold more text than is sensible to index
# (a 200 MB CSV is ~200k chunks); past this the user is asked to split it.
MAX_TEXT_CHARS = 60_000_000

MARKDOWN_EXTS = frozenset({".md", ".markdown", ".mdown", ".mkd", ".mdx"})
HTML_EXTS = frozenset({".html", ".htm", ".xhtml"})
CSV_EXTS = frozenset({".csv", ".tsv"})
DOCX_EXTS = frozenset({".docx", ".docm", ".dotx"})
TEXT_EXTS = frozenset({".txt", ".text", ".log", ".rst", ".org", ".tex", ".adoc", ".srt", ".vtt", ".nfo"})
CODE_EXTS = frozenset({
    ".py", ".pyi", ".ipynb", ".js", ".mjs", ".cjs", ".jsx", ".ts", ".tsx", ".c", ".h", ".cc", ".cpp", ".cxx",
    ".hpp", ".hh", ".cs", ".java", ".kt", ".kts", ".scala", ".go", ".rs", ".rb", ".php", ".pl", ".pm", ".lua",
    ".r", ".jl", ".swift", ".m", ".mm", ".dart", ".sh", ".bash", ".zsh", ".fish", ".ps1", ".bat", ".cmd",
    ".sql", ".json", ".jsonl", ".yaml", ".yml", ".toml", ".ini", ".cfg", ".conf", ".xml", ".css", ".scss",
    ".less", ".vue", ".svelte", ".gradle", ".cmake", ".mk", ".proto", ".graphql", ".hs", ".ml", ".ex", ".exs",
    ".erl", ".clj", ".el", ".vim", ".f90", ".zig", ".nim", ".v", ".sv", ".vhd", ".asm", ".s", ".diff", ".patch",
})
CODE_NAMES = frozenset({"makefile", "dockerfile", "cmakelists.txt", "gemfile", "rakefile", "vagrantfile"})
TEXT_NAMES = frozenset({"readme", "license", "copying", "authors", "changelog", "notice"})
SUPPORTED_EXTS = MARKDOWN_EXTS | HTML_EXTS | CSV_EXTS | DOCX_EXTS | TEXT_EXTS | CODE_EXTS | {".pdf"}

SUPPORTED_SUMMARY = "PDF, Word (.docx), text, Markdown, HTML, CSV and source-code files"

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# Formats people try to attach, with what to do instead.
_UNSUPPORTED_HINTS: dict[str, str] = {
    ".doc": "It is an old-format Word document: open it in Word or LibreOffice and save it as .docx.",
    ".rtf": "Save it as .docx or .txt first.",
    ".odt": "Save it as .docx first.",
    ".xls": "Save the sheet as CSV first.",
    ".xlsx": "Save the sheet as CSV first.",
    ".ods": "Save the sheet as CSV first.",
    ".ppt": "Export the slides as PDF first.",
    ".pptx": "Export the slides as PDF first.",
    ".epub": "Convert it to PDF or text first.",
}
_IMAGE_MAGIC = (b"\x89PNG\r\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a")
_IMAGE_EXTS = frozenset({".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp", ".heic", ".heif"})


def human_size(n: int) -> str:
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= scale:
            value = n / scale
            return f"{value:.0f} {unit}" if value >= 10 or value == int(value) else f"{value:.1f} {unit}"
    return f"{n} bytes"


MAX_FOLDER_FILES = 2000
_SKIP_DIRS = frozenset({"node_modules", "__pycache__", "venv", "site-packages", "dist", "build"})


def expand_paths(paths: Iterable[str | os.PathLike[str]]) -> tuple[list[Path], list[Path]]:
    """Files to add: files as given, folders walked (sorted) for supported files.

    Returns (files, skipped): files in folders that Hearth cannot read, hidden
    ones and any past MAX_FOLDER_FILES are skipped rather than each reported as
    an error; a file named explicitly is always kept, so its error is shown.
    """
    files: list[Path] = []
    skipped: list[Path] = []
    for raw in paths:
        p = Path(raw).expanduser()
        if not p.is_dir():
            files.append(p)
            continue
        found = 0
        for root, dirs, names in os.walk(p):
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in _SKIP_DIRS)
            for n in sorted(names):
                f = Path(root) / n
                known = f.suffix.lower() in SUPPORTED_EXTS or n.lower() in CODE_NAMES | TEXT_NAMES
                ok = known and not n.startswith(".")
                if ok and found < MAX_FOLDER_FILES:
                    files.append(f)
                    found += 1
                else:
                    skipped.append(f)
    return files, skipped


def check_file(path: str | os.PathLike[str]) -> tuple[str, int]:
    """Cheap checks before any work: readable, not empty, under the limit, a supported type.

    Returns (kind, size in bytes).
    """
    p = Path(path)
    name = p.name
    try:
        st = p.stat()
    except OSError as exc:
        raise unreadable(p, exc) from exc
    if stat.S_ISDIR(st.st_mode):
        raise UnreadableDocument(f"{name} is a folder; add the files inside it instead.", str(p))
    if not stat.S_ISREG(st.st_mode):
        raise UnreadableDocument(f"{name} is not a regular file (a device or a pipe) and cannot be added.", str(p))
    if st.st_size == 0:
        raise EmptyDocument(f"{name} is empty (0 bytes); there is nothing in it to read.", str(p))
    if st.st_size > MAX_FILE_BYTES:
        raise DocumentTooLarge(
            f"{name} is {human_size(st.st_size)}, over the {human_size(MAX_FILE_BYTES)} limit for attachments. "
            "Split it into smaller files, or attach only the part you need.",
            str(p), size=st.st_size, limit=MAX_FILE_BYTES,
        )
    try:
        with open(p, "rb") as f:
            head = f.read(8192)
    except OSError as exc:
        raise unreadable(p, exc) from exc
    return sniff_kind(p, head), st.st_size


def sniff_kind(path: Path, head: bytes) -> str:
    """The document kind from the first bytes and the name, or a clear error."""
    name = path.name
    ext = path.suffix.lower()
    if b"%PDF-" in head[:1024]:
        return "pdf"
    if head.startswith(b"PK\x03\x04"):
        if ext in DOCX_EXTS:
            return "docx"
        raise UnsupportedDocument(_unsupported_message(name, ext), str(path))
    if head.startswith(_OLE_MAGIC):
        if ext in DOCX_EXTS:
            # Word stores password-protected .docx files in this container.
            raise UnsupportedDocument(
                f"{name} is password-protected (or an old-format Word file). Hearth cannot open encrypted "
                "Word files: save a copy without a password, as .docx, and add that.", str(path))
        raise UnsupportedDocument(_unsupported_message(name, ext), str(path))
    if ext == ".pdf":
        raise CorruptDocument(
            f"{name} is not a PDF: it has no PDF header. It may be damaged, or another kind of file renamed "
            "to .pdf.", str(path))
    if ext in DOCX_EXTS:
        raise CorruptDocument(
            f"{name} is not a Word .docx file: its content is not a .docx package. It may be damaged, or "
            "another kind of file renamed.", str(path))
    image = f"{name} is an image. Hearth cannot read text from images (OCR is not available)."
    if ext in _IMAGE_EXTS:
        raise UnsupportedDocument(image, str(path))
    if ext in MARKDOWN_EXTS:
        return "markdown"
    if ext in HTML_EXTS:
        return "html"
    if ext in CSV_EXTS:
        return "csv"
    if ext in CODE_EXTS or name.lower() in CODE_NAMES:
        return "code"
    if ext in TEXT_EXTS:
        return "text"
    if head.startswith(_IMAGE_MAGIC) or (head.startswith(b"RIFF") and head[8:12] == b"WEBP"):
        raise UnsupportedDocument(image, str(path))
    if ext in _UNSUPPORTED_HINTS or not _looks_like_text(head):
        raise UnsupportedDocument(_unsupported_message(name, ext), str(path))
    # An unknown extension (or none) whose content is readable text: take it as text.
    return "text"


def _unsupported_message(name: str, ext: str) -> str:
    what = f"{ext} files" if ext else "this kind of file"
    hint = _UNSUPPORTED_HINTS.get(ext, "")
    return f"{name} cannot be added: {what} are not supported. Hearth reads {SUPPORTED_SUMMARY}. {hint}".strip()


def _looks_like_text(head: bytes) -> bool:
    if head.startswith((codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return True
    if b"\x00" in head:
        return False
    try:
        # The 8 KB sample may end inside a multi-byte character.
        head.decode("utf-8") if len(head) < 8192 else head[:-4].decode("utf-8")
    except UnicodeDecodeError:
        return _few_controls(head.decode("latin-1"))
    return True


def _few_controls(text: str) -> bool:
    if not text:
        return True
    bad = sum(1 for ch in text if ord(ch) < 32 and ch not in "\n\r\t\f")
    return bad / len(text) < 0.02


def decode_text(data: bytes, name: str, path: str | None = None, *, encoding: str | None = None) -> str:
    """Bytes of a text file as str: BOMs honoured, then a declared encoding, UTF-8, Windows-1252."""
    for bom, enc in ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
                     (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
                     (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            return data.decode(enc, errors="replace")
    if b"\x00" in data[:65536]:
        raise UnsupportedDocument(
            f"{name} looks like a binary file, not text, so it cannot be read. Hearth reads {SUPPORTED_SUMMARY}.",
            path)
    # UTF-16/32 declared without a BOM is nearly always a wrong declaration.
    if encoding and encoding not in ("utf-8", "utf_8") and not encoding.startswith(("utf-16", "utf-32")):
        try:
            return data.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            log.info("%s does not decode as its declared %s; trying UTF-8", name, encoding)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        # Not UTF-8: legacy Western files are by far the common case; cp1252 leaves a few
        # bytes undefined, latin-1 none.
        try:
            text = data.decode("cp1252")
        except UnicodeDecodeError:
            text = data.decode("latin-1")
    if not _few_controls(text[:65536]):
        raise UnsupportedDocument(
            f"{name} looks like a binary file, not text, so it cannot be read. Hearth reads {SUPPORTED_SUMMARY}.",
            path)
    return text


_ATX_RE = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)[ \t#]*$")
_SETEXT_RE = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE_RE = re.compile(r"^ {0,3}(```|~~~)")


def markdown_headings(text: str) -> list[tuple[int, str]]:
    """ATX (``# Title``) and setext headings with their offsets, skipping fenced code."""
    out: list[tuple[int, str]] = []
    offset = 0
    in_fence = False
    prev: tuple[int, str] | None = None  # (offset, line) of the previous non-blank line
    for line in text.split("\n"):
        if _FENCE_RE.match(line):
            in_fence = not in_fence
            prev = None
        elif not in_fence:
            m = _ATX_RE.match(line)
            if m:
                out.append((offset, m.group(2).strip()))
                prev = None
            elif prev is not None and _SETEXT_RE.match(line) and prev[1].strip():
                out.append((prev[0], prev[1].strip()))
                prev = None
            else:
                prev = (offset, line) if line.strip() else None
        offset += len(line) + 1
    return out


def read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise unreadable(path, exc) from exc


def open_document(path: str | os.PathLike[str], password: str | None = None) -> Extraction:
    """Check and open a document; its pages are then read with ``iter_pages()``.

    Raises a DocumentInputError subclass for every bad input (see app.documents.errors).
    """
    p = Path(path)
    kind, _size = check_file(p)
    name, spath = p.name, str(p)
    if kind == "pdf":
        return PdfExtraction(p, password)
    if kind == "docx":
        return ListExtraction(spath, name, kind, read_docx(p))
    data = read_bytes(p)
    charset = declared_charset(data) if kind == "html" else None
    text = decode_text(data, name, spath, encoding=charset)
    if kind == "html":
        return ListExtraction(spath, name, kind, [html_to_page(text)])
    text = normalize(text)
    headings = markdown_headings(text) if kind == "markdown" else []
    return ListExtraction(spath, name, kind, [Page(None, text, headings)])


def check_has_text(name: str, kind: str, pages: list[Page], path: str | None = None) -> None:
    """No text at all is an error the user must hear about (scanned PDF, empty file)."""
    total = sum(len(p.text.strip()) for p in pages)
    if total > MAX_TEXT_CHARS:
        raise DocumentTooLarge(
            f"{name} holds {total:,} characters of text, over the {MAX_TEXT_CHARS:,} Hearth can index. "
            "Split it into smaller files.", path, size=total, limit=MAX_TEXT_CHARS)
    if total:
        return
    if kind == "pdf":
        n = len(pages)
        raise NoTextFound(
            f"No text was found in {name} ({n} page{'s' if n != 1 else ''}). It looks like a scanned document "
            "or pictures of pages; Hearth cannot read text from images (OCR is not available). If you have a "
            "version with selectable text, add that instead.", path)
    raise NoTextFound(f"No text was found in {name}; it has nothing Hearth can read.", path)


def extract(path: str | os.PathLike[str], password: str | None = None) -> ExtractedDoc:
    """The whole document at once (see ``open_document`` for page-by-page reading)."""
    with open_document(path, password) as ex:
        pages = list(ex.iter_pages())
    check_has_text(ex.name, ex.kind, pages, ex.path)
    return ExtractedDoc(ex.path, ex.name, ex.kind, pages)
