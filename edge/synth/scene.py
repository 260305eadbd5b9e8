"""Entrance-camera frames made from a face photo that ships inside scikit-image, for the demo and for tests.

`maskwatch run --demo` and the end-to-end tests need people whose truth is known (where the face is, which
mask it wears) without any file of the user's and without a download. scikit-image's wheel carries
`astronaut.png` (NASA's portrait of Eileen Collins, public domain), a frontal face with its keypoints
measured here once. This module cuts the person out softly, draws masks on her with the synthesizer, and
pastes her into a plain 640x480 corridor at any face size and position, returning the ground truth (box,
keypoints, label) in frame pixels.

The photo is read straight from the installed scikit-image package, without importing scikit-image (which
would pull in SciPy), or, on a Pi without scikit-image, from the copy `python -m edge.fetch_demo_image`
took out of its wheel at install time. Nothing is downloaded at run time.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cached_property, lru_cache
from pathlib import Path

import cv2
import numpy as np

from edge import fetch_demo_image
from edge.synth.masks import MaskStyle, draw_mask, label_for

FRAME_WIDTH, FRAME_HEIGHT = 640, 480
Box = tuple[float, float, float, float]
Point = tuple[float, float]

# Measured on astronaut.png (512x512) with BlazeFace's short-range model and checked by eye; BGR pixels.
ASTRONAUT_BOX: Box = (178.7, 82.3, 271.2, 174.8)
ASTRONAUT_KEYPOINTS: tuple[Point, ...] = (
    (206.8, 100.5),  # right eye
    (251.3, 109.3),  # left eye
    (226.4, 124.0),  # nose tip
    (222.1, 145.2),  # mouth
    (177.3, 110.0),  # right ear
    (270.7, 126.8),  # left ear
)
# Head, neck and body as ellipses (cx, cy, half width, half height); the photo is extended downwards by
# repeating its last rows so that a near person's body does not end mid-frame.
_ASTRONAUT_PERSON = ((222, 105, 80, 95), (222, 190, 60, 60), (175, 470, 165, 300))
_BODY_EXTENSION_ROWS = 300
_SUIT_TOP = 200  # her collar: no skin below it
_MISSION_PATCH = (170, 384, 40)  # centre x, y and radius on the suit
_NAME_TAG = (276, 334, 332, 378)  # x1, y1, x2, y2


class SampleImageMissingError(FileNotFoundError):
    """The sample photo is neither in an installed scikit-image nor fetched; the message says how to get it."""


@dataclass(frozen=True, eq=False)  # holds arrays: compare by identity
class SampleFace:
    """A photo of one person with the truth about their face, ready to be pasted into frames."""

    name: str
    image: np.ndarray  # BGR uint8
    alpha: np.ndarray  # float32 0..1: where the person is (soft edges)
    box: Box
    keypoints: tuple[Point, ...]
    placement: str | None = None  # the drawn mask's placement; None: no mask

    @property
    def label(self) -> str:
        return label_for(self.placement)

    @cached_property
    def pyramid(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """(image, alpha) halved again and again, down to about 32 pixels: for shrinking without aliasing."""
        levels = [(self.image, self.alpha)]
        while min(levels[-1][1].shape) >= 64:
            image, alpha = levels[-1]
            levels.append((cv2.pyrDown(image), cv2.pyrDown(alpha)))
        return levels

    def mirrored(self) -> SampleFace:
        """The same person flipped left to right: another face for the detector and the tracker."""
        width = self.image.shape[1]
        x1, y1, x2, y2 = self.box
        flipped = [(width - 1 - x, y) for x, y in self.keypoints]
        right_eye, left_eye, nose, mouth, right_ear, left_ear = flipped  # sides swap in a mirror
        return replace(
            self,
            name=f"{self.name} (mirrored)",
            image=np.ascontiguousarray(self.image[:, ::-1]),
            alpha=np.ascontiguousarray(self.alpha[:, ::-1]),
            box=(width - x2, y1, width - x1, y2),
            keypoints=(left_eye, right_eye, nose, mouth, left_ear, right_ear),
        )

    def with_jacket(self, hue: int) -> SampleFace:
        """The same person in a jacket of another colour (OpenCV hue 0..179): tells the demo's people apart.

        Only strongly coloured orange pixels below the collar change, which on the astronaut is her suit; a
        blue or green suit is also one less skin-coloured blob for a face detector to mistake for a face.
        """
        hsv = cv2.cvtColor(self.image, cv2.COLOR_BGR2HSV)
        below = np.zeros(hsv.shape[:2], bool)
        below[_SUIT_TOP:] = True
        suit = below & (hsv[:, :, 0] <= 22) & (hsv[:, :, 1] >= 90)
        hsv[:, :, 0][suit] = hue
        hsv[:, :, 1][suit] = (hsv[:, :, 1][suit] * 0.65).astype(np.uint8)  # a jacket, not a safety vest
        hsv[:, :, 2][suit] = (hsv[:, :, 2][suit] * 0.8).astype(np.uint8)
        return replace(self, image=cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR))

    def with_mask(self, placement: str, seed: int = 0, style: MaskStyle | None = None) -> SampleFace:
        """The same person wearing a synthesized mask as `placement` (a random style unless given)."""
        rng = np.random.default_rng(seed)
        image = draw_mask(
            self.image, self.keypoints, self.box, placement, rng, style=style, color_order="BGR"
        )
        return replace(self, name=f"{self.name} ({placement})", image=image, placement=placement)


@dataclass(frozen=True)
class PlacedFace:
    """Where a sample's face landed in a frame: the ground truth tests and the demo timeline assert on."""

    box: Box  # x1, y1, x2, y2 frame pixels
    keypoints: tuple[Point, ...]
    label: str
    name: str

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]


def sample_image_path() -> Path:
    """The astronaut photo: scikit-image's copy when it is installed, else the one fetched for the demo.

    Either copy must have the pinned SHA-256, because the keypoints above were measured on exactly it.
    """
    candidates = []
    spec = importlib.util.find_spec("skimage")  # finds the package without importing it (and SciPy)
    if spec is not None and spec.submodule_search_locations:
        candidates.append(
            Path(next(iter(spec.submodule_search_locations))) / "data" / fetch_demo_image.FILE_NAME
        )
    candidates.append(fetch_demo_image.demo_image_dir() / fetch_demo_image.FILE_NAME)
    for path in candidates:
        if fetch_demo_image.has_expected_hash(path):
            return path
    raise SampleImageMissingError(
        f"the demo's sample photo (astronaut.png from scikit-image) was not found in {', '.join(map(str, candidates))}: "
        f"install it with `{fetch_demo_image.FETCH_COMMAND}` (or `pip install scikit-image`)"
    )


def person_alpha(shape: tuple[int, int], ellipses: Sequence[tuple[float, float, float, float]]) -> np.ndarray:
    """Soft cut-out (float32 0..1) of a person drawn as ellipses: no hard photo edge for a detector to latch on."""
    canvas = np.zeros(shape, np.uint8)
    for cx, cy, ax, ay in ellipses:
        cv2.ellipse(canvas, (int(cx), int(cy)), (int(ax), int(ay)), 0, 0, 360, 255, -1, cv2.LINE_AA)
    return cv2.GaussianBlur(canvas, (0, 0), 6).astype(np.float32) / 255.0


@lru_cache(maxsize=1)
def _astronaut_pixels() -> np.ndarray:
    image = cv2.imread(str(sample_image_path()), cv2.IMREAD_COLOR)
    if image is None:
        raise SampleImageMissingError("OpenCV could not read scikit-image's astronaut.png")
    # The round mission patch and the name tag look enough like faces to BlazeFace to be found now and
    # then; painted over with the suit, the demo has exactly one face per person.
    badges = np.zeros(image.shape[:2], np.uint8)
    cv2.circle(badges, _MISSION_PATCH[:2], _MISSION_PATCH[2], 255, -1)
    cv2.rectangle(badges, _NAME_TAG[:2], _NAME_TAG[2:], 255, -1)
    image = cv2.inpaint(image, badges, 7, cv2.INPAINT_TELEA)
    extended = cv2.copyMakeBorder(image, 0, _BODY_EXTENSION_ROWS, 0, 0, cv2.BORDER_REPLICATE)
    extended.setflags(write=False)
    return extended


@lru_cache(maxsize=1)
def astronaut() -> SampleFace:
    """scikit-image's astronaut (Eileen Collins), unmasked, BGR, with her face box and keypoints.

    Cached and read-only: `with_mask` and `mirrored` return new arrays.
    """
    image = _astronaut_pixels()
    alpha = person_alpha(image.shape[:2], _ASTRONAUT_PERSON)
    alpha.setflags(write=False)
    return SampleFace(
        name="astronaut",
        image=image,
        alpha=alpha,
        box=ASTRONAUT_BOX,
        keypoints=ASTRONAUT_KEYPOINTS,
    )


@lru_cache(maxsize=4)
def _background(width: int, height: int) -> np.ndarray:
    rng = np.random.default_rng(2024)
    rows = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    wall = np.float32([196, 203, 208]) * (1.0 - 0.12 * rows)  # BGR: a light grey-beige corridor wall
    image = np.broadcast_to(wall, (height, width, 3)).copy()
    floor_top = int(height * 0.74)
    image[floor_top:] = np.float32([112, 118, 124]) * (1.0 + 0.25 * rows[floor_top:] - 0.25)
    door_x1, door_x2, door_y1 = int(width * 0.33), int(width * 0.67), int(height * 0.1)
    cv2.rectangle(image, (door_x1, door_y1), (door_x2, floor_top), (80, 88, 96), -1)
    cv2.rectangle(image, (door_x1 + 12, door_y1 + 12), (door_x2 - 12, floor_top), (150, 160, 168), -1)
    cv2.line(image, (0, floor_top), (width, floor_top), (95, 100, 105), 3)
    image += rng.normal(0.0, 2.0, image.shape).astype(np.float32)  # sensor grain, fixed by the seed
    out = np.clip(image + 0.5, 0, 255).astype(np.uint8)
    out.setflags(write=False)
    return out


def entrance_background(width: int = FRAME_WIDTH, height: int = FRAME_HEIGHT) -> np.ndarray:
    """An empty corridor with a door (BGR uint8, a new array): what the camera sees between people."""
    return _background(width, height).copy()


def blend(under: np.ndarray, over: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """`over` on `under` (uint8 images) with per-pixel `weight` 0..1, in integers: ten times faster than floats."""
    w = (np.clip(weight, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint16)[:, :, None]
    mixed = under.astype(np.uint16) * (255 - w) + over.astype(np.uint16) * w + 127
    return (mixed // 255).astype(np.uint8)


def _layout(sample: SampleFace, face_height: float, centre: Point) -> tuple[int, np.ndarray, np.ndarray]:
    """How `sample` lands in a frame: (pyramid level to warp from, warp from that level, sample-to-frame map).

    Shrinking by more than half warps from a smaller pyramid level, so no source pixel is skipped (which
    would alias) and the cost stays that of the output; the truth uses the same map as the pixels.
    """
    scale = float(face_height) / (sample.box[3] - sample.box[1])
    level = min(max(0, int(np.floor(np.log2(1.0 / scale)))), len(sample.pyramid) - 1) if scale < 1.0 else 0
    step = scale * 2**level
    box_centre = np.array([(sample.box[0] + sample.box[2]) / 2.0, (sample.box[1] + sample.box[3]) / 2.0])
    offset = np.asarray(centre, dtype=np.float64) - scale * box_centre
    total = np.array([[scale, 0.0, offset[0]], [0.0, scale, offset[1]]])
    warp = np.array(
        [[step, 0.0, offset[0]], [0.0, step, offset[1]]]
    )  # pyrDown: level pixel i is 2**level * i
    return level, warp, total


def _truth(sample: SampleFace, total: np.ndarray) -> PlacedFace:
    def to_frame(x: float, y: float) -> Point:
        fx, fy = total @ np.array([x, y, 1.0])
        return float(fx), float(fy)

    (x1, y1), (x2, y2) = to_frame(*sample.box[:2]), to_frame(*sample.box[2:])
    return PlacedFace(
        box=(x1, y1, x2, y2),
        keypoints=tuple(to_frame(x, y) for x, y in sample.keypoints),
        label=sample.label,
        name=sample.name,
    )


def face_truth(sample: SampleFace, face_height: float, centre: Point) -> PlacedFace:
    """Where `place_face` would put the face, without drawing anything."""
    return _truth(sample, _layout(sample, face_height, centre)[2])


def place_face(frame: np.ndarray, sample: SampleFace, face_height: float, centre: Point) -> PlacedFace:
    """Paste `sample` into `frame` (in place) so its face box is `face_height` px tall, centred at `centre`."""
    level, warp, total = _layout(sample, face_height, centre)
    image, alpha = sample.pyramid[level]
    # Only the frame rectangle the person can reach is warped and blended: small faces cost little.
    rows, cols = sample.image.shape[:2]
    corners = total @ np.array([[0, 0, 1], [cols, 0, 1], [0, rows, 1], [cols, rows, 1]], dtype=np.float64).T
    height, width = frame.shape[:2]
    x0, y0 = max(int(np.floor(corners[0].min())) - 1, 0), max(int(np.floor(corners[1].min())) - 1, 0)
    x1, y1 = min(int(np.ceil(corners[0].max())) + 2, width), min(int(np.ceil(corners[1].max())) + 2, height)
    if x1 > x0 and y1 > y0:
        shifted = warp - np.array([[0.0, 0.0, x0], [0.0, 0.0, y0]])
        size_out = (x1 - x0, y1 - y0)
        person = cv2.warpAffine(image, shifted, size_out, flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))
        weight = cv2.warpAffine(alpha, shifted, size_out, flags=cv2.INTER_LINEAR, borderValue=0.0)
        region = frame[y0:y1, x0:x1]
        region[:] = blend(region, person, weight)
    return _truth(sample, total)


def entrance_frame(
    sample: SampleFace, face_height: float, centre: Point, background: np.ndarray | None = None
) -> tuple[np.ndarray, PlacedFace]:
    """One BGR frame (640x480 unless `background` says otherwise) with `sample` in it, and its truth."""
    frame = entrance_background() if background is None else background.copy()
    return frame, place_face(frame, sample, face_height, centre)


def approach(
    n_frames: int, start_height: float, end_height: float, start_centre: Point, end_centre: Point
) -> list[tuple[float, Point]]:
    """Face height and centre per frame of a person walking at a steady pace towards the camera.

    Apparent size grows as 1/distance, so the inverse of the height moves linearly: slow growth far
    away, fast growth at the end, as an entrance camera sees it.
    """
    if n_frames < 1:
        raise ValueError(f"n_frames must be at least 1, got {n_frames}")
    steps = np.linspace(0.0, 1.0, n_frames) if n_frames > 1 else np.zeros(1)
    inverse = (1.0 - steps) / start_height + steps / end_height
    heights = 1.0 / inverse
    progress = (heights - start_height) / (end_height - start_height) if end_height != start_height else steps
    path = []
    for height, p in zip(heights, progress, strict=True):
        cx = start_centre[0] + p * (end_centre[0] - start_centre[0])
        cy = start_centre[1] + p * (end_centre[1] - start_centre[1])
        path.append((float(height), (float(cx), float(cy))))
    return path
