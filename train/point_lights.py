"""Lamps, their glow and their star-shaped flare, drawn into the face verifier's training frames.

A bright lamp at dusk, photographed through a small aperture, is a round core with a halo and 4-8
spikes; at 30-60 px BlazeFace's fine pass can score one as a face (a lamp in scikit-image's `rocket`
photo, docs/detector.md), and the verifier had never seen one: its backgrounds are daytime photos.
Entrance cameras see ceiling lights, street lamps and low sun, so the verifier learns them as
not-faces from frames these lights are drawn into. Everything is drawn here from random parameters;
no photo of a light is used.
"""

from __future__ import annotations

import random

import numpy as np

# warm sodium and tungsten, neutral white, cool LED: (B, G, R) at full brightness
LIGHT_COLOURS = ((80, 180, 255), (120, 210, 255), (235, 245, 255), (255, 235, 215), (60, 140, 255))


def dusk(frame: np.ndarray, rng: random.Random) -> np.ndarray:
    """The frame darker and bluer, as a scene lit by lamps looks: lights only stand out in the dark."""
    gain = rng.uniform(0.2, 0.55)
    cast = np.array([rng.uniform(1.0, 1.5), rng.uniform(0.85, 1.1), rng.uniform(0.6, 0.9)], np.float32)
    return np.clip(frame.astype(np.float32) * gain * cast, 0, 255).astype(np.uint8)


def draw_point_light(
    frame: np.ndarray, centre: tuple[float, float], reach: float, rng: random.Random
) -> None:
    """Adds one lamp in place: a saturated core, a Gaussian halo and thin spikes `reach` px long."""
    height, width = frame.shape[:2]
    cx, cy = centre
    x1, x2 = max(0, int(cx - reach)), min(width, int(cx + reach) + 1)
    y1, y2 = max(0, int(cy - reach)), min(height, int(cy + reach) + 1)
    if x2 <= x1 or y2 <= y1:
        return
    ys, xs = np.mgrid[y1:y2, x1:x2].astype(np.float32)
    dx, dy = xs - cx, ys - cy
    distance = np.hypot(dx, dy)
    core = max(1.0, reach * rng.uniform(0.04, 0.12))
    light = np.exp(-((distance / core) ** 2)) * 2.0  # past 1: the core clips to white-ish
    light += rng.uniform(0.3, 0.9) * np.exp(-((distance / (reach * rng.uniform(0.15, 0.35))) ** 2))
    spikes = rng.choice((0, 4, 6, 8))
    if spikes:
        angle = np.arctan2(dy, dx) + rng.uniform(0, np.pi)
        sharpness = rng.uniform(20, 80)  # how thin a spike is
        arms = np.abs(np.cos(angle * spikes / 2)) ** sharpness
        fall = np.clip(1 - distance / reach, 0, 1) ** rng.uniform(1.0, 2.5)
        light += rng.uniform(0.6, 1.5) * arms * fall
    colour = np.array(LIGHT_COLOURS[rng.randrange(len(LIGHT_COLOURS))], np.float32)
    region = frame[y1:y2, x1:x2].astype(np.float32)
    region += light[..., None] * colour
    frame[y1:y2, x1:x2] = np.clip(region, 0, 255).astype(np.uint8)


def draw_point_lights(
    frame: np.ndarray,
    rng: random.Random,
    avoid: list[tuple[float, float, float, float]] = (),
    count_range: tuple[int, int] = (1, 5),
    reach_range: tuple[float, float] = (12.0, 120.0),
) -> list[tuple[float, float, float, float]]:
    """Draws 1-5 lamps (in place) whose reach stays clear of every `avoid` box; returns their boxes."""
    height, width = frame.shape[:2]
    drawn = []
    for _ in range(rng.randint(*count_range)):
        reach = float(np.exp(rng.uniform(np.log(reach_range[0]), np.log(reach_range[1]))))
        for _ in range(10):
            cx, cy = rng.uniform(0, width), rng.uniform(0, height)
            box = (cx - reach, cy - reach, cx + reach, cy + reach)
            if all(box[2] <= a or c <= box[0] or box[3] <= b or d <= box[1] for a, b, c, d in avoid):
                draw_point_light(frame, (cx, cy), reach, rng)
                drawn.append(box)
                break
    return drawn
