"""The one preprocessing contract shared by train/, convert/ and edge/.

Train/serve skew ruins face classifiers quietly, so every face crop the model ever sees, in training,
calibration or at the entrance, is made here: a square box around the detector's box grown by a margin,
kept inside the frame, resized with one interpolation, in RGB order. Pixels go to the model as uint8
0..255; the model normalizes them itself (its first layer maps them to [-1, 1], MobileNetV2's range), so
no caller can normalize differently.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

Box = tuple[float, float, float, float]  # x1, y1, x2, y2 in pixels, x2/y2 exclusive


@dataclass(frozen=True)
class PreprocessSpec:
    """Everything that decides what a face crop looks like. Stored in the model metadata."""

    input_size: int = 128
    crop_margin: float = 0.2  # grown on every side, as a fraction of the box's longer side
    color_order: str = "RGB"
    interpolation: str = "area"  # cv2.INTER_AREA: the right filter for downscaling, which is most crops
    normalization: str = "in_model_minus1_1"  # model input is uint8 0..255; the model maps it to [-1, 1]

    def __post_init__(self):
        """Only what this module implements: a sidecar asking for anything else must fail at load, not
        crop differently (an unknown colour order would silently swap channels, for instance)."""
        problems = []
        if not (isinstance(self.input_size, int) and 16 <= self.input_size <= 1024):
            problems.append(f"input_size {self.input_size!r} is not an integer in [16, 1024]")
        if not (isinstance(self.crop_margin, int | float) and 0.0 <= self.crop_margin <= 2.0):
            problems.append(f"crop_margin {self.crop_margin!r} is not in [0, 2]")
        if self.color_order not in COLOR_ORDERS:
            problems.append(f"color_order {self.color_order!r} is not one of {', '.join(COLOR_ORDERS)}")
        if self.interpolation not in _INTERPOLATIONS:
            problems.append(
                f"interpolation {self.interpolation!r} is not one of {', '.join(_INTERPOLATIONS)}"
            )
        if self.normalization != IN_MODEL_NORMALIZATION:
            problems.append(f"normalization {self.normalization!r} is not {IN_MODEL_NORMALIZATION!r}")
        if problems:
            raise ValueError("preprocess: " + "; ".join(problems))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> PreprocessSpec:
        """Every field, and nothing else: a misspelt or missing key must not fall back to a default."""
        names = set(cls.__dataclass_fields__)
        missing, unknown = sorted(names - set(data)), sorted(set(data) - names)
        if missing or unknown:
            raise ValueError(f"preprocess: missing {missing or 'nothing'}, unknown {unknown or 'nothing'}")
        return cls(**data)


COLOR_ORDERS = ("RGB", "BGR")
IN_MODEL_NORMALIZATION = "in_model_minus1_1"
_INTERPOLATIONS = {"area": cv2.INTER_AREA, "linear": cv2.INTER_LINEAR}


def square_crop_box(
    box: Box, frame_width: int, frame_height: int, margin: float
) -> tuple[int, int, int, int]:
    """Square box around `box`, grown by `margin`, moved (not cut) to stay inside the frame.

    Detector boxes are tight and vary in aspect; a square with context around it gives the classifier
    the chin and forehead where a worn-wrong mask shows. The square is shifted back inside the frame so
    faces near an edge keep their aspect; only a square larger than the frame is clipped. Never empty.
    """
    if frame_width < 1 or frame_height < 1:
        raise ValueError(f"frame must be at least 1x1 pixels, got {frame_width}x{frame_height}")
    x1, y1, x2, y2 = (float(v) for v in box)
    width, height = max(x2 - x1, 1.0), max(y2 - y1, 1.0)
    side = max(width, height) * (1.0 + 2.0 * margin)
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    side_x, side_y = min(side, frame_width), min(side, frame_height)
    left = min(max(cx - side_x / 2.0, 0.0), frame_width - side_x)
    top = min(max(cy - side_y / 2.0, 0.0), frame_height - side_y)
    ix1, iy1 = int(round(left)), int(round(top))
    ix2 = max(min(int(round(left + side_x)), frame_width), ix1 + 1)
    iy2 = max(min(int(round(top + side_y)), frame_height), iy1 + 1)
    return ix1, iy1, ix2, iy2


def crop_face(frame: np.ndarray, box: Box, spec: PreprocessSpec, frame_order: str = "BGR") -> np.ndarray:
    """One face as the model's uint8 input: (size, size, 3) in the spec's colour order.

    `frame_order` names the frame's channel order explicitly (OpenCV and picamera2's "RGB888" give BGR;
    images loaded by PIL/skimage are RGB), because a silent swap costs accuracy without any error.
    """
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"frame must be HxWx3 uint8, got shape {frame.shape} dtype {frame.dtype}")
    if frame_order not in ("BGR", "RGB"):
        raise ValueError(f"frame_order must be 'BGR' or 'RGB', got {frame_order!r}")
    height, width = frame.shape[:2]
    x1, y1, x2, y2 = square_crop_box(box, width, height, spec.crop_margin)
    crop = frame[y1:y2, x1:x2]
    size = spec.input_size
    interpolation = _INTERPOLATIONS[spec.interpolation]
    if crop.shape[0] < size or crop.shape[1] < size:
        interpolation = cv2.INTER_LINEAR  # INTER_AREA upscales blockily
    crop = cv2.resize(crop, (size, size), interpolation=interpolation)
    if frame_order != spec.color_order:
        crop = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB)  # the same swap either way; 30x cheaper than [..., ::-1]
    return np.ascontiguousarray(crop)


def crop_whole_image(image: np.ndarray, spec: PreprocessSpec, frame_order: str = "BGR") -> np.ndarray:
    """An image that already is a face crop (class-folder datasets): the whole image, no margin added."""
    height, width = image.shape[:2]
    whole = PreprocessSpec(**{**spec.to_dict(), "crop_margin": 0.0})
    return crop_face(image, (0, 0, width, height), whole, frame_order)


def normalize_for_float_model(crops_uint8: np.ndarray) -> np.ndarray:
    """Float input of the Keras model: the same 0..255 pixels as float32 (the model rescales inside)."""
    return crops_uint8.astype(np.float32)
