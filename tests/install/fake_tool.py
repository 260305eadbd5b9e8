#!/usr/bin/env python3
"""Stand-ins for the system commands setup.sh runs, so tests can run it for real under a root prefix.

`fake_tool.py NAME ARGS...` records `{"tool": NAME, "args": ARGS}` as one JSON line in $FAKE_LOG and
then does just enough of what the real tool does to the files under $FAKE_ROOT for the next step to
see it: useradd writes etc/passwd and etc/group, systemctl enable makes the wants/ link, apt-get marks
packages installed, `python3 -m venv` makes a venv whose python fakes pip, fetch_detector and the
installed `maskwatch` command. Nothing outside $FAKE_ROOT is touched.

Knobs: FAKE_PYTHON_VERSION ("3.11 64"), FAKE_NUMPY_VERSION ("1.24.2"), FAKE_CHECK_RC (0).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

SELF = Path(__file__).resolve()
ROOT = Path(os.environ.get("FAKE_ROOT", "/nonexistent-fake-root"))


def log(tool: str, args: list[str]) -> None:
    with open(os.environ["FAKE_LOG"], "a") as f:
        f.write(json.dumps({"tool": tool, "args": args}) + "\n")


def under_root(path: str) -> Path:
    return ROOT / path.lstrip("/")


# --- account database -------------------------------------------------------------------------------


def read_table(name: str) -> list[list[str]]:
    path = under_root(f"/etc/{name}")
    return [line.split(":") for line in path.read_text().splitlines() if line] if path.exists() else []


def write_table(name: str, rows: list[list[str]]) -> None:
    under_root(f"/etc/{name}").write_text("".join(":".join(row) + "\n" for row in rows))


def next_id(rows: list[list[str]]) -> int:
    return max([999] + [int(r[2]) for r in rows if int(r[2]) < 60000]) + 1


def groupadd(args: list[str]) -> int:
    groups = read_table("group")
    groups.append([args[-1], "x", str(next_id(groups)), ""])
    write_table("group", groups)
    return 0


def add_members(user: str, names: list[str]) -> None:
    groups = read_table("group")
    for row in groups:
        members = [m for m in row[3].split(",") if m]
        if row[0] in names and user not in members:
            row[3] = ",".join(members + [user])
    write_table("group", groups)


def option(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args else None


def useradd(args: list[str]) -> int:
    user = args[-1]
    users, groups = read_table("passwd"), read_table("group")
    uid = next_id(users)
    gid = next_id(groups)
    groups.append([user, "x", str(gid), ""])
    write_table("group", groups)
    users.append(
        [
            user,
            "x",
            str(uid),
            str(gid),
            option(args, "--comment") or "",
            option(args, "--home-dir") or "/",
            option(args, "--shell") or "/bin/sh",
        ]
    )
    write_table("passwd", users)
    add_members(user, (option(args, "--groups") or "").split(","))
    return 0


def usermod(args: list[str]) -> int:
    add_members(args[-1], (option(args, "--groups") or "").split(","))
    return 0


def userdel(args: list[str]) -> int:
    user = args[-1]
    write_table("passwd", [r for r in read_table("passwd") if r[0] != user])
    groups = [r for r in read_table("group") if r[0] != user]
    for row in groups:
        row[3] = ",".join(m for m in row[3].split(",") if m and m != user)
    write_table("group", groups)
    return 0


# --- packages and services --------------------------------------------------------------------------

DPKG_DIR = "/var/lib/fake-dpkg"


def apt_get(args: list[str]) -> int:
    if "install" in args:
        for pkg in args[args.index("install") + 1 :]:
            if not pkg.startswith("-"):
                under_root(f"{DPKG_DIR}/{pkg}").parent.mkdir(parents=True, exist_ok=True)
                under_root(f"{DPKG_DIR}/{pkg}").touch()
    return 0


def dpkg_query(args: list[str]) -> int:
    if under_root(f"{DPKG_DIR}/{args[-1]}").exists():
        print("ii ", end="")
        return 0
    return 1


def systemctl(args: list[str]) -> int:
    verb, unit = args[0], (args[1:] or [""])[-1]
    wants = under_root(f"/etc/systemd/system/multi-user.target.wants/{unit}.service")
    active = under_root(f"/run/fake-systemd/{unit}.active")
    if verb == "is-enabled":
        print("enabled" if wants.is_symlink() else "disabled")
        return 0 if wants.is_symlink() else 1
    if verb == "is-active":
        return 0 if active.exists() else 3
    if verb == "enable":
        wants.parent.mkdir(parents=True, exist_ok=True)
        wants.symlink_to(f"/etc/systemd/system/{unit}.service")
    elif verb == "disable":
        wants.unlink(missing_ok=True)
    elif verb in ("start", "restart"):
        active.parent.mkdir(parents=True, exist_ok=True)
        active.touch()
    elif verb == "stop":
        active.unlink(missing_ok=True)
    return 0


# --- Python: the system interpreter, the venv's, and the installed command --------------------------


def write_wrapper(path: Path, tool: str) -> None:
    """An executable at `path` that runs this tool as `tool`; FAKE_BIN tells it where it lives."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'#!/bin/sh\nFAKE_BIN={path.parent} exec {sys.executable} {SELF} {tool} "$@"\n')
    path.chmod(0o755)


def run_code(code: str) -> int:
    """`python -c`: setup.sh asks only for the version, pointer size and numpy's version."""
    if "numpy" in code:
        print(os.environ.get("FAKE_NUMPY_VERSION", "1.24.2"))
    elif "struct" in code:
        print(os.environ.get("FAKE_PYTHON_VERSION", "3.11 64"))
    else:
        print(os.environ.get("FAKE_PYTHON_VERSION", "3.11 64").split()[0])
    return 0


def python3(args: list[str]) -> int:
    if args[:1] == ["-c"]:
        return run_code(args[1])
    if args[:2] == ["-m", "venv"]:
        venv = Path(args[-1])
        write_wrapper(venv / "bin" / "python", "venv-python")
        (venv / "pyvenv.cfg").write_text("include-system-site-packages = true\n")
        return 0
    return 2


FETCHED = {
    "edge.fetch_detector": ("face_detection_full_range.tflite", "face_detection_short_range.tflite"),
    "edge.fetch_demo_image": ("astronaut.png",),
}


def venv_python(args: list[str]) -> int:
    if args[:1] == ["-c"]:
        return run_code(args[1])
    if args[:3] == ["-m", "pip", "install"] and "-r" not in args:
        # The maskwatch package itself: its console script appears in the venv.
        write_wrapper(Path(os.environ["FAKE_BIN"]) / "maskwatch", "maskwatch")
        return 0
    if args[:1] == ["-m"] and args[1] in FETCHED:
        target = Path(option(args, "--target"))
        target.mkdir(parents=True, exist_ok=True)
        for name in FETCHED[args[1]]:
            if not (target / name).exists():
                (target / name).write_bytes(b"fake " + name.encode())
        return 0
    return 0


def maskwatch(args: list[str]) -> int:
    return int(os.environ.get("FAKE_CHECK_RC", "0")) if args[:1] == ["check"] else 0


def runas(args: list[str]) -> int:
    os.execvp(args[0], args)


TOOLS = {
    "groupadd": groupadd,
    "useradd": useradd,
    "usermod": usermod,
    "userdel": userdel,
    "apt-get": apt_get,
    "dpkg-query": dpkg_query,
    "systemctl": systemctl,
    "python3": python3,
    "venv-python": venv_python,
    "maskwatch": maskwatch,
    "runas": runas,
}


def main() -> int:
    tool, args = sys.argv[1], sys.argv[2:]
    log(tool, args)
    return TOOLS[tool](args)


if __name__ == "__main__":
    sys.exit(main())
