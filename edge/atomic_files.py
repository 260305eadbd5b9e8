"""Files that a power cut leaves whole: the old version or the new one, never half of one.

A Pi's SD card may store a rename before the data it names, so a write that only renames a temporary
file into place can still leave an empty or truncated file after a power cut. Standard library only:
the install-time wheel extraction (`edge.wheel_files`, run by setup.sh with the system python) uses it
as well as the daemon.
"""

from __future__ import annotations

import os
from pathlib import Path

TMP_SUFFIX = ".tmp"  # write_atomic's temporary file is the final name plus this


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file (`path` + TMP_SUFFIX), so a crash, a power cut or
    a full disk leaves the old file or the new one, never a half one. The data is fsynced before the
    rename: an SD card may otherwise store the rename first, and a power cut then leaves an empty or
    truncated file under the final name. The folder is fsynced after it, so the rename itself lasts."""
    tmp = path.with_name(path.name + TMP_SUFFIX)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
    fsync_folder(path.parent)


def fsync_folder(folder: Path) -> None:
    """Make the renames in `folder` durable. Best effort: some filesystems refuse to fsync a folder, and
    the file is in place by then either way."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
