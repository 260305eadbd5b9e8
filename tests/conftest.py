"""Fixtures shared by the test files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory


@pytest.fixture(autouse=True)
def state_dir_in_tmp(tmp_path, monkeypatch):
    """The daemon's default state folder is /var/lib/maskwatch: no test writes there (CI runs as root)."""
    monkeypatch.setenv("MASKWATCH_STATE_DIR", str(tmp_path / "default-state"))


@pytest.fixture
def pins():
    """A fresh mock pin factory for each test, as the default too, reset afterwards (gpiozero's own pattern).

    Tests pass it as `pin_factory=` and assert on what each pin did: `pins.pin(17).assert_states(...)`.
    Plain mock pins keep their last state when released, so "off at close" is visible.
    """
    saved = Device.pin_factory
    factory = MockFactory()
    Device.pin_factory = factory
    try:
        yield factory
    finally:
        factory.reset()
        Device.pin_factory = saved


@pytest.fixture
def disk_calls(monkeypatch) -> list[tuple]:
    """os.fsync and os.replace calls in order, both still doing their work: ("fsync", target, its bytes,
    or None for a folder) and ("replace", source, destination). What reaches an SD card before a power cut
    is decided by this order, which no file's content shows afterwards."""
    calls: list[tuple] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        target = Path(os.readlink(f"/proc/self/fd/{fd}"))
        calls.append(("fsync", target, None if target.is_dir() else target.read_bytes()))
        real_fsync(fd)

    def replace(source, destination):
        calls.append(("replace", Path(source), Path(destination)))
        real_replace(source, destination)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return calls
