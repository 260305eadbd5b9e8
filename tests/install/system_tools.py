"""The system tools the install tests need (shellcheck, debootstrap, systemd-analyze), installed when missing.

Tests call `require_tool`, which runs tests/install/deps.sh (apt, Debian's packages) the first time a
tool is absent, so CI needs no separate step; a test skips only when the tool truly cannot be installed.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

DEPS_SCRIPT = Path(__file__).with_name("deps.sh")


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        result = subprocess.run(["bash", str(DEPS_SCRIPT)], capture_output=True, text=True)
        path = shutil.which(name)
        if path is None:
            pytest.skip(
                f"{name} is not installed and {DEPS_SCRIPT.name} could not install it: {result.stderr.strip()}"
            )
    return path
