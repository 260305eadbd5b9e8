"""tests/install/deps.sh, which the install tests run to get their Debian tools, as a user who is not root.

A developer running `make test` without root but with passwordless sudo should get the tools installed,
not skipped tests; one with no such sudo gets a message saying what is needed, never a password prompt.
The commands it calls are stand-ins on PATH that record their arguments.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

DEPS_SCRIPT = Path(__file__).parent / "install" / "deps.sh"


def stand_ins(folder: Path, *, sudo_allowed: bool) -> dict[str, str]:
    """PATH with `id` saying uid 1000, nothing installed, and sudo/apt-get that log to calls.log."""
    log = folder / "calls.log"
    scripts = {
        "id": "echo 1000",
        "dpkg-query": "exit 1",  # every package missing
        "apt-get": f'echo "apt-get $*" >> {log}',
        "sudo": (
            f'echo "sudo $*" >> {log}\n'
            + ('[ "$1" = -n ] && shift\n[ "$1" = true ] && exit 0\nexec "$@"' if sudo_allowed else "exit 1")
        ),
    }
    for name, body in scripts.items():
        path = folder / name
        path.write_text(f"#!/bin/bash\n{body}\n")
        path.chmod(0o755)
    return {**os.environ, "PATH": f"{folder}:{os.environ['PATH']}"}


def run_deps(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(DEPS_SCRIPT)], env=env, capture_output=True, text=True, timeout=60)


def test_without_root_it_installs_through_passwordless_sudo(tmp_path):
    result = run_deps(stand_ins(tmp_path, sudo_allowed=True))

    assert result.returncode == 0, result.stderr
    calls = (tmp_path / "calls.log").read_text().splitlines()
    installs = [c for c in calls if c.startswith("apt-get install")]
    assert len(installs) == 1 and "shellcheck debootstrap" in installs[0]
    assert "sudo -n apt-get install" in " ".join(calls)  # through sudo, never prompting


def test_without_root_or_sudo_it_says_what_it_needs_and_installs_nothing(tmp_path):
    result = run_deps(stand_ins(tmp_path, sudo_allowed=False))

    assert result.returncode == 1
    assert "need root or passwordless sudo" in result.stderr and "debootstrap" in result.stderr
    assert not any(c.startswith("apt-get") for c in (tmp_path / "calls.log").read_text().splitlines())
