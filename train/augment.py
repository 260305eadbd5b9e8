"""On-the-fly augmentation for an entrance camera, from the cached context crops.

What changes between the training photos and the camera at the door: where the detector puts its box
(never tight, never the same twice), face size (down to 32 px and below: low resolution), lighting
(brightness, contrast, colour cast, a grey night image), focus and motion (blur, noise) and the JPEG
step of the snapshot path. Each draw takes an explicit numpy Generator, so a seed gives the same batch.
Output is uint8 RGB at the model's input size, the contract's format.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges and probabilities; the defaults are the ones the shipped model was trained with."""

    scale_range: tuple[float, float] = (0.85, 1.2)  # crop side relative to the contract crop
    # Share of crops drawn looser than any detector box gives (class-folder photos cropped by someone
    # else, with more of the head and shoulders), where the context crop has real pixels for it.
    loose_p: float = 0.3
    loose_scale_range: tuple[float, float] = (1.2, 1.6)
    # Share of crops cut at the face box itself and stretched to a square, as a crop dataset made from
    # annotation boxes holds them (scored whole by `maskwatch evaluate`): about 1 / (1 + 2 * margin) of
    # the contract crop (0.71 at the contract's 0.2), width / height of the box's spread. Faces that
    # are whole images already are that crop, so they are never drawn tight.
    tight_p: float = 0.0
    tight_scale_range: tuple[float, float] = (0.65, 0.8)
    tight_aspect_range: tuple[float, float] = (0.65, 1.15)  # crop width / height (boxes: 0.62-1.18)
    shift: float = 0.08  # centre jitter, fraction of the crop side
    max_rotation_deg: float = 12.0
    flip_p: float = 0.5
    low_res_p: float = 0.3
    low_res_px: tuple[int, int] = (14, 48)  # the face crop shrunk to this side, then scaled back up
    blur_p: float = 0.2
    blur_sigma: tuple[float, float] = (0.4, 1.6)
    photometric_p: float = 0.8
    brightness: float = 40.0  # added, in 0..255 units
    contrast: tuple[float, float] = (0.6, 1.4)
    color_cast: float = 0.15  # per-channel gain 1 +- this
    gray_p: float = 0.05
    noise_p: float = 0.15
    noise_sigma: tuple[float, float] = (2.0, 8.0)
    jpeg_p: float = 0.3
    jpeg_quality: tuple[int, int] = (30, 90)


def crop_transform(
    context_size: int, out_size: int, fraction: float, rng: np.random.Generator, config: AugmentConfig
) -> np.ndarray:
    """2x3 affine matrix mapping context pixels to a jittered, rotated, maybe mirrored output crop."""
    scale = _log_uniform(rng, config.scale_range)
    aspect = 1.0  # crop width / height; the output is square, so a narrower crop is stretched
    draw = rng.random() if config.loose_p > 0.0 or config.tight_p > 0.0 else 1.0
    if draw < config.loose_p:
        # never more reflected border than the normal range gives: a whole-image crop (no pixels beyond
        # the image) gets the normal range's loosest, 1.2
        ceiling = max(config.scale_range[1], 1.0 / fraction)
        scale = min(ceiling, _log_uniform(rng, config.loose_scale_range))
    elif draw < config.loose_p + config.tight_p and fraction < 1.0:
        scale = _log_uniform(rng, config.tight_scale_range)
        aspect = _log_uniform(rng, config.tight_aspect_range)
    scale *= fraction
    side = scale * context_size  # crop height in context pixels
    centre = context_size / 2.0 + rng.uniform(-config.shift, config.shift, size=2) * side
    angle = math.radians(rng.uniform(-config.max_rotation_deg, config.max_rotation_deg))
    zoom = out_size / side
    cos, sin = math.cos(angle) * zoom, math.sin(angle) * zoom
    flip = -1.0 if rng.random() < config.flip_p else 1.0
    half = out_size / 2.0
    # out = S * R * (p - centre) + half: R rotates, S stretches x by 1 / aspect and mirrors it for a flip
    matrix = np.array(
        [[flip * cos / aspect, flip * sin / aspect, 0.0], [-sin, cos, 0.0]],
        dtype=np.float64,
    )
    matrix[:, 2] = np.array([half, half]) - matrix[:, :2] @ centre
    return matrix


def _log_uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return math.exp(rng.uniform(math.log(bounds[0]), math.log(bounds[1])))


def _low_resolution(image: np.ndarray, rng: np.random.Generator, config: AugmentConfig) -> np.ndarray:
    size = image.shape[0]
    small = int(rng.integers(config.low_res_px[0], min(config.low_res_px[1], size) + 1))
    if small >= size:
        return image
    down = cv2.resize(image, (small, small), interpolation=cv2.INTER_AREA)
    return cv2.resize(down, (size, size), interpolation=cv2.INTER_LINEAR)


def _photometric(image: np.ndarray, rng: np.random.Generator, config: AugmentConfig) -> np.ndarray:
    pixels = image.astype(np.float32)
    mean = pixels.mean()
    pixels = (
        (pixels - mean) * rng.uniform(*config.contrast)
        + mean
        + rng.uniform(-config.brightness, config.brightness)
    )
    pixels *= rng.uniform(1.0 - config.color_cast, 1.0 + config.color_cast, size=3).astype(np.float32)
    if rng.random() < config.gray_p:
        pixels[:] = pixels.mean(axis=2, keepdims=True)
    return np.clip(pixels, 0, 255).astype(np.uint8)


def _jpeg(image: np.ndarray, rng: np.random.Generator, config: AugmentConfig) -> np.ndarray:
    quality = int(rng.integers(config.jpeg_quality[0], config.jpeg_quality[1] + 1))
    # OpenCV's codec splits what it takes for BGR into luma and subsampled chroma: given our RGB, it
    # would weigh red as blue and put the artefacts on other channels than a camera's JPEG does
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.cvtColor(cv2.imdecode(encoded, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB) if ok else image


def augment_face(
    context: np.ndarray,
    fraction: float,
    out_size: int,
    rng: np.random.Generator,
    config: AugmentConfig = AugmentConfig(),
) -> np.ndarray:
    """One augmented (out_size, out_size, 3) uint8 crop from a context crop."""
    matrix = crop_transform(context.shape[0], out_size, fraction, rng, config)
    image = cv2.warpAffine(
        context, matrix, (out_size, out_size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
    )
    if rng.random() < config.low_res_p:
        image = _low_resolution(image, rng, config)
    if rng.random() < config.blur_p:
        image = cv2.GaussianBlur(image, (0, 0), rng.uniform(*config.blur_sigma))
    if rng.random() < config.photometric_p:
        image = _photometric(image, rng, config)
    if rng.random() < config.noise_p:
        noise = rng.normal(0.0, rng.uniform(*config.noise_sigma), image.shape).astype(np.float32)
        image = np.clip(image.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    if rng.random() < config.jpeg_p:
        image = _jpeg(image, rng, config)
    return image


def augment_batch(
    contexts: np.ndarray,
    fractions: np.ndarray,
    out_size: int,
    rng: np.random.Generator,
    config: AugmentConfig = AugmentConfig(),
) -> np.ndarray:
    """augment_face over a batch: (N, out_size, out_size, 3) uint8."""
    return np.stack(
        [augment_face(c, float(f), out_size, rng, config) for c, f in zip(contexts, fractions, strict=True)]
    )
