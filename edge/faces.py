"""Face detection for the entrance camera: MediaPipe BlazeFace, both ranges, merged.

People walk towards the camera, so one face goes from a few pixels to filling the frame. Neither
BlazeFace model covers that alone: full-range (192 px input) sees small and mid-size faces but misses
many close-ups, short-range (128 px) sees close-ups but nothing small. The "dual" strategy runs both
on the whole frame, each with its own threshold, and merges their candidates with one weighted NMS.
The models are extracted once by `python -m edge.fetch_detector`; nothing is downloaded here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge import blazeface
from edge.blazeface import FULL_RANGE, SHORT_RANGE, AnchorSpec
from edge.config import DetectorConfig
from edge.fetch_detector import FETCH_COMMAND
from edge.paths import detector_dir
from edge.runtime import load_interpreter

log = logging.getLogger(__name__)

MODEL_FILES = {
    "full_range": "face_detection_full_range.tflite",
    "short_range": "face_detection_short_range.tflite",
}
ANCHOR_SPECS = {"full_range": FULL_RANGE, "short_range": SHORT_RANGE}


class DetectorModelMissingError(FileNotFoundError):
    """A BlazeFace model file is not installed; the message names the command that installs it."""


@dataclass(frozen=True)
class Face:
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in frame pixels
    score: float
    keypoints: tuple[tuple[float, float], ...]  # 6 points in frame pixels, BlazeFace order

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]


@dataclass(frozen=True)
class Candidates:
    """Raw detections of one model pass in frame pixels, before NMS: boxes (N, 4), keypoints (N, 6, 2)."""

    boxes: np.ndarray
    keypoints: np.ndarray
    scores: np.ndarray

    @classmethod
    def empty(cls) -> Candidates:
        return cls(np.zeros((0, 4), np.float32), np.zeros((0, 6, 2), np.float32), np.zeros(0, np.float32))

    @classmethod
    def concat(cls, parts: list[Candidates]) -> Candidates:
        parts = [p for p in parts if len(p.scores)] or [cls.empty()]
        return cls(
            np.concatenate([p.boxes for p in parts]),
            np.concatenate([p.keypoints for p in parts]),
            np.concatenate([p.scores for p in parts]),
        )


class BlazeFaceModel:
    """One BlazeFace .tflite with its anchors: a uint8 frame in, scored candidates in frame pixels out."""

    def __init__(self, model_path: Path, spec: AnchorSpec, threads: int = 2):
        model_path = Path(model_path)
        if not model_path.is_file():
            raise DetectorModelMissingError(
                f"face detector model {model_path} is missing: run `{FETCH_COMMAND}` to install it"
            )
        self.spec = spec
        self.anchors = blazeface.generate_anchors(spec)
        self.interpreter = load_interpreter(model_path, threads)
        (inp,) = self.interpreter.get_input_details()
        expected = (1, spec.input_size, spec.input_size, 3)
        if tuple(int(v) for v in inp["shape"]) != expected:
            raise ValueError(f"{model_path.name}: input shape {tuple(inp['shape'])}, expected {expected}")
        self._input_index = inp["index"]
        outputs = self.interpreter.get_output_details()
        # the regressor output has 16 values per anchor, the classifier 1; tell them apart by shape
        by_width = {int(d["shape"][-1]): d["index"] for d in outputs}
        if set(by_width) != {16, 1} or any(int(d["shape"][1]) != spec.expected_count for d in outputs):
            raise ValueError(f"{model_path.name}: unexpected outputs {[tuple(d['shape']) for d in outputs]}")
        self._regressor_index, self._score_index = by_width[16], by_width[1]

    def candidates(
        self,
        frame: np.ndarray,
        threshold: float,
        frame_order: str = "BGR",
        region: tuple[int, int, int, int] | None = None,
    ) -> Candidates:
        """Every anchor scoring at least `threshold` on the frame (or a region of it), decoded."""
        square, box = blazeface.letterbox(frame, self.spec.input_size, region)
        if frame_order == "BGR":
            square = square[:, :, ::-1]
        tensor = square.astype(np.float32)[None] * np.float32(1.0 / 127.5) - np.float32(1.0)
        self.interpreter.set_tensor(self._input_index, tensor)
        self.interpreter.invoke()
        logits = self.interpreter.get_tensor(self._score_index)[0, :, 0]
        keep = np.flatnonzero(logits >= _logit(threshold))
        if keep.size == 0:
            return Candidates.empty()
        raw = self.interpreter.get_tensor(self._regressor_index)[0, keep]
        boxes, keypoints = blazeface.decode(raw, self.anchors[keep], self.spec.input_size)
        boxes = box.to_frame(boxes.reshape(-1, 2, 2)).reshape(-1, 4)
        return Candidates(boxes, box.to_frame(keypoints), blazeface.sigmoid_scores(logits[keep]))


def _logit(probability: float) -> float:
    """Threshold on logits instead of probabilities: the sigmoid then runs on the few anchors kept."""
    probability = min(max(probability, 1e-6), 1 - 1e-6)
    return float(np.log(probability / (1.0 - probability)))


class FaceDetector:
    """Faces in a whole frame with the configured strategy; `detect` is the only call the loop makes."""

    def __init__(self, config: DetectorConfig | None = None, models_dir: Path | None = None):
        self.config = config or DetectorConfig()
        folder = Path(models_dir) if models_dir is not None else detector_dir()
        names = ("full_range", "short_range") if self.config.strategy == "dual" else (self.config.strategy,)
        self.models = {
            name: BlazeFaceModel(folder / MODEL_FILES[name], ANCHOR_SPECS[name], self.config.threads)
            for name in names
        }
        self.thresholds = {name: self.config.score_threshold for name in names}

    def candidates(self, frame: np.ndarray, frame_order: str = "BGR") -> Candidates:
        """All models' raw candidates, pooled, before NMS."""
        return Candidates.concat(
            [
                model.candidates(frame, self.thresholds[name], frame_order)
                for name, model in self.models.items()
            ]
        )

    def detect(self, frame: np.ndarray, frame_order: str = "BGR") -> list[Face]:
        """Faces in an HxWx3 uint8 frame, best score first, boxes clipped to the frame."""
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"frame must be HxWx3 uint8, got shape {frame.shape} dtype {frame.dtype}")
        if frame_order not in ("BGR", "RGB"):
            raise ValueError(f"frame_order must be 'BGR' or 'RGB', got {frame_order!r}")
        pooled = self.candidates(frame, frame_order)
        boxes, keypoints, scores = blazeface.weighted_nms(
            pooled.boxes, pooled.keypoints, pooled.scores, self.config.nms_iou
        )
        height, width = frame.shape[:2]
        boxes = np.clip(boxes, 0, [width, height, width, height])
        return [
            Face(
                box=tuple(float(v) for v in b),
                score=float(s),
                keypoints=tuple((float(x), float(y)) for x, y in k),
            )
            for b, k, s in zip(boxes, keypoints, scores, strict=True)
        ]
