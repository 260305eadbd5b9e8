"""A VOC scene's photo and its boxes in the same pixels.

A VOC file records the size of the image its boxes were drawn on (`<size>`), and that is not always the
photo OpenCV decodes:
- a phone JPEG stored sideways with an EXIF orientation: OpenCV turns it upright, while LabelImg (Qt
  without auto-transform) and other tools drew on the pixels as stored, so every box lands on the wrong
  part of the photo;
- a dataset whose images were resized after they were annotated (to save space or for a model's input).
Scoring against boxes in the wrong pixels turns found faces into misses and false positives at once, so
the boxes are brought into the decoded photo's pixels: turned with the EXIF orientation, or scaled. A
`<size>` that fits neither way is reported, and the boxes are used as written. A turn that keeps width
and height (upside down, mirrored) leaves `<size>` telling nothing: those boxes are taken as drawn on
the upright photo, as tools that honour EXIF draw them.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from edge.datasets import Scene, load_image_bgr
from edge.preprocess import Box

log = logging.getLogger(__name__)

AS_ANNOTATED = "as annotated"
EXIF_TURNED = "turned by EXIF orientation"
RESCALED = "rescaled"
SIZE_DISAGREES = "size disagrees"
ASPECT_TOLERANCE = 0.02  # a resize keeps the aspect ratio within rounding; more than 2 % is not one

# The eight ways EXIF can turn stored pixels upright: (image operation, where a point (x, y) of a
# stored W x H image lands in the upright one)
PointMap = Callable[[float, float, int, int], tuple[float, float]]
_TURNS: tuple[tuple[Callable[[np.ndarray], np.ndarray], PointMap], ...] = (
    (lambda im: cv2.flip(im, 1), lambda x, y, w, h: (w - x, y)),
    (lambda im: cv2.rotate(im, cv2.ROTATE_180), lambda x, y, w, h: (w - x, h - y)),
    (lambda im: cv2.flip(im, 0), lambda x, y, w, h: (x, h - y)),
    (cv2.transpose, lambda x, y, w, h: (y, x)),
    (lambda im: cv2.rotate(im, cv2.ROTATE_90_CLOCKWISE), lambda x, y, w, h: (h - y, x)),
    (lambda im: cv2.rotate(im, cv2.ROTATE_90_COUNTERCLOCKWISE), lambda x, y, w, h: (y, w - x)),
    (lambda im: cv2.rotate(cv2.transpose(im), cv2.ROTATE_180), lambda x, y, w, h: (h - y, w - x)),
)


@dataclass(frozen=True)
class ScenePhoto:
    image: np.ndarray  # BGR, upright as OpenCV decodes it
    scene: Scene  # boxes in `image`'s pixels, width and height its own
    fit: str  # AS_ANNOTATED, EXIF_TURNED, RESCALED or SIZE_DISAGREES


def load_scene_photo(scene: Scene) -> ScenePhoto:
    """The scene's photo, and the scene with its boxes moved into that photo's pixels where `<size>`
    shows they were drawn on other ones. Raises `DatasetError` for an unreadable photo."""
    image = load_image_bgr(scene.image)
    height, width = image.shape[:2]
    annotated = (scene.width, scene.height)
    if min(annotated) <= 0 or annotated == (width, height):
        return ScenePhoto(image, scene, AS_ANNOTATED)
    if annotated == (height, width):
        turn = _exif_turn(scene, image)
        if turn is not None:
            stored_w, stored_h = annotated
            return ScenePhoto(
                image, _moved(scene, image, lambda x, y: turn(x, y, stored_w, stored_h)), EXIF_TURNED
            )
    if abs(np.log((width / height) / (scene.width / scene.height))) <= ASPECT_TOLERANCE:
        sx, sy = width / scene.width, height / scene.height
        return ScenePhoto(image, _moved(scene, image, lambda x, y: (x * sx, y * sy)), RESCALED)
    log.warning(
        "%s: annotated as %dx%d, but the photo is %dx%d and not a turn or resize of it; boxes used as written",
        scene.image, scene.width, scene.height, width, height,
    )  # fmt: skip
    return ScenePhoto(image, scene, SIZE_DISAGREES)


def _exif_turn(scene: Scene, upright: np.ndarray) -> PointMap | None:
    """How EXIF turned the stored pixels into `upright`, when it did: found by turning the stored pixels
    each way and comparing, so no EXIF parser is needed and a wrong tag cannot mislead it."""
    stored = load_image_bgr(scene.image, exif_orientation=False)
    best, best_diff = None, np.inf
    for turn_image, turn_point in _TURNS:
        turned = turn_image(stored)
        if turned.shape != upright.shape:
            continue
        diff = float(np.mean(cv2.absdiff(turned, upright)))
        if diff < best_diff:
            best, best_diff = turn_point, diff
    return best if best_diff < 1.0 else None


def _moved(scene: Scene, image: np.ndarray, move: Callable[[float, float], tuple[float, float]]) -> Scene:
    def box(b: Box) -> Box:
        (xa, ya), (xb, yb) = move(b[0], b[1]), move(b[2], b[3])
        return min(xa, xb), min(ya, yb), max(xa, xb), max(ya, yb)

    height, width = image.shape[:2]
    faces = tuple(dataclasses.replace(face, box=box(face.box)) for face in scene.faces)
    ignored = tuple(box(b) for b in scene.ignored)
    return dataclasses.replace(scene, width=width, height=height, faces=faces, ignored=ignored)
