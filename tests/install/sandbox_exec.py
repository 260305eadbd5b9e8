"""Run a command under the seccomp rules that maskwatch.service asks systemd for, without systemd.

    /usr/bin/python3 sandbox_exec.py UNIT_FILE COMMAND [ARGS...]

It reads the unit's SystemCallFilter=, SystemCallErrorNumber=, MemoryDenyWriteExecute= and
RestrictAddressFamilies= lines, builds the same filters systemd 252 loads (the groups expanded by
`systemd-analyze syscall-filter`, each protection as its own filter, so the strictest action wins), sets
no_new_privs and execs COMMAND. That shows the daemon, LiteRT's XNNPACK, numpy and OpenCV survive the
unit's syscall allow-list and write-xor-execute memory on this machine, which a test can check in
seconds; the debootstrap test then boots the real unit under systemd.

Needs Debian's python3-seccomp (libseccomp's bindings), hence /usr/bin/python3.
"""

from __future__ import annotations

import contextlib
import errno
import mmap
import os
import socket
import subprocess
import sys
from pathlib import Path

import seccomp

PROT_WRITE, PROT_EXEC, SHM_EXEC = mmap.PROT_WRITE, mmap.PROT_EXEC, 0o100000


def unit_values(unit: Path, key: str) -> list[str]:
    """Every value of `key` in the [Service] section, in order (an empty assignment resets the list)."""
    values: list[str] = []
    for line in unit.read_text().splitlines():
        if line.startswith(f"{key}="):
            value = line.split("=", 1)[1].strip()
            values = values + [value] if value else []
    return values


def expand(names: list[str], seen: set[str] | None = None) -> set[str]:
    """System call names, with @groups expanded the way systemd does."""
    seen = set() if seen is None else seen
    calls: set[str] = set()
    for name in names:
        if not name.startswith("@"):
            calls.add(name)
            continue
        if name in seen:
            continue
        seen.add(name)
        listing = subprocess.run(
            ["systemd-analyze", "syscall-filter", name], capture_output=True, text=True, check=True
        ).stdout.splitlines()[1:]
        members = [item.strip() for item in listing if item.strip() and not item.strip().startswith("#")]
        calls |= expand(members, seen)
    return calls


def allowed_calls(unit: Path) -> set[str]:
    """SystemCallFilter=: the first allow-list, minus every later `~` deny-list."""
    allowed: set[str] = set()
    for value in unit_values(unit, "SystemCallFilter"):
        deny = value.startswith("~")
        names = value.lstrip("~").split()
        allowed = allowed - expand(names) if deny else allowed | expand(names)
    return allowed


def add_rule(f: seccomp.SyscallFilter, action, name: str, *args) -> None:
    # A name that is no system call on this architecture is skipped, as systemd does.
    with contextlib.suppress(RuntimeError, ValueError):
        f.add_rule(action, name, *args)


def syscall_filter(unit: Path) -> seccomp.SyscallFilter:
    error = getattr(errno, (unit_values(unit, "SystemCallErrorNumber") or ["EPERM"])[-1])
    f = seccomp.SyscallFilter(defaction=seccomp.ERRNO(error))
    for name in sorted(allowed_calls(unit)):
        add_rule(f, seccomp.ALLOW, name)
    return f


def write_xor_execute_filter() -> seccomp.SyscallFilter:
    """MemoryDenyWriteExecute=yes as systemd's seccomp filter: no W+X mapping, no exec gained later."""
    f = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    wx = PROT_WRITE | PROT_EXEC
    add_rule(f, seccomp.ERRNO(errno.EPERM), "mmap", seccomp.Arg(2, seccomp.MASKED_EQ, wx, wx))
    for call in ("mprotect", "pkey_mprotect"):
        add_rule(f, seccomp.ERRNO(errno.EPERM), call, seccomp.Arg(2, seccomp.MASKED_EQ, PROT_EXEC, PROT_EXEC))
    add_rule(f, seccomp.ERRNO(errno.EPERM), "shmat", seccomp.Arg(2, seccomp.MASKED_EQ, SHM_EXEC, SHM_EXEC))
    return f


def address_family_filter(unit: Path) -> seccomp.SyscallFilter:
    """RestrictAddressFamilies=: socket() in any other family fails with EAFNOSUPPORT."""
    allowed = {
        getattr(socket, name)
        for value in unit_values(unit, "RestrictAddressFamilies")
        for name in value.split()
    }
    f = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    for family in range(64):
        if family not in allowed:
            add_rule(f, seccomp.ERRNO(errno.EAFNOSUPPORT), "socket", seccomp.Arg(0, seccomp.EQ, family))
    return f


def main() -> int:
    unit, command = Path(sys.argv[1]), sys.argv[2:]
    filters = []
    if unit_values(unit, "MemoryDenyWriteExecute")[-1:] == ["yes"]:
        filters.append(write_xor_execute_filter())
    if unit_values(unit, "RestrictAddressFamilies"):
        filters.append(address_family_filter(unit))
    # The allow-list goes last, as in systemd: it may not allow seccomp() itself.
    filters.append(syscall_filter(unit))
    for f in filters:
        f.load()  # libseccomp sets no_new_privs first, as NoNewPrivileges=yes does
    os.execvp(command[0], command)


if __name__ == "__main__":
    sys.exit(main())
