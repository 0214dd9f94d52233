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

_KINDS = {
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


def _write_chunk(file: Any, chunk: memoryview) -> None:
    file.write(chunk)


def resolve_target(path: str | os.PathLike[str]) -> Path:
    """The file a write to ``path`` replaces: through symbolic links, in a directory that exists.

    Raises:
        IsADirectoryError: for a directory, or a path ending in a separator.
        FileExistsError: for an existing target that is not a regular file (a FIFO, a device
            node: never replaced, also through a link).
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
    try:
        kind = os.stat(target).st_mode
    except OSError:  # nothing there yet, or a missing directory: said below
        kind = stat.S_IFREG
    if not stat.S_ISREG(kind):
        what = _KINDS.get(stat.S_IFMT(kind), "not a regular file")
        through = (
            f" (through links, {str(target)!r})" if str(target) != os.path.abspath(shown) else ""
        )
        raise FileExistsError(
            f"cannot write {shown!r}{through}: it is {what}, not a regular file; only a regular "
            "file is ever replaced"
        )
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


def _unnamed_file(directory: Path, name: str) -> tuple[int, str | None]:
    """A file to write in ``directory``: without a name where the system can (Linux's
    ``O_TMPFILE``; it is named by a link once complete), else a hidden temporary name.
    Returns (descriptor, the temporary name or None)."""
    flag = getattr(os, "O_TMPFILE", 0)
    if flag and os.path.isdir("/proc/self/fd"):
        try:
            return os.open(directory, flag | os.O_WRONLY, 0o600), None
        except OSError:  # a file system without unnamed files: a named temporary instead
            pass
    return tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")


def _link(fd: int, name: str) -> None:
    """Give the unnamed file ``fd`` the name ``name`` (linkat through /proc, following the
    descriptor's link: plain ``link`` would link the /proc entry itself)."""
    proc = os.open("/proc/self/fd", os.O_RDONLY)
    try:
        os.link(str(fd), name, src_dir_fd=proc, follow_symlinks=True)
    finally:
        os.close(proc)


def _temporary_name(directory: Path, name: str) -> str:
    """A free hidden name beside the target, for the moment between link and rename."""
    for _ in range(100):
        candidate = directory / f".{name}.{os.urandom(6).hex()}.tmp"
        if not os.path.lexists(candidate):
            return str(candidate)
    raise FileExistsError(f"no free temporary name for {name!r} in {str(directory)!r}")


def atomic_write(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a mix.

    A temporary file in the same directory is written, flushed and fsynced, then renamed over
    the target with ``os.replace``, and the directory is fsynced. On Linux the file has no name
    until it is complete, so a process killed while writing leaves nothing behind. On any error
    the temporary file is removed and the previous file is untouched. A symbolic link is written
    through (the file it points to is replaced); an existing file keeps its permissions, a new
    one gets those the umask allows, as ``open`` would give it. Only a regular file is ever
    replaced (see :func:`resolve_target`).
    """
    target = resolve_target(path)
    directory = target.parent
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        mode = 0o666 & ~_umask()
    fd, tmp_name = _unnamed_file(directory, target.name)
    try:
        with os.fdopen(fd, "wb") as file:
            view = memoryview(data)
            for start in range(0, len(view), _CHUNK):
                _write_chunk(file, view[start : start + _CHUNK])
            file.flush()
            os.fchmod(file.fileno(), mode)
            os.fsync(file.fileno())
            if tmp_name is None:  # named only now, whole and on disk: a kill leaves no remnant
                tmp_name = _temporary_name(directory, target.name)
                _link(file.fileno(), tmp_name)
        os.replace(tmp_name, target)
    except BaseException:
        if tmp_name is not None:
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
