"""Writes that a power cut on the Pi's SD card leaves whole: the old file or the new one."""

from __future__ import annotations

import errno
import os

import pytest

from edge.atomic_files import write_atomic


def test_write_atomic_makes_the_data_durable_before_the_rename_and_the_rename_after(tmp_path, disk_calls):
    """On an SD card the rename can reach the card before the data: after a power cut, the final name
    would hold an empty or truncated file. The data is fsynced before the rename, the folder after it."""
    path = tmp_path / "counts.json"
    path.write_bytes(b"old")
    write_atomic(path, b"new data")

    tmp = path.with_name("counts.json.tmp")
    assert disk_calls == [
        ("fsync", tmp, b"new data"),
        ("replace", tmp, path),
        ("fsync", tmp_path, None),
    ]
    assert path.read_bytes() == b"new data"


def test_write_atomic_failures_leave_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "counts.json"
    path.write_bytes(b"old")
    real_fsync = os.fsync

    def fsync_refusing_files(fd):
        if not os.path.isdir(os.readlink(f"/proc/self/fd/{fd}")):
            raise OSError(errno.EIO, "Input/output error")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync_refusing_files)
    with pytest.raises(OSError, match="Input/output error"):
        write_atomic(path, b"new data")
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["counts.json"]

    def fsync_refusing_folders(fd):  # some filesystems cannot fsync a folder: the write stands
        if os.path.isdir(os.readlink(f"/proc/self/fd/{fd}")):
            raise OSError(errno.EINVAL, "Invalid argument")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync_refusing_folders)
    write_atomic(path, b"new data")
    assert path.read_bytes() == b"new data"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["counts.json"]
