"""Large photos searched as overlapping camera-sized tiles, so their small faces are found too.

The detector was designed and measured on 640x480 camera frames (docs/detector.md): its passes fit the
whole frame into inputs of a fixed long side, so the smallest face it finds is a fixed share of the
frame's long side, about 32 px of 640. Given a 4000x3000 phone photo (`maskwatch detect`) or a VOC
folder of large photos (`maskwatch evaluate`), it would miss every face under ~200 px. Such a photo
is searched instead as TILE-sized tiles at full resolution, overlapping by half a tile so that every
face up to about half a tile tall lies whole inside one of them, then at half the resolution the same
way, and so on until the photo is small enough to be searched whole; each tile and the last level
are searched as the camera frames the detector's numbers come from. A face found touching a tile's
inner edge may be cut in two there and is left to the tile that holds it whole. Each level answers only
for the faces the level before could not hold whole in a tile (as the pyramid's coarse pass answers
only for large faces): the same content searched again at every scale would give a background patch
the chance to pass for a face at each of them. The answers are merged keeping the best-scoring box of
each face. The camera stream is never tiled: its
frames are the size the detector was built for, and its time budget has no room for it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Protocol

import cv2
import numpy as np

from edge import blazeface

TILE = (640, 480)  # the camera frame the detector was measured on; turned upright for portrait photos
TILE_OVER = 1.5  # photos whose long side is over this many tiles' long side are tiled
INNER_EDGE_PX = 4  # a box this close to a tile's inner edge may be a face cut in two there
# faces a level holds whole in some tile, wherever they sit (`tile_starts`), are at most this tall; the
# next level, at half the resolution, answers for faces from 0.9 of half of it
LEVEL_HOLDS_PX = min(TILE) // 2 - 2 * INNER_EDGE_PX
NEXT_LEVEL_FROM_PX = 0.9 * LEVEL_HOLDS_PX / 2
SAME_FACE_IOU = 0.3  # boxes of two tiles or levels overlapping more than this are one face ...
SAME_FACE_INSIDE = 0.6  # ... and so is a box with this share of its area inside a better one's


class _Face(Protocol):
    box: tuple[float, float, float, float]
    score: float
    keypoints: tuple[tuple[float, float], ...]


def needs_tiles(width: int, height: int) -> bool:
    return max(width, height) > TILE_OVER * max(TILE)


def tile_shape(width: int, height: int) -> tuple[int, int]:
    """(tile width, tile height): landscape tiles for a landscape photo, upright ones for a portrait one,
    never larger than the photo."""
    tile_w, tile_h = TILE if width >= height else TILE[::-1]
    return min(tile_w, width), min(tile_h, height)


def tile_starts(length: int, tile: int) -> list[int]:
    """Where tiles start along one side: every half tile, the last one flush with the end."""
    if length <= tile:
        return [0]
    return sorted({*range(0, length - tile, tile // 2), length - tile})


def cut_by_inner_edge(box: Sequence[float], tile: tuple[int, int, int, int], width: int, height: int) -> bool:
    """Whether `box` (tile pixels) comes within INNER_EDGE_PX of an edge of `tile` (x0, y0, x1, y1 in
    the photo) that is not the photo's own edge: a face cut there is whole in a neighbouring tile."""
    x0, y0, x1, y1 = tile
    bx1, by1, bx2, by2 = box
    return (
        (x0 > 0 and bx1 < INNER_EDGE_PX)
        or (y0 > 0 and by1 < INNER_EDGE_PX)
        or (x1 < width and bx2 > x1 - x0 - INNER_EDGE_PX)
        or (y1 < height and by2 > y1 - y0 - INNER_EDGE_PX)
    )


def search(detect: Callable[[np.ndarray], list[_Face]], photo: np.ndarray) -> list[_Face]:
    """Faces of `photo` (HxWx3) found by `detect` (one camera-sized frame's faces) in its tiles, level by
    level, merged; boxes and keypoints in the photo's pixels, best score first."""
    found: list[_Face] = []
    image, scale = photo, (1.0, 1.0)  # photo pixels per pixel of this level's image, x and y
    min_face_px = 0.0  # in this level's pixels: smaller faces were the level before's
    while needs_tiles(image.shape[1], image.shape[0]):
        height, width = image.shape[:2]
        tile_w, tile_h = tile_shape(width, height)
        for y0 in tile_starts(height, tile_h):
            for x0 in tile_starts(width, tile_w):
                tile = (x0, y0, x0 + tile_w, y0 + tile_h)
                for face in detect(image[y0 : y0 + tile_h, x0 : x0 + tile_w]):
                    if face.box[3] - face.box[1] >= min_face_px and not cut_by_inner_edge(
                        face.box, tile, width, height
                    ):
                        found.append(_moved(face, x0, y0, scale))
        half = (max(width // 2, 1), max(height // 2, 1))  # a strip 1 px thin stays 1 px thin
        image = cv2.resize(image, half, interpolation=cv2.INTER_AREA)
        scale = (scale[0] * width / half[0], scale[1] * height / half[1])
        min_face_px = NEXT_LEVEL_FROM_PX
    found.extend(_moved(f, 0, 0, scale) for f in detect(image) if f.box[3] - f.box[1] >= min_face_px)
    return merged(found)


def _moved(face: _Face, x0: float, y0: float, scale: tuple[float, float]) -> _Face:
    """A tile's face in the photo's pixels: shifted by the tile's origin, then scaled up from its level."""
    sx, sy = scale
    x1, y1, x2, y2 = face.box
    return replace(
        face,  # type: ignore[type-var]
        box=((x1 + x0) * sx, (y1 + y0) * sy, (x2 + x0) * sx, (y2 + y0) * sy),
        keypoints=tuple(((x + x0) * sx, (y + y0) * sy) for x, y in face.keypoints),
    )


def merged(faces: Sequence[_Face]) -> list[_Face]:
    """One box per face, the best-scoring one: a face seen in two overlapping tiles, or at two levels,
    gives two boxes of it, and a part of a face found on its own lies mostly inside the face's box."""
    kept: list[_Face] = []
    for face in sorted(faces, key=lambda f: -f.score):
        better = np.array([other.box for other in kept], np.float32).reshape(-1, 4)
        if not blazeface.covered(np.asarray(face.box, np.float32), better, SAME_FACE_IOU, SAME_FACE_INSIDE):
            kept.append(face)
    return kept
