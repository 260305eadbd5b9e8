"""`maskwatch detect IMAGE_OR_DIR...`: faces and mask labels in photos, for people who just want to try one.

The detector and classifier are built from the same config as `maskwatch run` (strategy, thresholds,
model, threads, and `decision.roi`, within which the fine pass looks for small faces), so a photo gives
the answer the daemon would give on one frame; single images have no tracking or voting. `--json`
prints one JSON object per image and line:
{"image", "width", "height", "faces": [{"box", "label", "score", "scores", "detector_score", "keypoints"}]},
boxes and keypoints in image pixels of the photo as shown (turned upright by its EXIF orientation).
`--annotate DIR` writes each image with its boxes, labels and scores drawn. Folders are searched at any
depth, hidden files left out, each photo read once. A path that does not exist, a folder without images,
a photo that cannot be read or a drawing that cannot be written is reported on stderr and the rest still
run; the exit status is then 1, and 2 when nothing could run (no image, a bad config or model).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

log = logging.getLogger(__name__)

VIOLATION_COLOUR = (40, 40, 230)  # BGR, as the live preview draws violations
OK_COLOUR = (60, 190, 60)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "detect",
        help="find faces in photos and label each with / without / wrongly worn mask",
        description=__doc__.split("\n\n")[1],
    )
    parser.add_argument(
        "inputs", nargs="+", type=Path, metavar="IMAGE_OR_DIR", help="images, or folders of them"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per image and line")
    parser.add_argument(
        "--annotate", type=Path, metavar="DIR", help="write annotated copies of the images here"
    )
    parser.add_argument("--config", type=Path, help="config file (detector and classifier settings)")
    parser.set_defaults(handler=handle)


def find_images(inputs: list[Path], skip: Path | None = None) -> tuple[list[tuple[Path, Path]], list[str]]:
    """(image path as given or found, its name under --annotate) for each image once, and a message for
    each input that gave none: a missing path, a folder without images. Folders are searched at any
    depth, linked ones followed, hidden files (`._x.jpg`, `__MACOSX/`) and the folder `skip` left out."""
    from edge.datasets import IMAGE_SUFFIXES, image_files

    images: list[tuple[Path, Path]] = []
    problems: list[str] = []
    seen: set[str] = set()
    for given in inputs:
        if given.is_dir():
            found = [(path, path.relative_to(given)) for path in image_files(given, skip)]
            if not found:
                problems.append(f"no images in {given} (looked for {', '.join(IMAGE_SUFFIXES)} at any depth)")
        elif given.exists():
            found = [(given, Path(given.name))]
        else:
            problems.append(f"no such file or folder: {given}")
            continue
        for path, relative in found:  # the same photo named twice (a folder and a file in it) runs once
            if os.path.realpath(path) not in seen:
                seen.add(os.path.realpath(path))
                images.append((path, relative))
    return images, problems


def face_records(faces, predictions) -> list[dict]:
    """The JSON form of each face: rounded pixels, the top label and every label's probability."""
    return [
        {
            "box": [round(v, 1) for v in face.box],
            "label": prediction.label,
            "score": round(prediction.score, 4),
            "scores": {label: round(p, 4) for label, p in prediction.scores.items()},
            "detector_score": round(face.score, 4),
            "keypoints": [[round(x, 1), round(y, 1)] for x, y in face.keypoints],
        }
        for face, prediction in zip(faces, predictions, strict=True)
    ]


def annotate(image, records: list[dict]):
    """A copy of the BGR image with each face's box, keypoints, label and score drawn."""
    import cv2

    from edge.scoring import is_violation

    out = image.copy()
    scale = max(0.4, out.shape[0] / 960)
    thickness = max(1, round(out.shape[0] / 400))
    for record in records:
        colour = VIOLATION_COLOUR if is_violation(record["label"]) else OK_COLOUR
        x1, y1, x2, y2 = (int(round(v)) for v in record["box"])
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, thickness)
        for x, y in record["keypoints"]:
            cv2.circle(out, (int(round(x)), int(round(y))), thickness + 1, colour, -1)
        text = f"{record['label']} {record['score']:.2f}"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        ty = y1 - 4 if y1 - th - base - 4 > 0 else y2 + th + 4
        cv2.rectangle(out, (x1, ty - th - 3), (x1 + tw + 4, ty + base - 1), colour, -1)
        cv2.putText(
            out, text, (x1 + 2, ty - 1), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA
        )
    return out


def _summary_line(path: Path, width: int, height: int, records: list[dict]) -> str:
    lines = [f"{path} ({width}x{height}): {len(records)} face{'s' if len(records) != 1 else ''}"]
    for record in records:
        x1, y1, x2, y2 = record["box"]
        lines.append(
            f"  {record['label']:<22} {record['score']:.2f}  box {x1:.0f},{y1:.0f},{x2:.0f},{y2:.0f}"
            f"  ({y2 - y1:.0f} px)"
        )
    return "\n".join(lines)


def _writable(relative: Path) -> Path:
    """`relative`, or the same name as PNG where OpenCV has no writer for its suffix (`.jfif`, a name
    without one) and for GIF, which OpenCV writes only from 4.11 on (and in 256 colours)."""
    import cv2

    from edge.datasets import IMAGE_SUFFIXES

    suffix = relative.suffix.lower()
    if suffix in IMAGE_SUFFIXES and suffix != ".gif" and cv2.haveImageWriter(f"x{suffix}"):
        return relative
    return relative.with_name(f"{relative.stem if suffix else relative.name}.png")


def _unused(target: Path, written: set[Path]) -> Path:
    """`target`, or `name-2.ext`, `name-3.ext` ... when an earlier input of this run (`a/x.jpg` and
    `b/x.jpg` given by path) was already written there, so no annotated copy silently replaces another."""
    candidate, n = target, 1
    while candidate in written:
        n += 1
        candidate = target.with_name(f"{target.stem}-{n}{target.suffix}")
    written.add(candidate)
    return candidate


def annotation_targets(images: list[tuple[Path, Path]], folder: Path) -> list[Path]:
    """Where each image's drawing goes under `folder`: its name, or the folder's tree below an input folder."""
    written: set[Path] = set()
    return [_unused(folder / _writable(relative), written) for _, relative in images]


def _prepare_annotate_folder(
    folder: Path, images: list[tuple[Path, Path]], targets: list[Path]
) -> str | None:
    """Makes `folder`; what is wrong with it, before any model loads: no folder can be made there, or a
    drawing would replace one of the photos being read (`--annotate` naming the photos' own folder)."""
    if folder.exists() and not folder.is_dir():
        return f"--annotate {folder}: it is a file, not a folder"
    inputs = {os.path.realpath(path): path for path, _ in images}
    for target in targets:
        if os.path.realpath(target) in inputs:
            return (
                f"--annotate {folder}: its drawing would replace {inputs[os.path.realpath(target)]}, "
                "a photo being read; give a folder of its own"
            )
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"--annotate {folder}: cannot make the folder: {exc.strerror or exc}"
    return None


def _write_image(target: Path, image) -> None:
    """Encoded by OpenCV, written by Python: OpenCV's own imwrite crashes on a file name that is not
    valid UTF-8 (one from an old camera card or a zip). Raises OSError."""
    import cv2

    ok, encoded = cv2.imencode(target.suffix.lower(), image)
    if not ok:
        raise OSError(f"OpenCV cannot encode {target.suffix}")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(encoded.tobytes())


def handle(args: argparse.Namespace) -> int:
    from edge.classifier import MaskClassifier
    from edge.commands.run import config_path
    from edge.config import load_config
    from edge.faces import FaceDetector

    images, problems = find_images(args.inputs, skip=args.annotate)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if not images:
        return 2
    targets = annotation_targets(images, args.annotate) if args.annotate else [None] * len(images)
    problem = args.annotate and _prepare_annotate_folder(args.annotate, images, targets)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    try:
        config = load_config(config_path(args.config))
        # not a stream: every photo is searched in full, the fine pass within decision.roi as in the daemon
        detector = FaceDetector.from_config(config)
        model = Path(config.classifier.model) if config.classifier.model else None
        classifier = MaskClassifier(model, threads=config.classifier.threads)
    except (ValueError, OSError, ImportError, RuntimeError) as exc:  # config, missing or broken model files
        print(f"error: {exc}", file=sys.stderr)
        return 2
    failures = len(problems)
    for (path, _), target in zip(images, targets, strict=True):
        failures += not _detect_one(path, target, detector, classifier, args.json)
    return 1 if failures else 0


def _detect_one(path: Path, target: Path | None, detector, classifier, as_json: bool) -> bool:
    """Prints one photo's faces (and draws them into `target`); False, with the reason on stderr, when
    the photo cannot be read or its drawing cannot be written."""
    from edge.datasets import DatasetError, load_image_bgr

    try:
        image = load_image_bgr(path)
    except DatasetError as exc:  # its message names the file and why: empty, cut short, not an image
        print(f"error: {exc}", file=sys.stderr)
        return False
    faces = detector.detect(image, "BGR")
    records = face_records(faces, classifier.classify(image, faces, "BGR"))
    height, width = image.shape[:2]
    if as_json:
        print(
            json.dumps({"image": str(path), "width": width, "height": height, "faces": records}), flush=True
        )
    else:
        print(_summary_line(path, width, height, records), flush=True)
    if target is not None:
        try:
            _write_image(target, annotate(image, records))
        except OSError as exc:
            print(f"error: cannot write {target}: {exc.strerror or exc}", file=sys.stderr)
            return False
    return True
