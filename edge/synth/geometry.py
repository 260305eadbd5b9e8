"""Where a synthetic mask goes on a face: a face-aligned frame from BlazeFace's six keypoints and mask outlines.

Kept apart from the drawing (edge/synth/masks.py) because this part is pure geometry that tests can check
with plain numbers. Every length is measured in *units*: the distance from the eye line down to the mouth
keypoint, which stays meaningful under roll, yaw and any image size.

The face frame: `a` runs along the eye line towards the subject's left eye (image right on a frontal face),
`b` runs down the face, both in units from the midpoint of the eyes. A mask outline lives in *mask
coordinates* `(t, y)`: `t` in [-1, 1] goes from the mask's edge on the subject's right to the edge on the
left, `y` is `b`. Each half of the mask gets its own width, measured from the nose/mouth centre line to that
side's ear point, so a turned head (yaw) squeezes the far half and widens the near one, the way a mask
wrapped round a head looks from the front.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

KEYPOINT_NAMES = ("right_eye", "left_eye", "nose_tip", "mouth", "right_ear", "left_ear")

# Where the keypoints sit in a BlazeFace box on a frontal face (medians over faces2/without_mask), used
# when a caller has a box but no keypoints.
_TEMPLATE_IN_BOX = np.array(
    [[0.29, 0.28], [0.71, 0.28], [0.50, 0.50], [0.50, 0.71], [0.03, 0.37], [0.97, 0.37]], dtype=np.float64
)

# Landmarks in units below the eye line on a typical face (measured on faces2/without_mask with BlazeFace).
NOSE_TIP_Y = 0.5
MOUTH_Y = 1.0
CHIN_Y = 1.7


@dataclass(frozen=True)
class FaceFrame:
    """A face-aligned coordinate frame: eye midpoint origin, eye-line axis `u`, down-the-face axis `v`."""

    origin: np.ndarray  # (2,) pixels, midpoint of the eyes
    u: np.ndarray  # (2,) unit vector along the eye line, towards the subject's left eye
    v: np.ndarray  # (2,) unit vector down the face, perpendicular to u
    unit: float  # pixels per unit (eye line to mouth)
    centre_a: float  # the nose/mouth centre line: a = centre_a + centre_slope * b
    centre_slope: float
    half_width_right: float  # units from the centre line to the subject's right ear point
    half_width_left: float
    ear_points: np.ndarray  # (2, 2) pixels: right ear, left ear
    nose_y: float = NOSE_TIP_Y  # units from the eye line down to this face's nose tip (on the centre line)

    def centre(self, b: np.ndarray | float) -> np.ndarray | float:
        return self.centre_a + self.centre_slope * b

    def mask_to_image(
        self, t: np.ndarray, y: np.ndarray, width_scale: float = 1.0, shift: float = 0.0
    ) -> np.ndarray:
        """Pixel coordinates (N, 2) of mask coordinates `t`, `y` (see the module docstring)."""
        t = np.asarray(t, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        half = np.where(t >= 0, self.half_width_left, self.half_width_right) * width_scale
        a = self.centre(y) + shift + t * half
        return self.face_to_image(a, y)

    def face_to_image(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        pixels = (
            self.origin + (np.asarray(a)[..., None] * self.u + np.asarray(b)[..., None] * self.v) * self.unit
        )
        return pixels

    def image_to_face(self, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Face coordinates (a, b) in units of pixel coordinates (any matching shapes)."""
        ox, oy = float(self.origin[0]), float(self.origin[1])  # python floats keep float32 grids float32
        ux, uy = float(self.u[0]) / self.unit, float(self.u[1]) / self.unit
        dx, dy = xs - ox, ys - oy
        return dx * ux + dy * uy, dy * ux - dx * uy  # v = (-u_y, u_x)

    def image_to_mask(
        self, xs: np.ndarray, ys: np.ndarray, width_scale: float = 1.0, shift: float = 0.0
    ) -> tuple[np.ndarray, np.ndarray]:
        """Mask coordinates (t, y) of pixel coordinates: the inverse of `mask_to_image`."""
        return self.face_to_mask(*self.image_to_face(xs, ys), width_scale, shift)

    def face_to_mask(
        self, a: np.ndarray, b: np.ndarray, width_scale: float = 1.0, shift: float = 0.0
    ) -> tuple[np.ndarray, np.ndarray]:
        """Mask coordinates (t, y) of face coordinates (a, b)."""
        offset = a - self.centre(b) - shift
        dtype = np.asarray(offset).dtype.type
        half = np.where(offset >= 0, dtype(self.half_width_left), dtype(self.half_width_right)) * width_scale
        return offset / half, b


def keypoints_from_box(box: Sequence[float]) -> np.ndarray:
    """Typical frontal keypoints (6, 2) for a BlazeFace-like box, for callers without a detector."""
    x1, y1, x2, y2 = (float(v) for v in box)
    return np.array([x1, y1]) + _TEMPLATE_IN_BOX * np.array([x2 - x1, y2 - y1])


def face_frame(keypoints: Sequence[Sequence[float]] | np.ndarray | None, box: Sequence[float]) -> FaceFrame:
    """The face frame of one face. `keypoints`: BlazeFace's six points in pixels, or None to use the box.

    The box keeps the scale sane when keypoints are poor (a profile face or a blurred one): the unit is
    held within 0.3 to 0.6 of the box height, where BlazeFace boxes put it (median 0.44).
    """
    points = keypoints_from_box(box) if keypoints is None else np.asarray(keypoints, dtype=np.float64)
    if points.shape != (6, 2):
        raise ValueError(
            f"keypoints must be 6 (x, y) points in {KEYPOINT_NAMES} order, got shape {points.shape}"
        )
    right_eye, left_eye, nose, mouth, right_ear, left_ear = points
    eye_vector = left_eye - right_eye
    eye_distance = float(np.hypot(*eye_vector))
    u = eye_vector / eye_distance if eye_distance > 1e-6 else np.array([1.0, 0.0])
    v = np.array([-u[1], u[0]])
    origin = (right_eye + left_eye) / 2.0
    box_height = max(float(box[3]) - float(box[1]), 1.0)
    mouth_b_px = float(np.dot(mouth - origin, v))
    unit = float(np.clip(mouth_b_px, 0.3 * box_height, 0.6 * box_height))

    def face_coords(point: np.ndarray) -> tuple[float, float]:
        d = point - origin
        return float(np.dot(d, u)) / unit, float(np.dot(d, v)) / unit

    (nose_a, nose_b), (mouth_a, mouth_b) = face_coords(nose), face_coords(mouth)
    slope = (mouth_a - nose_a) / (mouth_b - nose_b) if mouth_b - nose_b > 0.2 else 0.0
    slope = float(np.clip(slope, -0.5, 0.5))
    centre_a = nose_a - slope * nose_b
    (right_a, right_b), (left_a, left_b) = face_coords(right_ear), face_coords(left_ear)
    half_right = centre_a + slope * right_b - right_a
    half_left = left_a - (centre_a + slope * left_b)
    # A turned head hides one ear behind the face; never let a half collapse or flip.
    total = float(np.clip(half_right + half_left, 1.4, 3.0))
    share = float(np.clip(half_right / max(half_right + half_left, 1e-6), 0.15, 0.85))
    return FaceFrame(
        origin=origin,
        u=u,
        v=v,
        unit=unit,
        centre_a=float(centre_a),
        centre_slope=slope,
        half_width_right=total * share,
        half_width_left=total * (1.0 - share),
        ear_points=np.array([right_ear, left_ear]),
        nose_y=nose_b,
    )


@dataclass(frozen=True)
class MaskOutline:
    """The mask's edges in mask coordinates, for one shape worn at one height.

    The top edge is `top_centre + top_rise * |t|**top_power` (its lowest point at the sides); the bottom
    edge is `bottom_centre - bottom_rise * |t|**bottom_power`; the bottom corners sit at `±bottom_narrow`.
    """

    top_centre: float
    top_rise: float
    top_power: float
    bottom_centre: float
    bottom_rise: float
    bottom_power: float
    bottom_narrow: float = 1.0

    def top(self, t: np.ndarray) -> np.ndarray:
        return self.top_centre + self.top_rise * np.abs(t) ** self.top_power

    def bottom(self, t: np.ndarray) -> np.ndarray:
        return self.bottom_centre - self.bottom_rise * np.abs(t) ** self.bottom_power

    def moved(self, top_centre: float, bottom_centre: float) -> MaskOutline:
        """The same shape stretched or squeezed so its centre runs from `top_centre` to `bottom_centre`."""
        scale = (bottom_centre - top_centre) / (self.bottom_centre - self.top_centre)
        return MaskOutline(
            top_centre=top_centre,
            top_rise=self.top_rise * scale,
            top_power=self.top_power,
            bottom_centre=bottom_centre,
            bottom_rise=self.bottom_rise * scale,
            bottom_power=self.bottom_power,
            bottom_narrow=self.bottom_narrow,
        )

    def polygon(self, samples: int = 24) -> np.ndarray:
        """Closed outline (2 * samples, 2) of (t, y): top edge left to right, bottom edge back."""
        t = np.linspace(-1.0, 1.0, samples)
        top = np.stack([t, self.top(t)], axis=1)
        bottom = np.stack([t[::-1] * self.bottom_narrow, self.bottom(t[::-1])], axis=1)
        return np.concatenate([top, bottom])

    def fraction_down(self, t: np.ndarray, y: np.ndarray) -> np.ndarray:
        """0 at the top edge, 1 at the bottom edge: where pleats and hems go."""
        t = np.clip(t, -1.0, 1.0)
        top = self.top(t)
        return (y - top) / np.maximum(self.bottom(t) - top, 1e-3)
