"""Box refinement: BlazeFace's face box moved to where an annotator of the VOC scenes would draw it.

BlazeFace and the andrewmvd scenes disagree on what a face box is: the scenes' boxes sit about 9% of
the face height lower, are taller for large faces, and are narrower for faces turned aside. At IoU 0.5
that costs found faces (docs/detector.md, "Box refinement"). A fixed offset was not enough; the keypoints
say where the face points, so the mapping here is linear in them: from a box and its six keypoints,
normalised by the box, it predicts (dx / w, dy / h, log w' / w, log h' / h) of the annotator's box.

The weights come from `python -m train.box_refinement`, fitted on the training half of the scenes only,
and live in `models/box_refinement.json` with what they were fitted on. Pure numpy; the file is checked
when it loads, and predictions are kept inside the range of the fitted targets.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from edge.blazeface import KEYPOINT_NAMES, NUM_KEYPOINTS
from edge.model_metadata import ModelMetadataError, read_json
from edge.paths import models_dir

FORMAT = "maskwatch-box-refinement"
FORMAT_VERSION = 1
REFINE_COMMAND = "python -m train.box_refinement"
REFERENCE_PX = 64.0  # the size feature is log(box height / this)
# keypoints relative to the box centre, in box widths (x) and heights (y); x squared so that a face turned
# either way can narrow its box; the box height; a constant
FEATURES = (
    *(f"{name}_x" for name in KEYPOINT_NAMES),
    *(f"{name}_y" for name in KEYPOINT_NAMES),
    *(f"{name}_x_squared" for name in KEYPOINT_NAMES),
    "log_height_over_64px",
    "constant",
)
TARGETS = ("dx_over_width", "dy_over_height", "log_width_ratio", "log_height_ratio")


class BoxRefinementMissingError(FileNotFoundError):
    """The parameters file is not there; the message names the command that makes it."""


def box_refinement_path() -> Path:
    return models_dir() / "box_refinement.json"


def features(boxes: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
    """(N, len(FEATURES)) from boxes (N, 4: x1, y1, x2, y2) and keypoints (N, 6, 2), frame pixels."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    keypoints = np.asarray(keypoints, np.float64).reshape(len(boxes), NUM_KEYPOINTS, 2)
    width = np.maximum(boxes[:, 2] - boxes[:, 0], 1.0)
    height = np.maximum(boxes[:, 3] - boxes[:, 1], 1.0)
    x = (keypoints[:, :, 0] - (boxes[:, 0, None] + boxes[:, 2, None]) / 2) / width[:, None]
    y = (keypoints[:, :, 1] - (boxes[:, 1, None] + boxes[:, 3, None]) / 2) / height[:, None]
    size = np.log(height / REFERENCE_PX)[:, None]
    return np.concatenate([x, y, x**2, size, np.ones((len(boxes), 1))], axis=1)


def deltas(boxes: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """(N, 4) TARGETS that take `boxes` to `targets` (both (N, 4) x1, y1, x2, y2)."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    targets = np.asarray(targets, np.float64).reshape(-1, 4)
    (cx, cy, w, h), (tx, ty, tw, th) = _centre_size(boxes), _centre_size(targets)
    return np.stack([(tx - cx) / w, (ty - cy) / h, np.log(tw / w), np.log(th / h)], axis=1)


def moved(boxes: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """`boxes` (N, 4) moved and scaled by `delta` (N, 4 TARGETS): the inverse of `deltas`."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    cx, cy, w, h = _centre_size(boxes)
    cx, cy = cx + delta[:, 0] * w, cy + delta[:, 1] * h
    w, h = w * np.exp(delta[:, 2]), h * np.exp(delta[:, 3])
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)


def _centre_size(boxes: np.ndarray) -> tuple[np.ndarray, ...]:
    return (
        (boxes[:, 0] + boxes[:, 2]) / 2,
        (boxes[:, 1] + boxes[:, 3]) / 2,
        boxes[:, 2] - boxes[:, 0],
        boxes[:, 3] - boxes[:, 1],
    )


@dataclass
class BoxRefinement:
    """A linear map from `features` to TARGETS, its output clipped to [delta_min, delta_max]."""

    weights: list[list[float]]  # len(FEATURES) rows of len(TARGETS)
    delta_min: list[float]
    delta_max: list[float]
    fitted: dict = field(default_factory=dict)  # provenance: data, counts, command, date, numbers
    feature_names: list[str] = field(default_factory=lambda: list(FEATURES))
    target_names: list[str] = field(default_factory=lambda: list(TARGETS))
    format: str = FORMAT
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        self._weights = np.asarray(self.weights, np.float64)
        self._low, self._high = np.asarray(self.delta_min, np.float64), np.asarray(self.delta_max, np.float64)

    @classmethod
    def identity(cls) -> BoxRefinement:
        """Leaves every box where it is."""
        zeros = [0.0] * len(TARGETS)
        return cls([list(zeros) for _ in FEATURES], list(zeros), list(zeros))

    def refine(
        self, boxes: np.ndarray, keypoints: np.ndarray, frame_size: tuple[int, int] | None = None
    ) -> np.ndarray:
        """Boxes (N, 4) in the annotators' convention, float32; keypoints are left as they are.

        With `frame_size` (width, height), a side that would leave the frame stays where it was: what
        lies beyond the frame is not seen, and a box pushed onto the border would pass for a face cut
        off by it, which the daemon ignores (decision.edge_margin_px). Boxes inside the frame stay inside.
        """
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        if not len(boxes):
            return boxes
        delta = np.clip(features(boxes, keypoints) @ self._weights, self._low, self._high)
        refined = moved(boxes, delta)
        if frame_size is not None:
            width, height = frame_size
            outside = np.concatenate([refined[:, :2] < 0, refined[:, 2:] > [width, height]], axis=1)
            refined = np.where(outside, boxes, refined)
        return refined.astype(np.float32)

    def to_json(self) -> str:
        """The parameters file's text: one line per list of numbers (a feature's weights, a bound)."""
        data = asdict(self)
        first = ("format", "format_version", "feature_names", "target_names")
        text = json.dumps({**{key: data.pop(key) for key in first}, **data}, indent=2)
        one_line = re.compile(r"\[\s+([-+.eE\d,\s]+?)\s+\]")
        return one_line.sub(lambda m: "[" + ", ".join(v.strip() for v in m[1].split(",")) + "]", text) + "\n"

    @classmethod
    def from_dict(cls, data: dict, source: str = "box refinement") -> BoxRefinement:
        fix = f"re-run `{REFINE_COMMAND}`"
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ModelMetadataError(f"{source}: not a box refinement file (format is not {FORMAT!r}); {fix}")
        if data.get("format_version") != FORMAT_VERSION:
            raise ModelMetadataError(
                f"{source}: format_version {data.get('format_version')!r} is not {FORMAT_VERSION}; {fix}"
            )
        if data.get("feature_names") != list(FEATURES) or data.get("target_names") != list(TARGETS):
            raise ModelMetadataError(
                f"{source}: fitted for other features or targets than this code's; {fix}"
            )
        try:
            weights = [[float(v) for v in row] for row in data["weights"]]
            low, high = [float(v) for v in data["delta_min"]], [float(v) for v in data["delta_max"]]
            fitted = dict(data.get("fitted", {}))
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelMetadataError(f"{source}: malformed box refinement ({exc!r}); {fix}") from exc
        shape_ok = len(weights) == len(FEATURES) and all(len(row) == len(TARGETS) for row in weights)
        if not shape_ok or len(low) != len(TARGETS) or len(high) != len(TARGETS):
            raise ModelMetadataError(
                f"{source}: weights must be {len(FEATURES)}x{len(TARGETS)} and the delta bounds "
                f"{len(TARGETS)} long; {fix}"
            )
        values = [v for row in weights for v in row] + low + high
        if not all(math.isfinite(v) for v in values) or any(a > b for a, b in zip(low, high, strict=True)):
            raise ModelMetadataError(f"{source}: weights or bounds are not finite, or min > max; {fix}")
        return cls(weights, low, high, fitted)

    @classmethod
    def load(cls, path: Path | None = None) -> BoxRefinement:
        """The shipped parameters (or `path`), checked; a missing file names the command that makes it."""
        path = Path(path) if path is not None else box_refinement_path()
        if not path.is_file():
            raise BoxRefinementMissingError(
                f"box refinement parameters {path} are missing: restore them from the repository or "
                f"fit them with `{REFINE_COMMAND}` (or set detector.box_refinement: false)"
            )
        return cls.from_dict(read_json(path, f"re-run `{REFINE_COMMAND}`"), source=str(path))
