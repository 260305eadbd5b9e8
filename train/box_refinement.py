"""Fit the box refinement (edge/box_refine.py): `python -m train.box_refinement [--scenes S] [--out FILE]`.

The detector runs as the daemon does (defaults, face verifier on) but with BlazeFace's own boxes, on the
VOC scenes chosen by `--scenes`: a half of `bench.detector_data.split_scenes` ("train" or "eval", seeded;
the other half stays unseen, so a fit can be scored there) or all of them. Its faces are matched one to one to the annotated boxes at IoU >= 0.3
(`edge.scoring.match_boxes`). Left out: faces cut by the image border (the annotated box, or the
detection, within EDGE_PX of it: the box then shows only part of the face), and detections under
MIN_FACE_PX tall (the daemon ignores those, and their keypoints are a few pixels apart). Each pair is
used twice, as seen and mirrored left to right, so a face turned left and one turned right get the same
rule. The fit is ridge regression (numpy only) of edge.box_refine.TARGETS on edge.box_refine.FEATURES,
standardised, the constant not penalised; predictions are later clipped to the range of the targets seen.
About 380 pairs; a few seconds on two cores. The parameters and what they were fitted on are written
to models/box_refinement.json.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import logging
import platform
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.detector_data import SCENE_CHOICES, SCENE_SPLIT_SEED, chosen_scenes
from edge.box_refine import FEATURES, TARGETS, BoxRefinement, deltas, features
from edge.config import DetectorConfig
from edge.datasets import load_image_bgr
from edge.faces import FaceDetector
from edge.scoring import iou_matrix, match_boxes
from edge.verifier import FaceVerifier

log = logging.getLogger(__name__)

COMMAND = "python -m train.box_refinement"
DEFAULT_OUT = Path("models/box_refinement.json")
MIN_IOU = 0.3  # a detection this close to an annotated face is that face, drawn in another convention
MIN_FACE_PX = 32  # detections shorter than this are left out (decision.min_face_px)
EDGE_PX = 4  # boxes this close to the image border are cut by it (decision.edge_margin_px)
RIDGE = 0.01  # penalty per example on standardised coefficients, chosen by 5-fold CV within the train half
MIRROR = [1, 0, 2, 3, 5, 4]  # a mirrored face's keypoints: right and left eye and ear swap places


@dataclass
class Pairs:
    """Detections (boxes (N, 4), keypoints (N, 6, 2)) and the annotated boxes (N, 4) they match."""

    boxes: np.ndarray
    keypoints: np.ndarray
    truth: np.ndarray
    left_out: dict

    def __len__(self) -> int:
        return len(self.boxes)


def matched_pairs(detector: FaceDetector, scenes) -> Pairs:
    """Every detection matched to an annotated face at IoU >= MIN_IOU, less the ones left out."""
    boxes, keypoints, truth = [], [], []
    left_out = {"cut_by_the_border": 0, "under_min_face_px": 0}
    for scene in scenes:
        image = load_image_bgr(scene.image)
        height, width = image.shape[:2]
        faces = detector.detect(image, "BGR")
        found = np.array([f.box for f in faces], np.float64).reshape(-1, 4)
        annotated = np.array([f.box for f in scene.faces], np.float64).reshape(-1, 4)
        for t, d in match_boxes(annotated, found, MIN_IOU):
            if _near_border(annotated[t], width, height) or _near_border(found[d], width, height):
                left_out["cut_by_the_border"] += 1
            elif found[d, 3] - found[d, 1] < MIN_FACE_PX:
                left_out["under_min_face_px"] += 1
            else:
                boxes.append(found[d])
                keypoints.append(faces[d].keypoints)
                truth.append(annotated[t])
    return Pairs(
        np.array(boxes, np.float64).reshape(-1, 4),
        np.array(keypoints, np.float64).reshape(-1, 6, 2),
        np.array(truth, np.float64).reshape(-1, 4),
        left_out,
    )


def _near_border(box: np.ndarray, width: int, height: int) -> bool:
    x1, y1, x2, y2 = box
    return min(x1, y1, width - x2, height - y2) < EDGE_PX


def mirrored(boxes: np.ndarray, keypoints: np.ndarray, truth: np.ndarray):
    """The same pairs mirrored left to right about x = 0 (features are relative to the box)."""
    flip = np.array([-1.0, 1.0, -1.0, 1.0])
    boxes, truth = (boxes * flip)[:, [2, 1, 0, 3]], (truth * flip)[:, [2, 1, 0, 3]]
    keypoints = keypoints[:, MIRROR] * [-1.0, 1.0]
    return boxes, keypoints, truth


def fit(
    boxes: np.ndarray, keypoints: np.ndarray, truth: np.ndarray, ridge: float = RIDGE, mirror: bool = True
) -> BoxRefinement:
    """Ridge regression of the deltas from `boxes` to `truth` on their features."""
    if mirror:
        flipped = mirrored(boxes, keypoints, truth)
        boxes, keypoints, truth = (
            np.concatenate([a, b]) for a, b in zip((boxes, keypoints, truth), flipped, strict=True)
        )
    x, y = features(boxes, keypoints), deltas(boxes, truth)
    varying = x[:, :-1]  # the last feature is the constant
    mean, scale = varying.mean(axis=0), varying.std(axis=0)
    scale[scale < 1e-9] = 1.0
    standard = np.concatenate([(varying - mean) / scale, x[:, -1:]], axis=1)
    penalty = ridge * len(x) * np.eye(x.shape[1])
    penalty[-1, -1] = 0.0
    coef = np.linalg.solve(standard.T @ standard + penalty, standard.T @ y)
    weights = np.concatenate([coef[:-1] / scale[:, None], coef[-1:] - (mean / scale) @ coef[:-1]])
    return BoxRefinement(
        weights=_rounded(weights), delta_min=_rounded(y.min(axis=0)), delta_max=_rounded(y.max(axis=0))
    )


def _rounded(values: np.ndarray) -> list:
    """Six decimals: far below a pixel, and the file stays readable."""
    return (np.round(values, 6) + 0.0).tolist()  # + 0.0: no -0.0


def mean_iou(boxes: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([iou_matrix(a[None], b[None])[0, 0] for a, b in zip(boxes, truth, strict=True)]))


def _data_note(folder: Path, scenes: str) -> str:
    if scenes == "all":
        return f"{folder}: every scene (both halves of bench.detector_data.split_scenes)"
    other = "eval" if scenes == "train" else "train"
    return (
        f"{folder}: the '{scenes}' half of bench.detector_data.split_scenes (seed {SCENE_SPLIT_SEED}); "
        f"the '{other}' half was not used"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"), help="shared data folder")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="parameters file to write")
    parser.add_argument(
        "--scenes",
        choices=SCENE_CHOICES,
        default="train",
        help="VOC scenes to fit on: a half of bench.detector_data.split_scenes, or all",
    )
    parser.add_argument(
        "--verifier", type=Path, default=None, help="face verifier .tflite to detect with (default: shipped)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    train = chosen_scenes(args.data, args.scenes)
    detector = FaceDetector(DetectorConfig(box_refinement=False))
    if args.verifier is not None:
        detector.verifier = FaceVerifier(args.verifier)
    pairs = matched_pairs(detector, train)
    refinement = fit(pairs.boxes, pairs.keypoints, pairs.truth)
    refined = refinement.refine(pairs.boxes, pairs.keypoints)
    names = "\n".join(sorted(s.image.name for s in train)).encode()
    refinement.fitted = {
        "command": f"{COMMAND} --data {args.data} --scenes {args.scenes}"
        + (f" --verifier {args.verifier}" if args.verifier else ""),
        "date": datetime.date.today().isoformat(),
        "data": _data_note(args.data / "scenes", args.scenes),
        "scenes": len(train),
        "scene_names_sha256": hashlib.sha256(names).hexdigest(),
        "annotated_faces": sum(len(s.faces) for s in train),
        "detector": "FaceDetector defaults (pyramid, face verifier on) with box_refinement off"
        + (f", verifier {args.verifier}" if args.verifier else ""),
        "match": f"one to one at IoU >= {MIN_IOU}",
        "pairs": len(pairs),
        "left_out": {**pairs.left_out, "edge_px": EDGE_PX, "min_face_px": MIN_FACE_PX},
        "mirrored": True,
        "ridge": RIDGE,
        "features": len(FEATURES),
        "targets": len(TARGETS),
        "mean_iou_on_the_pairs": {
            "before": round(mean_iou(pairs.boxes, pairs.truth), 4),
            "after": round(mean_iou(refined, pairs.truth), 4),
        },
        "platform": f"{platform.machine()}, Python {platform.python_version()}, numpy {np.__version__}",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(refinement.to_json())
    log.info(
        "wrote %s: %d pairs from %d scenes, mean IoU %.3f -> %.3f",
        args.out,
        len(pairs),
        len(train),
        *refinement.fitted["mean_iou_on_the_pairs"].values(),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
