"""Find BlazeFace keypoints for the training faces once: `python -m train.keypoints [--data DIR ...]`.

The mask synthesizer needs eyes, nose, mouth and ears of each unmasked face, and cleaning faces2 needs
to know which "with_mask" images hold no single face. Detection is slow next to everything else in
training, so it runs once and its result is cached as JSON under runs/ (one entry per record key).
Scene faces are small (median 22 px), below what BlazeFace finds in a whole frame, so each box is
detected in an upscaled window around it and matched back to the box by overlap. `--data` repeats as
`python -m train --data` does: the unmasked faces of datasets of one's own get keypoints too, so masks are
drawn on them; give the same folders to both commands.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import cv2
import numpy as np

from edge.config import DetectorConfig
from edge.datasets import load_image_bgr
from edge.faces import FaceDetector
from edge.preprocess import square_crop_box
from edge.scoring import iou_matrix
from train.data import (
    FACES2,
    SCENES,
    SHARED_PARTS,
    FaceRecord,
    add_data_argument,
    data_roots,
    real_records,
    training_records,
)

log = logging.getLogger(__name__)

DEFAULT_CACHE = Path("runs/keypoints.json")
WINDOW_SCALE = 1.2  # margin on each side of a scene box, as a fraction of its longer side
WINDOW_PX = 256  # scene windows are resized to this before detection
MIN_MATCH_IOU = 0.3


def _face_dict(box, score, keypoints) -> dict:
    return {
        "box": [round(float(v), 2) for v in box],
        "score": round(float(score), 4),
        "keypoints": [[round(float(x), 2), round(float(y), 2)] for x, y in keypoints],
    }


def detect_whole_image(detector: FaceDetector, image: np.ndarray) -> list[dict]:
    """Every face BlazeFace finds in a whole image (faces2), best score first."""
    return [_face_dict(f.box, f.score, f.keypoints) for f in detector.detect(image, frame_order="BGR")]


def detect_in_box(detector: FaceDetector, image: np.ndarray, box) -> list[dict]:
    """The face matching a VOC box, found in an upscaled window around it; [] when none overlaps enough."""
    height, width = image.shape[:2]
    x1, y1, x2, y2 = square_crop_box(box, width, height, WINDOW_SCALE)
    window = image[y1:y2, x1:x2]
    scale_x, scale_y = WINDOW_PX / window.shape[1], WINDOW_PX / window.shape[0]
    window = cv2.resize(window, (WINDOW_PX, WINDOW_PX), interpolation=cv2.INTER_LINEAR)
    faces = detector.detect(window, frame_order="BGR")
    if not faces:
        return []
    boxes = np.array(
        [
            [
                f.box[0] / scale_x + x1,
                f.box[1] / scale_y + y1,
                f.box[2] / scale_x + x1,
                f.box[3] / scale_y + y1,
            ]
            for f in faces
        ]
    )
    ious = iou_matrix(np.array([box], dtype=np.float64), boxes)[0]
    best = int(np.argmax(ious))
    if ious[best] < MIN_MATCH_IOU:
        return []
    points = [(x / scale_x + x1, y / scale_y + y1) for x, y in faces[best].keypoints]
    return [{**_face_dict(boxes[best], faces[best].score, points), "iou": round(float(ious[best]), 3)}]


def wanted(record: FaceRecord) -> bool:
    """faces2 (both classes: synthesis and junk cleaning), and unmasked faces of the scenes and of
    datasets of one's own (synthesis)."""
    if record.source == FACES2:
        return True
    own = record.source not in SHARED_PARTS and not record.source.startswith("synth:")
    return (record.source == SCENES or own) and record.label == "without_mask"


def find_keypoints(records: list[FaceRecord], data_root: Path, detector: FaceDetector) -> dict[str, dict]:
    """{record key: {"faces": [...]}} for the wanted records, reading each image once."""
    result: dict[str, dict] = {}
    cached_path, image = None, None
    started = time.monotonic()
    todo = [r for r in records if wanted(r)]
    for count, record in enumerate(todo, 1):
        if record.image != cached_path:
            cached_path, image = record.image, load_image_bgr(data_root / record.image)
        faces = (
            detect_whole_image(detector, image)
            if record.box is None
            else detect_in_box(detector, image, record.box)
        )
        result[record.key] = {"faces": faces, "image_size": [int(image.shape[1]), int(image.shape[0])]}
        if count % 500 == 0 or count == len(todo):
            log.info("keypoints: %d/%d faces (%.0f s)", count, len(todo), time.monotonic() - started)
    return result


def load_keypoints(path: Path = DEFAULT_CACHE) -> dict[str, dict]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run `python -m train.keypoints` first")
    return json.loads(path.read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m train.keypoints", description=__doc__.splitlines()[0])
    add_data_argument(
        parser,
        "the shared data folder (the default, ../shared/data) or a dataset of one's own; repeat as for "
        "python -m train",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_CACHE, help="JSON cache to write")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    records, image_root, _ = training_records(data_roots(args.data), read_shared=real_records)
    # BlazeFace's own boxes: the mask synthesizer draws on them (box refinement: docs/detector.md)
    keypoints = find_keypoints(records, image_root, FaceDetector(DetectorConfig(box_refinement=False)))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(keypoints))
    found = sum(1 for v in keypoints.values() if v["faces"])
    log.info("wrote %s: %d of %d faces have keypoints", args.out, found, len(keypoints))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
