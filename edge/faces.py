"""Face detection for the entrance camera: MediaPipe BlazeFace run as a two-level pyramid.

People walk towards the camera, so one face goes from a few pixels to filling the frame, masked or not.
Measured on our evaluation frames (docs/detector.md), neither BlazeFace model run once on the whole
frame covers that: full-range (192 px input) finds under half of the masked faces of 64-127 px in a
640x480 frame, short-range (128 px) finds the close-ups but nothing small. Short-range's network is
fully convolutional, though, so it also runs on a larger input in the frame's own aspect. The default
"pyramid" strategy runs it twice per frame: a coarse pass (long side 128) that answers for faces at
least a quarter of the frame tall, and a fine pass (long side `fine_size`, 256 by default) for the
rest. The fine pass needs a higher score (`fine_score_threshold`), and a higher one still for faces
under 40 px in its input, because that is where background patches fool it. Both passes' candidates
are merged by one weighted NMS. `fine_every` trades small-face coverage for cost on a video stream.
The older strategies stay selectable for comparison.
The models are extracted once by `python -m edge.fetch_detector`; nothing is downloaded here.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge import blazeface
from edge.blazeface import FULL_RANGE, SHORT_RANGE, AnchorSpec
from edge.config import DetectorConfig
from edge.fetch_detector import FETCH_COMMAND
from edge.paths import detector_dir
from edge.runtime import load_interpreter
from edge.verifier import FaceVerifier

log = logging.getLogger(__name__)

MODEL_FILES = {
    "full_range": "face_detection_full_range.tflite",
    "short_range": "face_detection_short_range.tflite",
}
ANCHOR_SPECS = {"full_range": FULL_RANGE, "short_range": SHORT_RANGE}
COARSE_SIZE = 128  # short-range's own input size: the pass for large faces
COARSE_MIN_FACE_PX = 32  # the coarse pass answers for faces at least this tall in its input (a quarter)
FINE_WARY_BELOW_PX = 40  # fine-pass faces shorter than this in its input need a higher score ...
FINE_WARY_MARGIN = 0.1  # ... by this much (docs/detector.md: the fine pass's false positives are small)
VERIFY_INSIDE = 0.5  # an unsure candidate with this share of its area inside a kept face is a part of it
MAX_INPUT_SHAPES = 4  # interpreters kept per model, one per input shape (frame aspect) seen


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
class DetectionPass:
    """One model run per frame: which model, at which input size, and which faces it answers for."""

    model: str  # "short_range" or "full_range"
    long_side: int  # the input's longer side in pixels (full-range always runs at its own 192x192)
    threshold: float
    min_face_px: float = 0.0  # boxes shorter than this in the input are left to finer passes
    wary_below_px: float = 0.0  # boxes shorter than this in the input need `wary_threshold`
    wary_threshold: float = 1.0
    every: int = 1  # runs on every Nth call of `detect` only
    floor: float | None = None  # with the face verifier: candidates down to this are kept, unsure

    @property
    def search_threshold(self) -> float:
        """The score the model run keeps candidates from: the floor when the verifier wants more."""
        return self.threshold if self.floor is None else min(self.floor, self.threshold)


def detection_passes(config: DetectorConfig) -> tuple[DetectionPass, ...]:
    """The passes a strategy runs, coarse to fine."""
    threshold = config.score_threshold
    if config.strategy == "pyramid":
        fine = config.fine_score_threshold
        return (
            DetectionPass("short_range", COARSE_SIZE, threshold, min_face_px=COARSE_MIN_FACE_PX),
            DetectionPass(
                "short_range",
                config.fine_size,
                fine,
                wary_below_px=FINE_WARY_BELOW_PX,
                wary_threshold=min(fine + FINE_WARY_MARGIN, 0.99),
                every=config.fine_every,
            ),
        )
    if config.strategy == "dual":
        return (
            DetectionPass("full_range", FULL_RANGE.input_size, threshold),
            DetectionPass("short_range", COARSE_SIZE, threshold),
        )
    spec = ANCHOR_SPECS[config.strategy]
    return (DetectionPass(config.strategy, spec.input_size, threshold),)


@dataclass(frozen=True)
class Candidates:
    """Raw detections in frame pixels, before NMS: boxes (N, 4), keypoints (N, 6, 2), scores (N,)."""

    boxes: np.ndarray
    keypoints: np.ndarray
    scores: np.ndarray
    unsure: np.ndarray | None = None  # (N,) bool: below its pass's rules, for the face verifier; None: none

    @classmethod
    def empty(cls) -> Candidates:
        return cls(np.zeros((0, 4), np.float32), np.zeros((0, 6, 2), np.float32), np.zeros(0, np.float32))

    @classmethod
    def concat(cls, parts: list[Candidates]) -> Candidates:
        parts = [p for p in parts if len(p.scores)] or [cls.empty()]
        unsure = None
        if any(p.unsure is not None for p in parts):
            unsure = np.concatenate(
                [np.zeros(len(p.scores), bool) if p.unsure is None else p.unsure for p in parts]
            )
        return cls(
            np.concatenate([p.boxes for p in parts]),
            np.concatenate([p.keypoints for p in parts]),
            np.concatenate([p.scores for p in parts]),
            unsure,
        )

    def subset(self, mask: np.ndarray) -> Candidates:
        return Candidates(self.boxes[mask], self.keypoints[mask], self.scores[mask])


class _Runner:
    """One interpreter at one input shape, with the anchors and output indices that go with it."""

    def __init__(self, model_path: Path, spec: AnchorSpec, threads: int, width: int, height: int):
        self.width, self.height = width, height
        self.interpreter = load_interpreter(model_path, threads)
        (inp,) = self.interpreter.get_input_details()
        self._input_index = inp["index"]
        if (width, height) != (spec.input_size, spec.input_size):
            self.interpreter.resize_tensor_input(self._input_index, [1, height, width, 3])
            self.interpreter.allocate_tensors()
        self.anchors = blazeface.generate_anchors(spec, width, height)
        outputs = self.interpreter.get_output_details()
        # the regressor output has 16 values per anchor, the classifier 1; tell them apart by shape
        by_width = {int(d["shape"][-1]): d["index"] for d in outputs}
        counts = {int(d["shape"][1]) for d in outputs}
        if set(by_width) != {16, 1} or counts != {len(self.anchors)}:
            raise ValueError(
                f"{model_path.name} at {width}x{height}: outputs {[tuple(d['shape']) for d in outputs]} "
                f"do not match {len(self.anchors)} anchors"
            )
        self._regressor_index, self._score_index = by_width[16], by_width[1]

    def run(self, rgb: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Boxes and keypoints in input pixels, and scores, of every anchor scoring >= `threshold`."""
        tensor = rgb.astype(np.float32)[None]
        tensor *= np.float32(1.0 / 127.5)
        tensor -= np.float32(1.0)
        self.interpreter.set_tensor(self._input_index, tensor)
        self.interpreter.invoke()
        logits = self.interpreter.get_tensor(self._score_index)[0, :, 0]
        keep = np.flatnonzero(logits >= blazeface.logit(threshold))
        raw = self.interpreter.get_tensor(self._regressor_index)[0, keep]
        boxes, keypoints = blazeface.decode(raw, self.anchors[keep])
        return boxes, keypoints, blazeface.sigmoid_scores(logits[keep])


class BlazeFaceModel:
    """One BlazeFace .tflite: a uint8 frame in, scored candidates in frame pixels out."""

    def __init__(self, model_path: Path, spec: AnchorSpec, threads: int = 2):
        self.model_path = Path(model_path)
        if not self.model_path.is_file():
            raise DetectorModelMissingError(
                f"face detector model {self.model_path} is missing: run `{FETCH_COMMAND}` to install it"
            )
        self.spec, self.threads = spec, threads
        self._runners: dict[tuple[int, int], _Runner] = {}
        self._runner(spec.input_size, spec.input_size)  # fail at start-up, not on the first frame

    def _runner(self, width: int, height: int) -> _Runner:
        runner = self._runners.get((width, height))
        if runner is None:
            if len(self._runners) >= MAX_INPUT_SHAPES:
                self._runners.pop(next(iter(self._runners)))
            runner = _Runner(self.model_path, self.spec, self.threads, width, height)
            self._runners[(width, height)] = runner
        return runner

    def input_shape(self, frame_width: int, frame_height: int, long_side: int) -> tuple[int, int]:
        if not self.spec.resizable:
            return self.spec.input_size, self.spec.input_size
        return blazeface.input_shape_for(frame_width, frame_height, long_side)

    def candidates(
        self, frame: np.ndarray, detection_pass: DetectionPass, frame_order: str = "BGR"
    ) -> Candidates:
        """The pass's faces on the frame fitted into the model input, in frame pixels, before NMS."""
        p = detection_pass
        width, height = self.input_shape(frame.shape[1], frame.shape[0], p.long_side)
        fitted, box = blazeface.letterbox(frame, width, height)
        rgb = cv2.cvtColor(fitted, cv2.COLOR_BGR2RGB) if frame_order == "BGR" else fitted
        boxes, keypoints, scores = self._runner(width, height).run(rgb, p.search_threshold)
        face_px = boxes[:, 3] - boxes[:, 1]
        sure = ((face_px >= p.wary_below_px) | (scores >= p.wary_threshold)) & (scores >= p.threshold)
        keep = (face_px >= p.min_face_px) & (sure | (p.floor is not None))  # unsure: for the verifier
        if not keep.any():
            return Candidates.empty()
        boxes, keypoints, scores = boxes[keep], keypoints[keep], scores[keep]
        unsure = None if p.floor is None else ~sure[keep]
        return Candidates(
            box.to_frame(boxes.reshape(-1, 2, 2)).reshape(-1, 4), box.to_frame(keypoints), scores, unsure
        )


class FaceDetector:
    """Faces in a whole frame with the configured strategy; `detect` is the only call the loop makes."""

    def __init__(self, config: DetectorConfig | None = None, models_dir: Path | None = None):
        self.config = config or DetectorConfig()
        folder = Path(models_dir) if models_dir is not None else detector_dir()
        self.passes = detection_passes(self.config)
        self.models = {
            name: BlazeFaceModel(folder / MODEL_FILES[name], ANCHOR_SPECS[name], self.config.threads)
            for name in dict.fromkeys(p.model for p in self.passes)
        }
        self.verifier = FaceVerifier() if self.config.verifier else None  # missing model: a clear error
        if self.verifier is not None:
            floor = self.config.verifier_floor
            self.passes = tuple(dataclasses.replace(p, floor=min(floor, p.threshold)) for p in self.passes)
        self._calls = 0  # detect() calls so far: passes with `every` > 1 skip the others

    def candidates(self, frame: np.ndarray, frame_order: str = "BGR", call: int = 0) -> Candidates:
        """The raw candidates of every pass due at detect() call number `call`, pooled, before NMS."""
        return Candidates.concat(
            [
                self.models[p.model].candidates(frame, p, frame_order)
                for p in self.passes
                if call % p.every == 0
            ]
        )

    def detect(self, frame: np.ndarray, frame_order: str = "BGR") -> list[Face]:
        """Faces in an HxWx3 uint8 frame, best score first, boxes clipped to the frame.

        With `fine_every` N > 1 the fine pass runs on the first call and every Nth after it, so a
        stream of frames pays for it 1/N of the time; single photos want the default, N = 1.
        """
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"frame must be HxWx3 uint8, got shape {frame.shape} dtype {frame.dtype}")
        if frame_order not in ("BGR", "RGB"):
            raise ValueError(f"frame_order must be 'BGR' or 'RGB', got {frame_order!r}")
        (pooled,), unsure = _set_aside_unsure([self.candidates(frame, frame_order, self._calls)])
        self._calls += 1
        boxes, keypoints, scores = blazeface.weighted_nms(
            pooled.boxes, pooled.keypoints, pooled.scores, self.config.nms_iou
        )
        if self.verifier is not None:
            boxes, keypoints, scores = self._add_verified(
                frame, frame_order, boxes, keypoints, scores, unsure
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

    # --- the face verifier (docs/detector.md): a second opinion on candidates below the pass rules ---

    def _add_verified(self, frame, frame_order, boxes, keypoints, scores, unsure: Candidates):
        """The sure faces plus the unsure ones the verifier calls faces, best score first.

        Unsure candidates are merged by the same weighted NMS. One that overlaps a face already kept
        (IoU above nms_iou) is that face, and one lying mostly inside it is a part of it (the eyes and
        mask of a face found whole at another scale): both are dropped unchecked. The verifier sees the
        rest, a few per frame at most, best score first.
        """
        u_boxes, u_keypoints, u_scores = blazeface.weighted_nms(
            unsure.boxes, unsure.keypoints, unsure.scores, self.config.nms_iou
        )
        height, width = frame.shape[:2]
        u_boxes = np.clip(u_boxes, 0, [width, height, width, height])
        new = [i for i, b in enumerate(u_boxes) if not _covered(b, boxes, self.config.nms_iou)]
        if not new:
            return boxes, keypoints, scores
        face = self.verifier.is_face(frame, u_boxes[new], frame_order)
        for i in (i for i, is_face in zip(new, face, strict=True) if is_face):
            if not _covered(u_boxes[i], boxes, self.config.nms_iou):
                boxes = np.concatenate([boxes, u_boxes[i : i + 1]])
                keypoints = np.concatenate([keypoints, u_keypoints[i : i + 1]])
                scores = np.concatenate([scores, u_scores[i : i + 1]])
        order = np.argsort(-scores, kind="stable")
        return boxes[order], keypoints[order], scores[order]


def _covered(box: np.ndarray, faces: np.ndarray, iou: float) -> bool:
    """Whether `box` is one of `faces` (IoU above `iou`) or mostly (VERIFY_INSIDE) inside one."""
    if not len(faces):
        return False
    if (blazeface.iou_one_to_many(box, faces) > iou).any():
        return True
    w = np.clip(np.minimum(box[2], faces[:, 2]) - np.maximum(box[0], faces[:, 0]), 0, None)
    h = np.clip(np.minimum(box[3], faces[:, 3]) - np.maximum(box[1], faces[:, 1]), 0, None)
    area = max(float((box[2] - box[0]) * (box[3] - box[1])), 1e-6)
    return bool((w * h / area >= VERIFY_INSIDE).any())


def _set_aside_unsure(by_pass: list[Candidates]) -> tuple[list[Candidates], Candidates]:
    """Each pass's sure candidates, and all the unsure ones pooled (empty without the verifier)."""
    sure, unsure = [], []
    for candidates in by_pass:
        if candidates.unsure is None:
            sure.append(candidates)
        else:
            sure.append(candidates.subset(~candidates.unsure))
            unsure.append(candidates.subset(candidates.unsure))
    return sure, Candidates.concat(unsure)
