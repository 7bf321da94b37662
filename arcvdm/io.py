"""Atomic file writes and safe file names: no finished result is ever half-written or written outside its folder."""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import tempfile
import unicodedata
from pathlib import Path
from typing import Any

from arcvdm.errors import ArcvdmError, OutputError

# Characters Windows refuses in file names (and '/' everywhere, ':' on classic macOS).
_FORBIDDEN = frozenset('/\\:*?"<>|')
# Device names Windows reserves with any extension: "con.json" cannot be created there.
_RESERVED = re.compile(r"^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³])(\.|$)", re.IGNORECASE)
# Controls, lone surrogates, line breaks and bidirectional overrides (which make a name print as another one).
_UNPRINTABLE = frozenset(("Cc", "Cs", "Zl", "Zp"))
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")
# A file name holds 255 bytes; the atomic writer's temporary adds 23 to "<name>.json".
MAX_NAME_BYTES = 200


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write to a temporary file in the same folder, fsync, then rename over `path`.

    The file's mode follows the umask, as with a plain `open` (mkstemp's 0600 would hide results from colleagues).
    Any failure to write is one line naming the path (OutputError), and leaves no temporary file behind.
    """
    path = Path(path)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise OutputError(f"cannot write {path} ({_why(path, e)}): check the path, or give another --out") from None
        raise
    return path


def _why(path: Path, error: OSError, is_file: bool = True) -> str:
    """The OS's reason, naming the file in the way when a folder on the path is a file (or the folder when `path`,
    meant to be a file, is one)."""
    in_the_way = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), None)
    if in_the_way is not None and in_the_way != path:
        return f"{in_the_way} is a file, not a folder"
    if is_file and path.is_dir():
        return f"{path} is a folder, not a file"
    return error.strerror or type(error).__name__


def writable_folder(path: str | os.PathLike, flag: str = "--out") -> Path:
    """Create the output folder `path` if needed and make sure a file can be written in it, before any work is done.

    Raises OutputError naming the path and the fix.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{flag} {path}: a file is in the way; {flag} names a folder: give a new folder path or move the file")
    return _probe(path, path, flag, "give a folder you can write to", is_file=False)


def writable_file(path: str | os.PathLike, flag: str = "--out", example: str = "submission.json") -> Path:
    """Check that the output file `path` can be written (its folder is created): OutputError otherwise."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{flag} {path}: is a folder; {flag} names a file here: give a file path such as {path / example}")
    _probe(path.parent, path, flag, "give a path you can write to")
    return path


def _probe(folder: Path, path: Path, flag: str, fix: str, is_file: bool = True) -> Path:
    """Create `folder` and write a nameless file in it. Permission is probed by writing, not read from mode bits,
    which say nothing for root, read-only mounts or ACLs."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise OutputError(f"{flag} {path}: cannot write here ({_why(path, e, is_file)}): {fix}") from None
    return folder


def read_json(path: str | os.PathLike) -> Any:
    """Parse a JSON file. Nesting deeper than Python's recursion limit (`[` x 100000) is a ValueError like any
    malformed JSON, never a RecursionError that would abort a whole folder."""
    text = Path(path).read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("nested too deeply: arrays or objects thousands of levels deep") from None


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=1, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    # numpy scalars and arrays, Paths and pydantic models appear in results.
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json")
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")


def safe_name(name: str, what: str = "task id") -> str:
    """The file name (without extension) that `name` is stored under inside a run folder or an export.

    It is `name` in Unicode NFC form, accepted when that is one ordinary path component on Linux, macOS and
    Windows: letters of any script, digits, spaces and inner dots are fine ('flïp-ü', 'a b', 'x..y'). Raises
    ArcvdmError naming the rule for an empty name, a path separator or character Windows refuses, a control
    character, a leading dot ('.', '..', hidden files), a leading or trailing space, a trailing dot, a Windows
    device name (con, nul, com1...), a name ending in .json or .html (it would clash with the files beside it) or
    one over MAX_NAME_BYTES. Two names that differ only in case share a file on case-insensitive filesystems:
    callers that write several names check that (arcvdm/runner.py). The id itself is kept inside the file.
    """
    normal = unicodedata.normalize("NFC", name)
    why = _unsafe_because(normal)
    if why:
        shown = repr(name) if len(name) <= 60 else repr(name[:57]) + "…"
        raise ArcvdmError(f"{what} {shown} cannot be used as a file name ({why}): rename the task")
    return normal


def _unsafe_because(name: str) -> str | None:
    if not name:
        return "it is empty"
    bad = next((c for c in name if c in _FORBIDDEN or c in _BIDI or unicodedata.category(c) in _UNPRINTABLE), None)
    if bad is not None:
        return f"{bad!r} is not allowed in file names: no path separators, control characters or any of {''.join(sorted(_FORBIDDEN))}"
    if name.startswith("."):
        return "a leading dot hides the file, and '.' and '..' name folders"
    if name != name.strip():
        return "leading or trailing spaces"
    if name.endswith("."):
        return "a trailing dot, which Windows drops"
    if _RESERVED.match(name):
        return f"{name.split('.')[0]!r} is a device name on Windows"
    if name.lower().endswith((".json", ".html")):
        return "it ends in .json or .html, like the files written beside it"
    size = len(name.encode("utf-8", "surrogatepass"))
    if size > MAX_NAME_BYTES:
        return f"{size} bytes in UTF-8, at most {MAX_NAME_BYTES}"
    return None
