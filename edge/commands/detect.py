"""`maskwatch detect IMAGE_OR_DIR...`: faces and mask labels in photos, for people who just want to try one.

The detector and classifier are built from the same config as `maskwatch run` (strategy, thresholds,
model, threads, and `decision.roi`, within which the fine pass looks for small faces), so a photo gives
the answer the daemon would give on one frame; single images have no tracking or voting. `--json`
prints one JSON object per image and line:
{"image", "width", "height", "faces": [{"box", "label", "score", "scores", "detector_score", "keypoints"}]},
boxes and keypoints in image pixels. `--annotate DIR` writes each image with its boxes, labels and scores drawn.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterator
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


def find_images(inputs: list[Path]) -> Iterator[tuple[Path, Path]]:
    """(image path as given or found, its name under --annotate), folders searched recursively."""
    from edge.datasets import IMAGE_SUFFIXES

    for given in inputs:
        if given.is_dir():
            for path in sorted(
                p for p in given.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
            ):
                yield path, path.relative_to(given)
        else:
            yield given, Path(given.name)


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
    return relative.with_suffix(".png") if relative.suffix.lower() == ".gif" else relative


def _unused(target: Path, written: set[Path]) -> Path:
    """`target`, or `name-2.ext`, `name-3.ext` ... when an earlier input of this run (`a/x.jpg` and
    `b/x.jpg` given by path) was already written there, so no annotated copy silently replaces another."""
    candidate, n = target, 1
    while candidate in written:
        n += 1
        candidate = target.with_name(f"{target.stem}-{n}{target.suffix}")
    written.add(candidate)
    return candidate


def handle(args: argparse.Namespace) -> int:
    import cv2

    from edge.classifier import MaskClassifier
    from edge.commands.run import config_path
    from edge.config import ConfigError, load_config
    from edge.datasets import DatasetError, load_image_bgr
    from edge.faces import FaceDetector
    from edge.model_metadata import ModelMetadataError

    if args.json:  # stdout carries only the JSON lines
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler) and handler.stream is sys.stdout:
                handler.setStream(sys.stderr)
    missing = [str(p) for p in args.inputs if not p.exists()]
    if missing:
        print(f"error: no such file or folder: {', '.join(missing)}", file=sys.stderr)
        return 2
    try:
        config = load_config(config_path(args.config))
        # not a stream: every photo is searched in full, the fine pass within decision.roi as in the daemon
        detector = FaceDetector.from_config(config)
        model = Path(config.classifier.model) if config.classifier.model else None
        classifier = MaskClassifier(model, threads=config.classifier.threads)
    except (ConfigError, ModelMetadataError, FileNotFoundError, ImportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    failures = 0
    written: set[Path] = set()
    for path, relative in find_images(args.inputs):
        try:
            image = load_image_bgr(path)
        except DatasetError as exc:  # its message names the file and why: empty, cut short, not an image
            print(f"error: {exc}", file=sys.stderr)
            failures += 1
            continue
        faces = detector.detect(image, "BGR")
        records = face_records(faces, classifier.classify(image, faces, "BGR"))
        height, width = image.shape[:2]
        if args.json:
            print(
                json.dumps({"image": str(path), "width": width, "height": height, "faces": records}),
                flush=True,
            )
        else:
            print(_summary_line(path, width, height, records), flush=True)
        if args.annotate:
            # OpenCV writes no GIF before 4.11: a GIF's drawing is saved as PNG
            target = _unused(args.annotate / _writable(relative), written)
            target.parent.mkdir(parents=True, exist_ok=True)
            if not cv2.imwrite(str(target), annotate(image, records)):
                print(f"error: cannot write {target}", file=sys.stderr)
                failures += 1
    return 1 if failures else 0
