"""Face detection for the entrance camera: MediaPipe BlazeFace run as a two-level pyramid.

People walk towards the camera, so one face goes from a few pixels to filling the frame, masked or not.
Measured on our evaluation frames (docs/detector.md), neither BlazeFace model run once on the whole
frame covers that: full-range (192 px input) finds under half of the masked faces of 64-127 px in a
640x480 frame, short-range (128 px) finds the close-ups but nothing small. Short-range's network is
fully convolutional, though, so it also runs on a larger input in the frame's own aspect. The default
"pyramid" strategy runs it twice per frame: a coarse pass (long side 128) that answers for faces at
least a quarter of the frame tall, and a fine pass (long side `fine_size`, 320 by default) for the
rest. The fine pass needs a higher score (`fine_score_threshold`), and a higher one still for faces
under 40 px in its input, because that is where background patches fool it. Both passes' candidates
are merged by one weighted NMS. On a video stream (`stream=True`, the daemon) the fine pass covers the
whole frame on every `fine_every`th frame only; on the frames between it runs on small windows around
the small faces found on the frame before, at the same scale, so a face once found is looked for on
every frame and a new one is found within `fine_every` frames, for a fraction of the cost.
When the decision has a region of interest (`decision.roi`: faces centred outside it never vote), the
fine pass searches only that region plus a margin, in photos and in a stream; the coarse pass always
covers the whole frame.
The older strategies stay selectable for comparison.
The models are extracted once by `python -m edge.fetch_detector`; nothing is downloaded here.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge import blazeface, photo_tiles
from edge.blazeface import FULL_RANGE, SHORT_RANGE, AnchorSpec
from edge.box_refine import BoxRefinement
from edge.config import Config, DetectorConfig
from edge.fetch_detector import FETCH_COMMAND, MODEL_SHA256
from edge.model_metadata import file_sha256
from edge.paths import detector_dir
from edge.runtime import ModelFileError, load_interpreter
from edge.verifier import FaceVerifier, VerdictMemory

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
MAX_INPUT_SHAPES = 8  # interpreters kept per model, one per input shape seen (frame aspects, windows)
# Following small faces between whole-frame fine passes (stream mode), sizes in fine-pass input pixels:
FOLLOW_BELOW_PX = 72  # faces shorter than this are followed (the coarse pass answers from 64, 32 in 128)
FOLLOW_CONTEXT = 1.6  # a window is at least this many times the face: margin for a frame's movement
FOLLOW_SIDES = (64, 96, 128)  # window sides: few shapes, since each costs a resized interpreter
FOLLOW_MAX_AREA = 0.6  # windows covering more of the input than this cost as much as the whole pass
FOLLOW_IOU = 0.3  # a window's candidate this close to a followed face is that face
FOLLOW_MISSES = 1  # a followed face not found in its window is looked for on this many more frames
# A followed face at least this tall (one followed because no sure coarse candidate backs it, as large
# masked faces often are) keeps the coarse pass running on the next frame: windows are at most 128 px,
# and near the camera a face grows 20-30 % a frame (docs/detector.md, "Faces walking in"). 64 px found
# one more frame in 774 at 256+ px but ran the coarse pass for faces of 128-144 px in the frame as well.
COARSE_WITH_FOLLOWED_PX = FOLLOW_BELOW_PX


class DetectorModelMissingError(FileNotFoundError):
    """A BlazeFace model file is not installed; the message names the command that installs it."""


class DetectorModelDamagedError(ModelFileError):
    """A BlazeFace model file is not the one the install put there (cut short by a power cut or a full
    disk); the message names the command that installs it again. Checked before the runtime reads it:
    tflite-runtime 2.14, the Pi's fallback, crashes the process on a cut-short model."""


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
    every: int = 1  # in a stream, covers the whole frame on every Nth frame, windows around faces between
    floor: float | None = None  # with the face verifier: candidates down to this are kept, unsure
    roi_margin_px: float | None = (
        None  # with an ROI, search it plus this margin (input px); None: whole frame
    )

    @property
    def search_threshold(self) -> float:
        """The score the model run keeps candidates from: the floor when the verifier wants more."""
        return self.threshold if self.floor is None else min(self.floor, self.threshold)


def detection_passes(config: DetectorConfig) -> tuple[DetectionPass, ...]:
    """The passes a strategy runs, coarse to fine."""
    threshold = config.score_threshold
    if config.strategy == "pyramid":
        fine = config.fine_score_threshold
        # With an ROI the fine pass searches it plus a margin of the largest face it answers for alone
        # (COARSE_MIN_FACE_PX at its scale, 80 px in a 320 px input, 160 px in a 640x480 frame; larger
        # ones are the whole-frame coarse pass's). Such a face centred inside the ROI then lies inside the
        # search with at least half its height of surroundings to spare (a follow window gives it 0.3),
        # and faces up to twice that size, the coarse pass's, still lie inside whole: the fine pass does
        # not see them cut in two at the search's edge, which could make a second, partial box.
        largest_fine_face = COARSE_MIN_FACE_PX * config.fine_size / COARSE_SIZE
        return (
            DetectionPass("short_range", COARSE_SIZE, threshold, min_face_px=COARSE_MIN_FACE_PX),
            DetectionPass(
                "short_range",
                config.fine_size,
                fine,
                wary_below_px=FINE_WARY_BELOW_PX,
                wary_threshold=min(fine + FINE_WARY_MARGIN, 0.99),
                every=config.fine_every,
                roi_margin_px=largest_fine_face,
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
        # a NaN or infinite regression (a broken delegate) is no box, and one would turn every weighted
        # NMS mean of the frame into NaN
        finite = np.isfinite(raw).all(axis=1)
        if not finite.all():
            keep, raw = keep[finite], raw[finite]
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
        pinned = MODEL_SHA256.get(self.model_path.name)  # a model of another name is the user's own
        if pinned is not None and file_sha256(self.model_path) != pinned:
            raise DetectorModelDamagedError(
                f"face detector model {self.model_path} is damaged (not the file the install checked): "
                f"run `{FETCH_COMMAND}` to install it again"
            )
        self.spec, self.threads = spec, threads
        self._runners: dict[tuple[int, int], _Runner] = {}
        self._runner(spec.input_size, spec.input_size)  # fail at start-up, not on the first frame

    def _runner(self, width: int, height: int) -> _Runner:
        """The interpreter for this input shape; the one used longest ago makes room for a new shape (a
        folder of photos of many aspects must not evict the shapes every tile and window reuses)."""
        runner = self._runners.pop((width, height), None)
        if runner is not None:
            self._runners[(width, height)] = runner  # now the most recently used
        else:
            if len(self._runners) >= MAX_INPUT_SHAPES:
                self._runners.pop(next(iter(self._runners)))
            runner = _Runner(self.model_path, self.spec, self.threads, width, height)
            self._runners[(width, height)] = runner
        return runner

    def input_shape(self, frame_width: int, frame_height: int, long_side: int) -> tuple[int, int]:
        if not self.spec.resizable:
            return self.spec.input_size, self.spec.input_size
        return blazeface.input_shape_for(frame_width, frame_height, long_side)

    def fit(self, frame: np.ndarray, long_side: int, frame_order: str = "BGR"):
        """The frame letterboxed into the model input for a pass of `long_side`, as RGB, and the mapping."""
        width, height = self.input_shape(frame.shape[1], frame.shape[0], long_side)
        fitted, box = blazeface.letterbox(frame, width, height)
        return (cv2.cvtColor(fitted, cv2.COLOR_BGR2RGB) if frame_order == "BGR" else fitted), box

    def candidates(
        self,
        frame: np.ndarray,
        detection_pass: DetectionPass,
        frame_order: str = "BGR",
        roi: Sequence[float] = (),
    ) -> Candidates:
        """The pass's faces on the frame fitted into the model input, in frame pixels, before NMS.

        With an `roi` ([x1, y1, x2, y2] fractions of the frame) a pass that has a `roi_margin_px`
        searches only the part of its input around it (`search_region`), cut from the same fitted input.
        """
        p = detection_pass
        rgb, box = self.fit(frame, p.long_side, frame_order)
        return self._search(rgb, box, p, self.search_region(frame.shape, rgb.shape, box, p, roi))

    def candidates_near(
        self,
        frame: np.ndarray,
        detection_pass: DetectionPass,
        boxes: np.ndarray,
        frame_order: str = "BGR",
        roi: Sequence[float] = (),
    ) -> Candidates:
        """The pass's faces in windows of its input around `boxes` (frame pixels), before NMS.

        The frame is fitted exactly as for the whole pass and the windows are cut from that input, so a
        face is seen at the same scale and with the same pixels; only the surroundings are left out.
        Windows that would cover most of what the pass searches (FOLLOW_MAX_AREA of the input, or of its
        region for `roi`) cost about as much as that search, and it runs instead. A candidate on a
        followed face (IoU >= FOLLOW_IOU) needs the pass's own threshold only, not the
        higher one for small faces: it passed that on an earlier frame, and small faces' scores move
        by ±0.1 from frame to frame. Anything else in a window faces the pass's full rule.
        """
        p = detection_pass
        if len(boxes) == 0:
            return Candidates.empty()
        rgb, box = self.fit(frame, p.long_side, frame_order)
        height, width = rgb.shape[:2]
        region = self.search_region(frame.shape, rgb.shape, box, p, roi)
        rx0, ry0, rx1, ry1 = region or (0, 0, width, height)
        in_input = box.to_input(np.asarray(boxes, np.float32).reshape(-1, 2, 2)).reshape(-1, 4)
        windows = blazeface.crop_windows(in_input, width, height, FOLLOW_SIDES, FOLLOW_CONTEXT)
        if sum(side * side for _, _, side in windows) >= FOLLOW_MAX_AREA * (rx1 - rx0) * (ry1 - ry0):
            return self._search(rgb, box, p, region)
        parts = []
        for x0, y0, side in windows:
            found, keypoints, scores = self._run_part(rgb, (x0, y0, x0 + side, y0 + side), p.search_threshold)
            on_followed = (blazeface.iou_matrix(found, in_input) >= FOLLOW_IOU).any(axis=1)
            parts.append(_kept(found, keypoints, scores, p, box, on_followed))
        return Candidates.concat(parts)

    def search_region(
        self,
        frame_shape: tuple[int, ...],
        input_shape: tuple[int, ...],
        box: blazeface.Letterbox,
        p: DetectionPass,
        roi: Sequence[float],
    ) -> tuple[int, int, int, int] | None:
        """The part (x0, y0, x1, y1) of the pass's input that it searches for `roi`: the ROI plus the
        pass's margin, on its anchor grid (`blazeface.region_window`); None for the whole input."""
        if not roi or p.roi_margin_px is None:
            return None
        frame_wh = np.array([frame_shape[1], frame_shape[0]], np.float32)
        corners = box.to_input(np.asarray(roi, np.float32).reshape(2, 2) * frame_wh).reshape(4)
        return blazeface.region_window(corners, input_shape[1], input_shape[0], p.roi_margin_px)

    def _search(
        self,
        rgb: np.ndarray,
        box: blazeface.Letterbox,
        p: DetectionPass,
        region: tuple[int, int, int, int] | None,
    ) -> Candidates:
        """The pass's candidates (frame pixels) over the whole input, or over `region` of it."""
        if region is None:
            height, width = rgb.shape[:2]
            return _kept(*self._runner(width, height).run(rgb, p.search_threshold), p, box)
        return _kept(*self._run_part(rgb, region, p.search_threshold), p, box)

    def _run_part(self, rgb: np.ndarray, part: tuple[int, int, int, int], threshold: float):
        """`_Runner.run` on the part (x0, y0, x1, y1) of the input `rgb`, boxes and keypoints moved back
        to the input's pixels."""
        x0, y0, x1, y1 = part
        found, keypoints, scores = self._runner(x1 - x0, y1 - y0).run(
            np.ascontiguousarray(rgb[y0:y1, x0:x1]), threshold
        )
        offset = np.array([x0, y0], np.float32)
        return (found.reshape(-1, 2, 2) + offset).reshape(-1, 4), keypoints + offset, scores


def _kept(
    boxes: np.ndarray,
    keypoints: np.ndarray,
    scores: np.ndarray,
    p: DetectionPass,
    box: blazeface.Letterbox,
    followed: np.ndarray | None = None,
) -> Candidates:
    """The candidates (input pixels) a pass answers for, mapped to frame pixels; `followed` ones (a
    mask) are spared the higher threshold for small faces."""
    face_px = boxes[:, 3] - boxes[:, 1]
    sure = (face_px >= p.wary_below_px) | (scores >= p.wary_threshold)
    if followed is not None:
        sure |= followed
    sure &= scores >= p.threshold  # below it only when the pass has a floor: unsure, for the verifier
    keep = (face_px >= p.min_face_px) & (sure | (p.floor is not None))
    if not keep.any():
        return Candidates.empty()
    boxes, keypoints, scores = boxes[keep], keypoints[keep], scores[keep]
    unsure = None if p.floor is None else ~sure[keep]
    return Candidates(
        box.to_frame(boxes.reshape(-1, 2, 2)).reshape(-1, 4), box.to_frame(keypoints), scores, unsure
    )


class FaceDetector:
    """Faces in a whole frame with the configured strategy; `detect` is the only call the loop makes.

    A detector made with `stream=True` sees consecutive frames of one camera and remembers the small
    faces of the last frames: the fine pass then covers the whole frame on every `fine_every`th frame
    only, and looks in windows around those faces in between. Without it (photos, `maskwatch detect`,
    evaluations) every call runs every pass on the whole frame.

    `roi` is the decision's region of interest ([x1, y1, x2, y2] fractions of the frame, () = all of it):
    the pyramid's fine pass then searches only that region plus a margin, since a face centred outside
    it never votes; the coarse pass and the windows around followed faces are unchanged. `from_config`
    passes `decision.roi`, so the daemon, `maskwatch detect` and `maskwatch bench` share the rule.
    """

    def __init__(
        self,
        config: DetectorConfig | None = None,
        models_dir: Path | None = None,
        *,
        stream: bool = False,
        roi: Sequence[float] = (),
    ):
        self.config = config or DetectorConfig()
        self.stream = stream
        self.roi = tuple(float(v) for v in roi)
        if self.roi and not (
            len(self.roi) == 4 and 0 <= self.roi[0] < self.roi[2] <= 1 and 0 <= self.roi[1] < self.roi[3] <= 1
        ):
            raise ValueError(
                f"roi must be [x1, y1, x2, y2] fractions of the frame with x1 < x2, y1 < y2: {roi}"
            )
        folder = Path(models_dir) if models_dir is not None else detector_dir()
        self.passes = detection_passes(self.config)
        self.models = {
            name: BlazeFaceModel(folder / MODEL_FILES[name], ANCHOR_SPECS[name], self.config.threads)
            for name in dict.fromkeys(p.model for p in self.passes)
        }
        self.verifier = FaceVerifier() if self.config.verifier else None  # missing model: a clear error
        self.refinement = BoxRefinement.load() if self.config.box_refinement else None  # same
        # at a fixed camera the verifier is asked about the same patch again: a stream remembers its
        # answers for 3 frames; photos keep none (a 1-frame memory asks every time)
        remembered = 3 if stream else 1
        self._verdicts = VerdictMemory(frames=remembered)  # keep an unsure candidate?
        self._vetoes = VerdictMemory(frames=remembered)  # drop a low sure face?
        if self.verifier is not None:
            floor = self.config.verifier_floor
            self.passes = tuple(dataclasses.replace(p, floor=min(floor, p.threshold)) for p in self.passes)
        self._since_whole: int | None = None  # stream frames since the last whole-frame search
        self._shape: tuple[int, ...] | None = None
        self._followed: list[tuple[np.ndarray, int]] = []  # small faces: box in frame pixels, frames missed
        self._every_frame_passes_due = True  # False while every face in view is followed in windows

    @classmethod
    def from_config(
        cls, config: Config, models_dir: Path | None = None, *, stream: bool = False
    ) -> FaceDetector:
        """The detector of `config`: its detector section, with the fine pass limited to `decision.roi`."""
        return cls(config.detector, models_dir, stream=stream, roi=config.decision.roi)

    def reset(self) -> None:
        """Forget the stream: the next frame is searched in full."""
        self._since_whole, self._shape, self._followed = None, None, []
        self._every_frame_passes_due = True
        self._verdicts.forget()
        self._vetoes.forget()

    def candidates(self, frame: np.ndarray, frame_order: str = "BGR", whole: bool = True) -> Candidates:
        """The raw candidates of every pass, pooled, before NMS.

        With `whole` False, passes with `every` > 1 look only in windows around the followed faces.
        """
        return Candidates.concat(self._candidates_by_pass(frame, frame_order, whole))

    def _candidates_by_pass(self, frame: np.ndarray, frame_order: str, whole: bool) -> list[Candidates]:
        """Each pass's candidates: all of them over the whole frame when `whole`; otherwise the windowed
        passes around the followed faces, and the every-frame passes (the coarse one) only while a face
        in view is left to them: when all faces are followed, a large newcomer waits for the next whole
        search like a small one, and the frame is spared the coarse pass (0.35 ms with 2 threads)."""
        followed = np.array([box for box, _ in self._followed], np.float32).reshape(-1, 4)
        by_pass = []
        for p in self.passes:
            model = self.models[p.model]
            if whole or (p.every == 1 and self._every_frame_passes_due):
                by_pass.append(model.candidates(frame, p, frame_order, self.roi))
            elif p.every == 1:
                by_pass.append(Candidates.empty())
            else:
                by_pass.append(model.candidates_near(frame, p, followed, frame_order, self.roi))
        return by_pass

    def detect(self, frame: np.ndarray, frame_order: str = "BGR") -> list[Face]:
        """Faces in an HxWx3 uint8 frame, best score first, boxes inside the frame (moved to the VOC
        scenes' convention by the box refinement unless `box_refinement` is off)."""
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"frame must be HxWx3 uint8, got shape {frame.shape} dtype {frame.dtype}")
        if frame.size == 0:
            raise ValueError(f"frame is empty: shape {frame.shape}")
        if frame_order not in ("BGR", "RGB"):
            raise ValueError(f"frame_order must be 'BGR' or 'RGB', got {frame_order!r}")
        height, width = frame.shape[:2]
        if (
            self.config.photo_tiles
            and not self.stream
            and not self.roi
            and photo_tiles.needs_tiles(width, height)
        ):
            return photo_tiles.search(lambda tile: self._detect(tile, frame_order), frame)
        return self._detect(frame, frame_order)

    def _detect(self, frame: np.ndarray, frame_order: str) -> list[Face]:
        """`detect` on one camera-sized frame (or a photo run whole)."""
        whole = self._whole_frame_due(frame.shape)
        by_pass = self._candidates_by_pass(frame, frame_order, whole)
        by_pass, unsure = _set_aside_unsure(by_pass)
        pooled = Candidates.concat(by_pass)
        boxes, keypoints, scores = blazeface.weighted_nms(
            pooled.boxes, pooled.keypoints, pooled.scores, self.config.nms_iou
        )
        if self.verifier is not None:
            boxes, keypoints, scores = self._add_verified(
                frame, frame_order, boxes, keypoints, scores, unsure
            )
        height, width = frame.shape[:2]
        boxes = np.clip(boxes, 0, [width, height, width, height])
        if self.stream:
            every_frame = Candidates.concat(
                [c for c, p in zip(by_pass, self.passes, strict=True) if p.every == 1]
            )
            self._follow(boxes, every_frame.boxes, max(height, width), whole)
        if self.refinement is not None:  # last, so the stream's memory above keeps BlazeFace's own boxes
            boxes = self.refinement.refine(boxes, keypoints, (width, height))  # stays inside the frame
        return [
            Face(
                box=tuple(float(v) for v in b),
                score=float(s),
                keypoints=tuple((float(x), float(y)) for x, y in k),
            )
            for b, k, s in zip(boxes, keypoints, scores, strict=True)
        ]

    def _whole_frame_due(self, shape: tuple[int, ...]) -> bool:
        """Whether every pass covers the whole frame this time: always for photos; in a stream while the
        last frame showed nobody (so the first person to appear is found on the first frame), on every
        `fine_every`th frame while somebody is in view, and whenever the frame size changes."""
        if not self.stream:
            return True
        if shape != self._shape:
            self.reset()
            self._shape = shape
        return self._since_whole is None or self._since_whole + 1 >= self.config.fine_every

    def _follow(self, boxes: np.ndarray, every_frame: np.ndarray, frame_long_side: int, whole: bool) -> None:
        """Remember this frame's faces that the next frame's every-frame passes may not find: the small
        ones (below FOLLOW_BELOW_PX in the fine input), and any other that no candidate of those passes
        (`every_frame`, frame pixels) backs. A whole-frame search replaces the memory; a window search
        keeps a face it missed for FOLLOW_MISSES more frames. The every-frame passes are due on the next
        frame unless every face of this one is followed and all of those are small: a large followed face
        (a masked one whose coarse candidates were all unsure) would outgrow its window."""
        self._every_frame_passes_due = True
        if not len(boxes):
            self._since_whole = None  # nobody in view: the next frame is searched in full
        else:
            self._since_whole = 0 if whole else self._since_whole + 1
        fine = max((p.long_side for p in self.passes if p.every > 1), default=0)
        if not fine:
            return
        backed = (blazeface.iou_matrix(boxes, every_frame) >= FOLLOW_IOU).any(axis=1)
        small = [
            b
            for b, sure in zip(boxes, backed, strict=True)
            if b[3] - b[1] < FOLLOW_BELOW_PX * frame_long_side / fine or not sure
        ]
        missed = [
            (box, misses + 1)
            for box, misses in ([] if whole else self._followed)
            if misses < FOLLOW_MISSES
            and not (blazeface.iou_one_to_many(box, np.array(small).reshape(-1, 4)) > 0).any()
        ]
        self._followed = [(b, 0) for b in small] + missed
        large = COARSE_WITH_FOLLOWED_PX * frame_long_side / fine
        self._every_frame_passes_due = len(small) < len(boxes) or any(b[3] - b[1] >= large for b in small)

    # --- the face verifier (docs/detector.md): a second opinion on candidates below the pass rules ---

    def _add_verified(self, frame, frame_order, boxes, keypoints, scores, unsure: Candidates):
        """The sure faces, less those vetoed, plus the unsure ones the verifier calls faces, best first.

        Sure faces scoring under `verifier_veto_below` are dropped when the verifier is sure they are no
        face (`_without_vetoed`); a candidate they would have covered is then judged on its own. Unsure
        candidates are merged by the same weighted NMS. One that overlaps a face already kept
        (IoU above nms_iou) is that face, and one lying mostly inside it is a part of it (the eyes and
        mask of a face found whole at another scale): both are dropped unchecked. The verifier sees the
        rest, a few per frame at most, best score first; in a stream, a candidate that has not moved since
        the verifier answered for it on a recent frame takes that answer (VerdictMemory).
        """
        boxes, keypoints, scores = self._without_vetoed(frame, frame_order, boxes, keypoints, scores)
        u_boxes, u_keypoints, u_scores = blazeface.weighted_nms(
            unsure.boxes, unsure.keypoints, unsure.scores, self.config.nms_iou
        )
        height, width = frame.shape[:2]
        u_boxes = np.minimum(np.maximum(u_boxes, 0), np.array([width, height, width, height], np.float32))
        new = [i for i, b in enumerate(u_boxes) if not _covered(b, boxes, self.config.nms_iou)]
        if not new:
            self._verdicts.forget()  # an answer is taken over on the next frame only, not after a gap
            return boxes, keypoints, scores
        face = self._verdicts.answer(self.verifier.is_face, frame, u_boxes[new], frame_order)
        for i in (i for i, is_face in zip(new, face, strict=True) if is_face):
            if not _covered(u_boxes[i], boxes, self.config.nms_iou):
                boxes = np.concatenate([boxes, u_boxes[i : i + 1]])
                keypoints = np.concatenate([keypoints, u_keypoints[i : i + 1]])
                scores = np.concatenate([scores, u_scores[i : i + 1]])
        order = np.argsort(-scores, kind="stable")
        return boxes[order], keypoints[order], scores[order]

    def _without_vetoed(self, frame, frame_order, boxes, keypoints, scores):
        """The sure faces, less those scoring under `verifier_veto_below` that the verifier is sure are no
        face (FaceVerifier.is_surely_not_face).

        The pass thresholds alone let through background that BlazeFace scores 0.5-0.7 (a building wall,
        a black jacket), and those become tracks that the classifier may call violations. The
        verifier's bar for a veto is far below its bar for taking a face back, because a face found at
        these scores is often masked and its probability is middling, not near zero (docs/detector.md).
        """
        low = np.flatnonzero(scores < self.config.verifier_veto_below)
        if not len(low):
            self._vetoes.forget()  # an answer is taken over on the next frame only, not after a gap
            return boxes, keypoints, scores
        vetoed = self._vetoes.answer(self.verifier.is_surely_not_face, frame, boxes[low], frame_order)
        keep = np.ones(len(scores), bool)
        keep[low[vetoed]] = False
        return boxes[keep], keypoints[keep], scores[keep]


def _covered(box: np.ndarray, faces: np.ndarray, iou: float) -> bool:
    """Whether `box` is one of `faces` (IoU above `iou`) or mostly (VERIFY_INSIDE) inside one."""
    return blazeface.covered(box, faces, iou, VERIFY_INSIDE)


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
