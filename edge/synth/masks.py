"""Draw synthetic face masks, worn correctly or wrongly, on unmasked faces (numpy and OpenCV only).

Why it exists: real faces with a mask worn wrongly are scarce (about 90 in our data), and our unmasked and
masked photos differ in crop style, so a model can learn the crop instead of the mask. Drawing the same face
unmasked, masked and wrongly masked breaks that shortcut, balances the classes, and gives tests and
`maskwatch run --demo` faces whose truth is known. Everything is drawn by code: no mask images are copied.

Use: `draw_mask(image, keypoints, box, placement, rng)` with BlazeFace's six keypoints (right eye, left eye,
nose tip, mouth, right ear, left ear; pixels) and the face box. It returns a new image of the same shape
and dtype. Colours are defined in RGB and written in `color_order` ("BGR" by default, the order OpenCV and
the daemon use); pass "RGB" for images loaded by PIL or scikit-image, so a light-blue surgical mask stays
light blue. Shapes, colours, patterns and wear are varied by `random_style(rng)` (edge/synth/style.py); a
given rng state always draws the same mask.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from edge.model_metadata import LABELS
from edge.synth.geometry import MOUTH_Y, FaceFrame, MaskOutline, face_frame
from edge.synth.style import PATTERNS, RGB, SHAPES, MaskStyle, random_style

__all__ = [
    "PATTERNS",
    "PLACEMENTS",
    "PLACEMENTS_CORRECT",
    "PLACEMENTS_INCORRECT",
    "SHAPES",
    "MaskDrawing",
    "MaskStyle",
    "draw_mask",
    "label_for",
    "random_style",
    "render_mask",
    "visible_share",
]

PLACEMENTS_CORRECT = ("correct",)
# below_nose: mouth and chin covered, nose out (the common mistake); mouth_only: nose and chin out;
# chin_out: nose and mouth covered, chin out (the subtlest; MaskedFace-Net's "uncov-chin");
# on_chin: nose and mouth out, the mask on the chin.
PLACEMENTS_INCORRECT = ("below_nose", "mouth_only", "chin_out", "on_chin")
PLACEMENTS = PLACEMENTS_CORRECT + PLACEMENTS_INCORRECT
_COVERS_NOSE = ("correct", "chin_out")
_COVERS_MOUTH = ("correct", "below_nose", "mouth_only", "chin_out")
NOSE_MARGIN = 0.12  # face units between the nose tip and the mask's top edge: plainly covered or bare
EYE_CLEARANCE = 0.05  # the top edge never rises closer than this to the eye line

LABEL_WITH_MASK, LABEL_WITHOUT_MASK, LABEL_INCORRECT = LABELS


def label_for(placement: str | None) -> str:
    """The classifier label of a face wearing a mask as `placement` (None: no mask)."""
    if placement is None:
        return LABEL_WITHOUT_MASK
    if placement in PLACEMENTS_CORRECT:
        return LABEL_WITH_MASK
    if placement in PLACEMENTS_INCORRECT:
        return LABEL_INCORRECT
    raise ValueError(f"placement must be None or one of {PLACEMENTS}, got {placement!r}")


# Each shape worn correctly, in face units below the eye line (see edge/synth/geometry.py).
_OUTLINES = {
    "surgical": MaskOutline(0.28, 0.17, 1.3, 1.88, 0.55, 2.0, 1.0),
    "cloth": MaskOutline(0.25, 0.30, 2.0, 1.92, 0.65, 1.5, 0.85),
    "kn95": MaskOutline(0.22, 0.28, 1.0, 1.95, 0.75, 1.0, 0.90),
    "n95": MaskOutline(0.30, 0.30, 2.0, 1.85, 0.60, 2.0, 0.80),
}
_SHAPE_WIDTH = {"surgical": 1.0, "cloth": 0.97, "kn95": 0.95, "n95": 0.86}

# placement: (top centre range, bottom centre range, width scale range), in face units.
_PLACEMENT_RANGES = {
    "correct": ((0.20, 0.34), (1.78, 1.98), (0.86, 0.98)),
    "below_nose": ((0.66, 0.80), (1.80, 2.00), (0.86, 0.96)),
    "mouth_only": ((0.66, 0.78), (1.28, 1.42), (0.84, 0.95)),
    "chin_out": ((0.20, 0.34), (1.25, 1.40), (0.86, 0.98)),
    "on_chin": ((1.18, 1.32), (2.00, 2.20), (0.78, 0.90)),
}


@dataclass(frozen=True)
class MaskDrawing:
    """A drawn mask: the new image, how much mask each pixel got (0..1), and the outline in pixels."""

    image: np.ndarray
    coverage: np.ndarray  # float32 (H, W)
    outline: np.ndarray  # (N, 2) pixels


def placed_outline(shape: str, placement: str, rng: np.random.Generator) -> tuple[MaskOutline, float, float]:
    """The outline of `shape` worn as `placement`, with random wear: (outline, width scale, sideways shift)."""
    if placement not in _PLACEMENT_RANGES:
        raise ValueError(f"placement must be one of {PLACEMENTS}, got {placement!r}")
    if shape not in _OUTLINES:
        raise ValueError(f"mask shape must be one of {SHAPES}, got {shape!r}")
    (top_lo, top_hi), (bottom_lo, bottom_hi), (width_lo, width_hi) = _PLACEMENT_RANGES[placement]
    outline = _OUTLINES[shape].moved(rng.uniform(top_lo, top_hi), rng.uniform(bottom_lo, bottom_hi))
    width = rng.uniform(width_lo, width_hi) * _SHAPE_WIDTH[shape]
    return outline, float(width), float(rng.normal(0.0, 0.04))


def fit_to_nose(
    outline: MaskOutline, frame: FaceFrame, placement: str, width: float, shift: float
) -> MaskOutline:
    """`outline` with its top edge moved to pass NOSE_MARGIN above this face's nose tip when `placement`
    covers the nose, and as far below it when it does not; unchanged when it already does.

    The placement ranges assume a typical nose tip (NOSE_TIP_Y), but detected tips sit anywhere from 0.25
    to 0.75 units below the eyes (a face looking up or down, a profile), and a correct mask that leaves the
    tip bare, or a below-the-nose one that covers it, teaches the wrong label. The edge is placed at the
    tip's own mask coordinate, since it sags towards the sides and the tip is off-centre on a turned head.
    """
    t, y = frame.face_to_mask(np.array([frame.centre(frame.nose_y)]), np.array([frame.nose_y]), width, shift)
    t, y = np.clip(t, -1.0, 1.0), float(y[0])
    edge = float(outline.top(t)[0])
    if placement in _COVERS_NOSE:
        target = min(edge, y - NOSE_MARGIN)
    else:
        target = max(edge, y + NOSE_MARGIN)
        if placement in _COVERS_MOUTH:  # nose and mouth too close to part (a bad detection): keep the mouth
            target = min(target, MOUTH_Y - NOSE_MARGIN)
    if target == edge:
        return outline
    # After `moved(c, bottom)` the edge at t is c + rise * (bottom - c) / height * |t|**power: solve for c.
    sag = outline.top_rise * float(np.abs(t[0])) ** outline.top_power
    k = sag / (outline.bottom_centre - outline.top_centre)
    top_centre = max((target - k * outline.bottom_centre) / (1.0 - k), EYE_CLEARANCE)
    return outline.moved(top_centre, outline.bottom_centre)


def _worn(
    frame: FaceFrame, shape: str, placement: str, rng: np.random.Generator
) -> tuple[MaskOutline, float, float, np.ndarray]:
    """(outline, width scale, shift, image polygon) of `shape` worn as `placement` on this face."""
    outline, width, shift = placed_outline(shape, placement, rng)
    outline = fit_to_nose(outline, frame, placement, width, shift)
    return outline, width, shift, frame.mask_to_image(*outline.polygon().T, width_scale=width, shift=shift)


def visible_share(
    keypoints: Sequence[Sequence[float]] | np.ndarray | None,
    box: Sequence[float],
    placement: str,
    image_size: tuple[int, int],
    shape: str = "surgical",
) -> float:
    """How much of a typical `shape` mask worn as `placement` on this face lies inside an image of
    `image_size` (width, height), 0..1.

    A tight crop that ends at the chin has no pixels for a mask on the chin: drawn there it falls off the
    image, and the photo labelled "worn wrongly" shows a bare face next to the same photo labelled
    without_mask. Callers leave out placements that would mostly not be seen.
    """
    _, _, _, polygon = _worn(face_frame(keypoints, box), shape, placement, np.random.default_rng(0))
    lo, hi = polygon.min(axis=0), polygon.max(axis=0)
    scale = 128.0 / max(float(np.max(hi - lo)), 1e-6)  # rasterized on a canvas of at most 128 px
    size = np.maximum(np.ceil((hi - lo) * scale).astype(int) + 1, 1)
    canvas = np.zeros((size[1], size[0]), np.uint8)
    cv2.fillPoly(canvas, [np.round((polygon - lo) * scale).astype(np.int32)], 1)
    ys, xs = np.nonzero(canvas)
    if xs.size == 0:
        return 0.0
    x, y = xs / scale + lo[0], ys / scale + lo[1]
    inside = (x >= 0) & (x < image_size[0]) & (y >= 0) & (y < image_size[1])
    return float(inside.mean())


def draw_mask(
    image: np.ndarray,
    keypoints: Sequence[Sequence[float]] | np.ndarray | None,
    box: Sequence[float],
    placement: str,
    rng: np.random.Generator,
    style: MaskStyle | None = None,
    color_order: str = "BGR",
) -> np.ndarray:
    """`image` with a mask drawn on the face at `box`, worn as `placement`; a new array, same shape and dtype."""
    return render_mask(image, keypoints, box, placement, rng, style, color_order).image


def render_mask(
    image: np.ndarray,
    keypoints: Sequence[Sequence[float]] | np.ndarray | None,
    box: Sequence[float],
    placement: str,
    rng: np.random.Generator,
    style: MaskStyle | None = None,
    color_order: str = "BGR",
) -> MaskDrawing:
    """Like `draw_mask`, and also where the mask went, for tests and for checking a training set."""
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
        raise ValueError(f"image must be HxW or HxWx3 uint8, got shape {image.shape} dtype {image.dtype}")
    if color_order not in ("BGR", "RGB"):
        raise ValueError(f"color_order must be 'BGR' or 'RGB', got {color_order!r}")
    style = random_style(rng) if style is None else style
    frame = face_frame(keypoints, box)
    outline, width, shift, polygon = _worn(frame, style.shape, placement, rng)
    loops = _loop_paths(frame, outline, width, shift) if style.ear_loops else []
    height_px, width_px = image.shape[:2]
    coverage = np.zeros((height_px, width_px), np.float32)
    points = np.concatenate([polygon, *loops]) if loops else polygon
    margin = int(np.ceil(frame.unit * 0.2)) + 3
    x0, y0 = np.floor(points.min(axis=0)).astype(int) - margin
    x1, y1 = np.ceil(points.max(axis=0)).astype(int) + margin
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width_px), min(y1, height_px)
    if x1 <= x0 or y1 <= y0:
        return MaskDrawing(image.copy(), coverage, polygon)
    roi = image[y0:y1, x0:x1].astype(np.float32)
    roi = roi if roi.ndim == 3 else roi[:, :, None]
    origin = np.array([x0, y0], dtype=np.float64)
    alpha = _outline_alpha(polygon - origin, roi.shape[:2], style.edge_softness * max(0.6, frame.unit * 0.03))
    layer = _mask_layer(roi, frame, outline, width, shift, style, (x0, y0), alpha, rng, color_order)
    if loops:
        loop_colour = _channels(style.loop_color, roi.shape[2], color_order)
        thickness = max(1, int(round(frame.unit * 0.03)))
        _draw_loops(layer, alpha, [path - origin for path in loops], loop_colour, thickness)
    roi = roi * _contact_shadow(alpha, frame.unit)[:, :, None]
    blended = roi * (1.0 - alpha[:, :, None]) + layer * alpha[:, :, None]
    out = image.copy()
    out[y0:y1, x0:x1] = np.clip(blended + 0.5, 0, 255).astype(np.uint8).reshape(out[y0:y1, x0:x1].shape)
    coverage[y0:y1, x0:x1] = alpha
    return MaskDrawing(out, coverage, polygon)


def _channels(colour: RGB, channels: int, color_order: str) -> np.ndarray:
    rgb = np.asarray(colour, dtype=np.float32)
    if channels == 1:
        return np.array([rgb @ np.float32([0.299, 0.587, 0.114])], dtype=np.float32)
    return rgb[::-1].copy() if color_order == "BGR" else rgb


def _outline_alpha(polygon: np.ndarray, shape: tuple[int, int], blur_px: float) -> np.ndarray:
    """Anti-aliased mask coverage (float32 0..1) of the outline, its edge softened by `blur_px`."""
    canvas = np.zeros(shape, np.uint8)
    fixed = np.round(polygon * 16).astype(np.int32).reshape(-1, 1, 2)
    cv2.fillPoly(canvas, [fixed], 255, lineType=cv2.LINE_AA, shift=4)
    alpha = canvas.astype(np.float32) / 255.0
    return cv2.GaussianBlur(alpha, (0, 0), blur_px) if blur_px > 0.3 else alpha


def _contact_shadow(alpha: np.ndarray, unit: float) -> np.ndarray:
    """Brightness of the face just outside the mask: a little darker where the fabric stands off the skin."""
    spread = cv2.GaussianBlur(alpha, (0, 0), max(0.8, unit * 0.06))
    return 1.0 - 0.3 * np.clip(spread - alpha, 0.0, 1.0)


def _loop_paths(frame: FaceFrame, outline: MaskOutline, width: float, shift: float) -> list[np.ndarray]:
    """Ear loops as pixel polylines: from the mask's corners to the ear point, on the visible side(s).

    A side whose half is much narrower than the other is turned away from the camera; its loop is hidden.
    """
    paths = []
    halves = (frame.half_width_right, frame.half_width_left)
    for side, ear, half, other in (
        (-1.0, frame.ear_points[0], halves[0], halves[1]),
        (1.0, frame.ear_points[1], halves[1], halves[0]),
    ):
        if half < 0.6 * other:
            continue
        top = frame.mask_to_image(np.array([side]), outline.top(np.array([side])), width, shift)[0]
        bottom_t = np.array([side * outline.bottom_narrow])
        bottom = frame.mask_to_image(bottom_t, outline.bottom(np.array([side])), width, shift)[0]
        up, outward = -frame.v * frame.unit, frame.u * side * frame.unit
        for start, end in (
            (top, ear + 0.3 * up + 0.05 * outward),
            (bottom, ear - 0.35 * up + 0.05 * outward),
        ):
            control = (start + end) / 2.0 + 0.08 * outward
            s = np.linspace(0.0, 1.0, 12)[:, None]
            paths.append((1 - s) ** 2 * start + 2 * (1 - s) * s * control + s**2 * end)
    return paths


def _draw_loops(
    layer: np.ndarray, alpha: np.ndarray, paths: list[np.ndarray], colour: np.ndarray, thickness: int
) -> None:
    """Draw the loops into the colour layer and its coverage, anti-aliased."""
    stroke = np.zeros(alpha.shape, np.uint8)
    fixed = [np.round(path * 16).astype(np.int32).reshape(-1, 1, 2) for path in paths]
    cv2.polylines(stroke, fixed, False, 255, thickness, lineType=cv2.LINE_AA, shift=4)
    weight = stroke.astype(np.float32) / 255.0
    outside = weight * (1.0 - alpha)  # the loop shows where the mask does not
    total = np.maximum(alpha + outside, 1e-6)
    layer[:] = (layer * alpha[:, :, None] + colour * outside[:, :, None] * 0.9) / total[:, :, None]
    alpha += outside


def _mask_layer(
    roi: np.ndarray,
    frame: FaceFrame,
    outline: MaskOutline,
    width: float,
    shift: float,
    style: MaskStyle,
    offset: tuple[int, int],
    alpha: np.ndarray,
    rng: np.random.Generator,
    color_order: str,
) -> np.ndarray:
    """The mask's colour in every ROI pixel: pattern, folds, round-face shading, scene light, grain."""
    rows, cols, channels = roi.shape
    ys, xs = np.mgrid[offset[1] : offset[1] + rows, offset[0] : offset[0] + cols].astype(np.float32)
    a, b = frame.image_to_face(xs, ys)
    t, y = frame.face_to_mask(a, b, width, shift)
    down = outline.fraction_down(t, y)
    base = _channels(style.color, channels, color_order)
    if style.pattern != "plain":
        weight = _pattern(style, a, b, (rows, cols), rng)
        # A print finer than a few pixels cannot be seen, only its average colour: fading it keeps small
        # faces from getting an aliased speckle that no camera would show.
        visible = float(np.clip((style.pattern_scale * frame.unit - 2.0) / 4.0, 0.0, 1.0))
        if visible < 1.0:
            weight = weight.mean() + (weight - weight.mean()) * visible
        ink = _channels(style.pattern_color, channels, color_order)
        colour = base * (1.0 - weight[:, :, None]) + ink * weight[:, :, None]
    else:
        colour = np.broadcast_to(base, (rows, cols, channels))
    shade = 1.0 - style.shading * np.clip(np.abs(t), 0, 1.2) ** 2 - 0.08 * (2 * down - 1) ** 2
    shade = shade * _folds(style, t, down, frame.unit) * _scene_light(roi, alpha, style.lighting)
    grain = _grain(roi, alpha, style.texture * float(np.clip(frame.unit / 40.0, 0.25, 1.0)), rng)
    layer = colour * shade[:, :, None] + grain[:, :, None]
    if style.valve:
        _draw_valve(layer, frame, outline, width, shift, offset, color_order)
    if style.blur_px > 0.3:
        layer = cv2.GaussianBlur(layer, (0, 0), style.blur_px)
    return layer.reshape(rows, cols, channels)


def _pattern(
    style: MaskStyle, a: np.ndarray, b: np.ndarray, shape: tuple[int, int], rng: np.random.Generator
) -> np.ndarray:
    """Pattern ink weight 0..1, drawn in face units so it turns with the head."""
    angle = np.deg2rad(style.pattern_angle)
    along = a * np.cos(angle) + b * np.sin(angle)
    across = -a * np.sin(angle) + b * np.cos(angle)
    period = style.pattern_scale
    if style.pattern == "stripes":
        return np.clip(np.sin(2 * np.pi * along / period) * 3.0 + 0.5, 0, 1).astype(np.float32)
    if style.pattern == "plaid":
        first = np.clip(np.sin(2 * np.pi * along / period) * 2.0, 0, 1)
        second = np.clip(np.sin(2 * np.pi * across / (period * 1.3)) * 2.0, 0, 1)
        return (0.55 * first + 0.45 * second).astype(np.float32)
    if style.pattern == "dots":
        du = along / period - np.round(along / period)
        dv = across / period - np.round(across / period)
        radius = 0.28
        return np.clip((radius - np.sqrt(du**2 + dv**2)) * 12.0, 0, 1).astype(np.float32)
    if style.pattern == "noise":
        cells = rng.random((int(rng.integers(4, 10)), int(rng.integers(4, 10)))).astype(np.float32)
        blobs = cv2.resize(cells, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)
        return np.clip((blobs - 0.5) * 4.0 + 0.5, 0, 1)
    raise ValueError(f"mask pattern must be one of {PATTERNS}, got {style.pattern!r}")


def _folds(style: MaskStyle, t: np.ndarray, down: np.ndarray, unit: float) -> np.ndarray:
    """Brightness of pleats, hems and seams: dark creases with a lit edge above each."""
    factor = np.ones(t.shape, np.float32)
    crease = max(0.012, 1.2 / max(unit * 1.6, 1.0))  # about a pixel or two, whatever the face size
    for k in range(style.pleats):
        level = 0.3 + 0.45 * k / max(style.pleats - 1, 1)
        factor -= 0.22 * np.exp(-(((down - level) / crease) ** 2))
        factor += 0.10 * np.exp(-(((down - level + 2.2 * crease) / (1.5 * crease)) ** 2))
    if style.shape in ("surgical", "kn95"):
        hem = (down < 0.07) | (down > 0.93) | (np.abs(t) > 0.93)
        factor = np.where(hem, factor * 0.93, factor)
    if style.seam or style.shape == "kn95":
        factor -= 0.18 * np.exp(-((t / max(0.015, 2.0 / max(unit, 1.0))) ** 2))
    return factor


def _scene_light(roi: np.ndarray, alpha: np.ndarray, strength: float) -> np.ndarray:
    """Low-frequency light and shade of the photo under the mask, so the mask sits in the scene's light."""
    rows, cols = alpha.shape
    grey = roi.mean(axis=2)
    small = cv2.resize(grey, (max(cols // 8, 2), max(rows // 8, 2)), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), 1.5)
    light = cv2.resize(small, (cols, rows), interpolation=cv2.INTER_LINEAR)
    inside = alpha > 0.5
    mean = float(light[inside].mean()) if inside.any() else float(light.mean())
    return np.clip((light / max(mean, 1.0)) ** strength, 0.5, 1.5)


def _grain(roi: np.ndarray, alpha: np.ndarray, texture: float, rng: np.random.Generator) -> np.ndarray:
    """Pixel noise like the photo's own (a clean mask on a noisy photo would be a shortcut) plus fabric grain.

    The photo's noise is read where it is flattest (the 10th percentile of local high-pass energy), so
    edges and fine detail of small faces are not mistaken for noise. The caller scales `texture` down for
    small faces: real weave averages out there, and a speckled mask would be a shortcut of its own.
    """
    grey = roi.mean(axis=2)
    residual = grey - cv2.blur(grey, (3, 3))
    local_energy = cv2.blur(residual * residual, (5, 5))
    photo_sigma = float(np.sqrt(max(np.percentile(local_energy, 10), 0.0))) / 0.943  # 3x3 high-pass keeps 94%
    sigma = min(photo_sigma, 12.0) + texture * 128.0
    return rng.standard_normal(alpha.shape, dtype=np.float32) * np.float32(sigma)


def _draw_valve(
    layer: np.ndarray,
    frame: FaceFrame,
    outline: MaskOutline,
    width: float,
    shift: float,
    offset: tuple[int, int],
    color_order: str,
) -> None:
    """A round exhalation valve on the wearer's left cheek of a respirator."""
    y = outline.top_centre + 0.6 * (outline.bottom_centre - outline.top_centre)
    centre = frame.mask_to_image(np.array([0.45]), np.array([y]), width, shift)[0] - np.asarray(offset)
    radius = max(1, int(round(frame.unit * 0.22)))
    colour = _channels((70, 72, 78), layer.shape[2], color_order)
    cv2.circle(
        layer, (int(round(centre[0])), int(round(centre[1]))), radius, colour.tolist(), -1, cv2.LINE_AA
    )
    rim = _channels((150, 150, 155), layer.shape[2], color_order)
    cv2.circle(
        layer,
        (int(round(centre[0])), int(round(centre[1]))),
        radius,
        rim.tolist(),
        max(1, radius // 5),
        cv2.LINE_AA,
    )
