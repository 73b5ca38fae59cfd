"""Output files that are replaced whole or not at all."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


@contextlib.contextmanager
def replaced_whole(path: str | os.PathLike[str], mode: str = "w") -> Iterator[IO[Any]]:
    """Open ``path`` for writing (``mode`` "w": UTF-8 text with ``\\n`` line ends, or
    "wb") so that it is replaced whole or not at all.

    What is written goes to a temporary file beside the target, which replaces it when
    the block ends; an exception or Ctrl-C inside the block leaves the previous file as
    it was and no partial one (a cut-off trace or results file would still read as a
    valid, smaller one). The file keeps the target's permissions, or gets the usual ones
    for a new file. Anything but a regular file (``/dev/null``, ``/dev/stdout``, a pipe)
    is written directly. A symbolic link's target is the file replaced.
    """
    target = Path(path)
    if target.is_symlink():
        target = target.resolve()
    binary = "b" in mode
    encoding, newline = (None, None) if binary else ("utf-8", "\n")
    if target.exists() and not target.is_file():
        with open(target, mode, encoding=encoding, newline=newline) as direct:
            yield direct
        return
    if target.exists():
        permissions = target.stat().st_mode & 0o7777
    else:
        umask = os.umask(0)
        os.umask(umask)
        permissions = 0o666 & ~umask
    fd, partial = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part",
                                   dir=target.parent)
    try:
        with open(fd, mode, encoding=encoding, newline=newline) as handle:
            yield handle
        os.chmod(partial, permissions)
        os.replace(partial, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(partial)
        raise
