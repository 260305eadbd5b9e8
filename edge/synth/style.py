"""What a synthetic mask looks like: shapes, colours, prints and finish, and a random pick of them.

Kept apart from the drawing (edge/synth/masks.py) so the mix of styles can be read and tuned in one place.
Colours are RGB; the drawing writes them in the image's own colour order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

SHAPES = ("surgical", "cloth", "kn95", "n95")
PATTERNS = ("plain", "stripes", "dots", "plaid", "noise")

RGB = tuple[int, int, int]

_SURGICAL_COLOURS: tuple[RGB, ...] = (
    (150, 200, 230), (120, 180, 225), (170, 212, 236), (100, 165, 210), (160, 215, 195),
    (240, 240, 238), (228, 232, 235), (35, 35, 38), (235, 165, 190), (175, 175, 180),
)  # fmt: skip
_RESPIRATOR_COLOURS: tuple[RGB, ...] = (
    (240, 240, 236), (232, 230, 222), (245, 245, 245), (30, 30, 32), (140, 140, 145), (225, 200, 175),
    (150, 200, 230),
)  # fmt: skip
_CLOTH_COLOURS: tuple[RGB, ...] = (
    (30, 30, 35), (45, 50, 80), (235, 235, 235), (120, 120, 125), (170, 40, 50), (60, 120, 80),
    (220, 200, 170), (120, 70, 140), (230, 200, 60), (40, 110, 150), (200, 100, 60), (240, 170, 190),
)  # fmt: skip
_LOOP_COLOURS: tuple[RGB, ...] = ((245, 245, 245), (230, 230, 225), (30, 30, 30), (150, 200, 230))


@dataclass(frozen=True)
class MaskStyle:
    """How one mask looks. Colours are RGB; lengths in face units unless named in pixels."""

    shape: str = "surgical"  # one of SHAPES
    color: RGB = (150, 200, 230)
    pattern: str = "plain"  # one of PATTERNS
    pattern_color: RGB = (245, 245, 245)
    pattern_scale: float = 0.25  # stripe period or dot spacing
    pattern_angle: float = 0.0  # degrees in the face frame, so stripes follow head roll
    pleats: int = 3  # horizontal folds (surgical masks)
    seam: bool = False  # a vertical centre seam (cloth and KN95 masks)
    valve: bool = False  # an exhalation valve (respirators)
    ear_loops: bool = True
    loop_color: RGB = (245, 245, 245)
    shading: float = 0.25  # darkening towards the sides of a round face
    lighting: float = 0.5  # how much of the scene's light and shade falls on the mask
    texture: float = 0.03  # fabric grain, relative brightness
    edge_softness: float = 1.0  # outline blur, scaled by face size
    blur_px: float = 0.5  # blur of the whole mask, to match the photo's sharpness


def _pick(rng: np.random.Generator, options: Sequence) -> object:
    return options[int(rng.integers(len(options)))]


def _jitter(rng: np.random.Generator, colour: RGB, amount: float) -> RGB:
    values = np.asarray(colour, dtype=np.float64) * rng.uniform(1 - amount, 1 + amount) + rng.normal(0, 6, 3)
    return tuple(int(c) for c in np.clip(values, 0, 255))


def random_style(rng: np.random.Generator) -> MaskStyle:
    """A random mask: mostly surgical and cloth, like the masks people wear at an entrance."""
    shape = str(rng.choice(SHAPES, p=[0.45, 0.32, 0.13, 0.10]))
    palette = {"surgical": _SURGICAL_COLOURS, "cloth": _CLOTH_COLOURS}.get(shape, _RESPIRATOR_COLOURS)
    colour = _jitter(rng, _pick(rng, palette), 0.08)
    if shape == "cloth" and rng.random() < 0.25:  # any colour at all
        hsv = np.uint8([[[rng.integers(180), rng.integers(40, 255), rng.integers(40, 250)]]])
        colour = tuple(int(c) for c in cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0])
    pattern_chance = {"cloth": 0.55, "surgical": 0.08}.get(shape, 0.03)
    pattern = str(_pick(rng, PATTERNS[1:])) if rng.random() < pattern_chance else "plain"
    pattern_color = _jitter(rng, _pick(rng, _CLOTH_COLOURS + ((250, 250, 250),) * 3), 0.1)
    return MaskStyle(
        shape=shape,
        color=colour,
        pattern=pattern,
        pattern_color=pattern_color,
        pattern_scale=float(rng.uniform(0.12, 0.4)),
        pattern_angle=float(_pick(rng, (0.0, 90.0, 45.0, -45.0))) + float(rng.normal(0, 5)),
        pleats=int(rng.integers(2, 5)) if shape == "surgical" else 0,
        seam=shape in ("cloth", "kn95") and rng.random() < 0.8,
        valve=shape in ("kn95", "n95") and rng.random() < 0.3,
        ear_loops=bool(rng.random() < 0.85),
        loop_color=colour if shape == "cloth" and rng.random() < 0.7 else _pick(rng, _LOOP_COLOURS),
        shading=float(rng.uniform(0.1, 0.4)),
        lighting=float(rng.uniform(0.3, 0.9)),
        texture=float(rng.uniform(0.01, 0.06) if shape == "cloth" else rng.uniform(0.0, 0.03)),
        edge_softness=float(rng.uniform(0.5, 1.5)),
        blur_px=float(rng.uniform(0.0, 1.0)),
    )
