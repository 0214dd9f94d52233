"""Writing a file so that nothing is lost: atomically, through links, with the right permissions.

:func:`atomic_write` writes a temporary file beside the target, fsyncs it and renames it over the
target, so readers see the old file or the new one, never a mix, and a crash leaves the old one.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path
from typing import Any

_CHUNK = 1 << 20


def _write_chunk(file: Any, chunk: memoryview) -> None:
    file.write(chunk)


def resolve_target(path: str | os.PathLike[str]) -> Path:
    """The file a write to ``path`` replaces: through symbolic links, in a directory that exists.

    Raises:
        IsADirectoryError: for a directory, or a path ending in a separator.
        FileNotFoundError / NotADirectoryError: when the directory to write in is missing.
    """
    shown = os.fspath(path)
    if str(shown).endswith(("/", os.sep)):
        raise IsADirectoryError(
            f"cannot write {shown!r}: it ends with a separator; name a file, such as "
            f"{os.path.join(shown, 'model.safetensors')!r}"
        )
    target = Path(os.path.realpath(path))  # a link is written through, not replaced
    if target.is_dir():
        raise IsADirectoryError(f"cannot write {shown!r}: it is a directory")
    directory = target.parent
    if not directory.exists():
        raise FileNotFoundError(
            f"cannot write {shown!r}: the directory {str(directory)!r} does not exist"
        )
    if not directory.is_dir():
        raise NotADirectoryError(f"cannot write {shown!r}: {str(directory)!r} is not a directory")
    return target


def check_writable(path: str | os.PathLike[str]) -> Path:
    """:func:`resolve_target`, and the directory must let this process create a file in it.

    Raises:
        PermissionError: naming the directory, as well as :func:`resolve_target`'s errors.
    """
    target = resolve_target(path)
    if not os.access(target.parent, os.W_OK | os.X_OK):
        raise PermissionError(
            f"cannot write {os.fspath(path)!r}: the directory {str(target.parent)!r} is not "
            "writable"
        )
    return target


def _umask() -> int:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)  # no /proc: read the mask by setting it, and put it back
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a mix.

    A temporary file in the same directory is written, flushed and fsynced, then renamed over
    the target with ``os.replace``, and the directory is fsynced. On any error the temporary file
    is removed and the previous file is untouched. A symbolic link is written through (the file
    it points to is replaced); an existing file keeps its permissions, a new one gets those the
    umask allows, as ``open`` would give it.
    """
    target = resolve_target(path)
    directory = target.parent
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        mode = 0o666 & ~_umask()
    fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            view = memoryview(data)
            for start in range(0, len(view), _CHUNK):
                _write_chunk(file, view[start : start + _CHUNK])
            file.flush()
            os.fchmod(file.fileno(), mode)
            os.fsync(file.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)
