"""Fixtures shared by the test files."""

from __future__ import annotations

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
