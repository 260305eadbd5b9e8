"""The face verifier: a second opinion on the detector's uncertain candidates.

BlazeFace scores masked faces 0.4-0.65, where its false positives also score (docs/detector.md), so no
threshold separates them. The verifier is a small int8 CNN trained on our own face and not-face crops
(`python -m train.verifier`); FaceDetector runs it only on candidates scoring between
`detector.verifier_floor` and the pass's own threshold, a few per frame, and keeps those it calls faces;
it also vetoes the faces the passes keep under `detector.verifier_veto_below` that it is sure are none.
Its crop is edge.preprocess.crop_face with the spec in its sidecar (`models/face_verifier.json`), which
also holds the decision threshold and the model's SHA-256; both are checked when it loads.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge.blazeface import iou_matrix
from edge.model_metadata import (
    ModelMetadataError,
    QuantParams,
    file_sha256,
    read_json,
    sidecar_json,
    sidecar_path,
    validate_against,
)
from edge.paths import models_dir
from edge.preprocess import Box, PreprocessSpec, crop_face
from edge.runtime import dequantize, load_interpreter, quant_params, quantize

log = logging.getLogger(__name__)

LABELS = ("not_face", "face")
FORMAT = "maskwatch-face-verifier"
FORMAT_VERSION = 1
VERIFIER_COMMAND = "python -m train.verifier"
# face probability under which a candidate is surely no face: the veto on sure but low-scoring candidates
# (detector.verifier_veto_below; docs/detector.md, "The face verifier"), far below the keep threshold
SURELY_NOT_FACE = 0.1


class VerifierModelMissingError(FileNotFoundError):
    """The verifier .tflite is not there; the message names the command that makes it."""


def verifier_model_path() -> Path:
    return models_dir() / "face_verifier.tflite"


@dataclass
class VerifierMetadata:
    """The sidecar: how crops are made, where the decision lies, and which model file it describes."""

    preprocess: PreprocessSpec
    threshold: float  # face probability at or above which a candidate is a face
    input: QuantParams
    output: QuantParams
    labels: list[str] = field(default_factory=lambda: list(LABELS))
    model_sha256: str = ""
    training: dict = field(default_factory=dict)
    format: str = FORMAT
    format_version: int = FORMAT_VERSION

    def to_json(self) -> str:
        return sidecar_json(self)

    @classmethod
    def from_dict(cls, data: dict, source: str = "verifier metadata") -> VerifierMetadata:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ModelMetadataError(f"{source}: not a face verifier sidecar (format is not {FORMAT!r})")
        if data.get("format_version") != FORMAT_VERSION:
            raise ModelMetadataError(
                f"{source}: format_version {data.get('format_version')!r} is not {FORMAT_VERSION}"
            )
        try:
            meta = cls(
                preprocess=PreprocessSpec.from_dict(data["preprocess"]),
                threshold=float(data["threshold"]),
                input=QuantParams(**data["input"]),
                output=QuantParams(**data["output"]),
                labels=list(data["labels"]),
                model_sha256=str(data.get("model_sha256", "")),
                training=dict(data.get("training", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelMetadataError(f"{source}: malformed verifier metadata ({exc})") from exc
        if tuple(meta.labels) != LABELS:
            raise ModelMetadataError(f"{source}: labels {meta.labels} are not {list(LABELS)}")
        if not 0.0 < meta.threshold < 1.0:
            raise ModelMetadataError(f"{source}: threshold {meta.threshold} is not between 0 and 1")
        return meta


def load_verifier_metadata(model_path: Path) -> VerifierMetadata:
    """The sidecar beside `model_path`, checked to describe this exact file."""
    model_path = Path(model_path)
    path = sidecar_path(model_path)
    if not path.is_file():
        raise ModelMetadataError(
            f"verifier metadata {path} is missing: it must sit beside {model_path.name} "
            f"(`{VERIFIER_COMMAND}` writes both)"
        )
    meta = VerifierMetadata.from_dict(read_json(path), source=str(path))
    if meta.model_sha256 != file_sha256(model_path):
        raise ModelMetadataError(
            f"{path} describes another model file (sha256 differs from {model_path.name}); "
            f"restore the matching pair or re-run `{VERIFIER_COMMAND}`"
        )
    return meta


class FaceVerifier:
    """Face probability of boxes in a frame, from the int8 verifier; `is_face` applies its threshold."""

    def __init__(self, model_path: Path | None = None, threads: int = 1):
        self.model_path = Path(model_path) if model_path is not None else verifier_model_path()
        if not self.model_path.is_file():
            raise VerifierModelMissingError(
                f"face verifier model {self.model_path} is missing: restore it from the repository or "
                f"build it with `{VERIFIER_COMMAND}` (or set detector.verifier: false)"
            )
        self.metadata = load_verifier_metadata(self.model_path)
        self.interpreter = load_interpreter(self.model_path, threads)
        (inp,), (out,) = self.interpreter.get_input_details(), self.interpreter.get_output_details()
        try:
            validate_against(self.metadata, inp, out)
        except ModelMetadataError as exc:
            raise ModelMetadataError(f"{self.model_path}: {exc}") from exc
        self._input, self._output = inp["index"], out["index"]
        self._in_params, self._out_params = quant_params(inp), quant_params(out)
        # convert.quantize makes uint8 input at scale 1, zero point 0: crops go in as they are
        p = self._in_params
        self._raw_input = p.dtype == "uint8" and p.scale == 1.0 and p.zero_point == 0

    @property
    def threshold(self) -> float:
        return self.metadata.threshold

    def score_crops(self, crops: np.ndarray) -> np.ndarray:
        """Face probability (N,) of crops (N, S, S, 3) uint8 made by `crop_face` with this spec."""
        scores = np.zeros(len(crops), np.float32)
        if not self._raw_input:
            crops = quantize(np.asarray(crops, np.float32), self._in_params)
        for i, crop in enumerate(crops):
            self.interpreter.set_tensor(self._input, crop[None])
            self.interpreter.invoke()
            probabilities = dequantize(self.interpreter.get_tensor(self._output)[0], self._out_params)
            scores[i] = probabilities[1]
        return scores

    def face_scores(self, frame: np.ndarray, boxes, frame_order: str = "BGR") -> np.ndarray:
        """Face probability of each box (x1, y1, x2, y2 frame pixels) of an HxWx3 uint8 frame."""
        spec = self.metadata.preprocess
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        crops = np.array([crop_face(frame, _box(b), spec, frame_order) for b in boxes], np.uint8)
        return self.score_crops(crops.reshape(-1, spec.input_size, spec.input_size, 3))

    def is_face(self, frame: np.ndarray, boxes, frame_order: str = "BGR") -> np.ndarray:
        return self.face_scores(frame, boxes, frame_order) >= self.threshold

    def is_surely_not_face(self, frame: np.ndarray, boxes, frame_order: str = "BGR") -> np.ndarray:
        """Whether each box scores under SURELY_NOT_FACE: the bar for turning down a candidate that the
        detector's own thresholds passed, which must be far surer than the bar for taking one back."""
        return self.face_scores(frame, boxes, frame_order) < SURELY_NOT_FACE


class VerdictMemory:
    """A stream's recent verifier answers, by box: a candidate that stays where it was (a poster, a fold
    of a shirt) is asked about once every `frames` frames instead of on every frame.

    At a fixed camera most of the verifier's questions are the same background patch again; each one
    costs a crop and an interpreter switch (0.1-0.3 ms). A candidate matches an answer of the frame before
    at IoU >= `iou` and takes it over; an answer is used for `frames` frames in all, then asked again.
    So a face that the verifier wrongly turned down is asked about again within `frames` frames, and a
    person stepping into a patch's place changes its box and is asked about at once.
    """

    def __init__(self, frames: int = 3, iou: float = 0.6):
        if frames < 1:
            raise ValueError(f"frames must be at least 1, got {frames}")
        self.frames, self.iou = frames, iou
        self.forget()

    def forget(self) -> None:
        self._boxes = np.zeros((0, 4), np.float32)
        self._verdicts = np.zeros(0, bool)
        self._ages = np.zeros(0, np.int64)

    def is_face(
        self, verifier: FaceVerifier, frame: np.ndarray, boxes, frame_order: str = "BGR"
    ) -> np.ndarray:
        """`verifier.is_face` for `boxes`, asking it only about boxes with no recent answer."""
        return self.answer(verifier.is_face, frame, boxes, frame_order)

    def answer(self, ask, frame: np.ndarray, boxes, frame_order: str = "BGR") -> np.ndarray:
        """`ask(frame, boxes, frame_order)` (a yes/no question per box), asked only about boxes with no
        recent answer; one memory serves one question. Answers are taken over by the next call only: on
        a frame with no question, call `forget` (or this with no boxes)."""
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        answer_of = np.full(len(boxes), -1)
        if len(self._boxes) and len(boxes):
            overlap = iou_matrix(boxes, self._boxes)
            closest = overlap.argmax(axis=1)
            found = overlap[np.arange(len(boxes)), closest] >= self.iou
            answer_of[found] = closest[found]
        asked = answer_of < 0
        verdicts = np.zeros(len(boxes), bool)
        if asked.any():
            verdicts[asked] = ask(frame, boxes[asked], frame_order)
        verdicts[~asked] = self._verdicts[answer_of[~asked]]
        ages = np.zeros(len(boxes), np.int64)
        ages[~asked] = self._ages[answer_of[~asked]] + 1
        keep = ages + 1 < self.frames
        self._boxes, self._verdicts, self._ages = boxes[keep], verdicts[keep], ages[keep]
        return verdicts


def _box(values: np.ndarray) -> Box:
    x1, y1, x2, y2 = (float(v) for v in values)
    return x1, y1, x2, y2
