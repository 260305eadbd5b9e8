"""Decode every face once into uint8 arrays cached under runs/, so epochs never touch JPEG files.

Two arrays per face:
- `contract`: exactly what the shipped model sees, made by edge.preprocess (crop_face for boxes,
  crop_whole_image for crops). Validation, calibration and reports use only these.
- `context`: the contract crop's region grown about its own centre by the extra margin, at the same
  pixel density, so the augmenter can jitter scale and position (detector boxes are never tight) around
  exactly what the model is served. `contract_fraction` says which central share of it the contract crop
  is. Near a frame edge the contract square is moved inside the frame, so the face sits off-centre in it
  as the edge will see it; the context keeps that centre, and its part beyond the frame is reflected.
On two CPU cores decoding ~12k JPEGs and drawing ~4k masks takes a minute or two; reading the cache
takes seconds, keyed by everything that changes the pixels.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge.datasets import load_image_bgr
from edge.preprocess import PreprocessSpec, crop_face, crop_whole_image, square_crop_box
from train.data import FaceRecord

log = logging.getLogger(__name__)

# Extra margin on every side, as a fraction of the box's longer side: room for AugmentConfig's loosest
# crop (1.6 x the contract side: (1.6 - 1) * (1 + 2 * 0.2) / 2 = 0.42) without reflected borders
# (except beyond a frame edge).
CONTEXT_MARGIN = 0.45
# 3: the context is centred on the contract crop; in 2 it was its own square moved inside the frame, so
# near an edge the augmenter's "centre" was not the contract crop's (358 of 9640 training faces of the
# shipped run were off by over 15 % of the crop side, some with the mask out of view).
CACHE_VERSION = 3

ImageLoader = Callable[[FaceRecord, Path], np.ndarray]


@dataclass
class FaceArrays:
    """Pixels of N faces, aligned with `records`: contract (N,S,S,3) and context (N,C,C,3) uint8 RGB."""

    records: list[FaceRecord]
    contract: np.ndarray
    context: np.ndarray
    contract_fraction: np.ndarray  # (N,) float32: side of the contract crop / side of the context crop

    @property
    def labels(self) -> np.ndarray:
        return np.array([r.label_index for r in self.records], dtype=np.int64)

    @property
    def face_px(self) -> np.ndarray:
        return np.array([r.face_px for r in self.records], dtype=np.int64)

    def subset(self, indices: np.ndarray) -> FaceArrays:
        indices = np.asarray(indices, dtype=np.int64)
        return FaceArrays(
            [self.records[i] for i in indices],
            self.contract[indices],
            self.context[indices],
            self.contract_fraction[indices],
        )


def context_ratio(spec: PreprocessSpec) -> float:
    """Context side / contract side."""
    return (1.0 + 2.0 * (spec.crop_margin + CONTEXT_MARGIN)) / (1.0 + 2.0 * spec.crop_margin)


def context_size(spec: PreprocessSpec) -> int:
    """Context side in px: the contract side scaled by the extra margin, so both have one pixel density."""
    return int(round(spec.input_size * context_ratio(spec)))


def _resize(crop: np.ndarray, size: int) -> np.ndarray:
    interpolation = cv2.INTER_AREA if min(crop.shape[:2]) >= size else cv2.INTER_LINEAR
    return cv2.resize(crop, (size, size), interpolation=interpolation)


def face_pixels(
    record: FaceRecord, image_bgr: np.ndarray, spec: PreprocessSpec
) -> tuple[np.ndarray, np.ndarray, float]:
    """(contract crop RGB, context crop RGB, contract fraction) for one face in its source image."""
    size = context_size(spec)
    if record.box is None:
        contract = crop_whole_image(image_bgr, spec, frame_order="BGR")
        context = _resize(image_bgr, size)[:, :, ::-1]
        return contract, np.ascontiguousarray(context), 1.0
    contract = crop_face(image_bgr, record.box, spec, frame_order="BGR")
    height, width = image_bgr.shape[:2]
    region = square_crop_box(record.box, width, height, spec.crop_margin)  # what crop_face cut
    ratio = context_ratio(spec)
    context = _resize(_grown_about_centre(image_bgr, region, ratio), size)[:, :, ::-1]
    return contract, np.ascontiguousarray(context), 1.0 / ratio


def _grown_about_centre(image: np.ndarray, region: tuple[int, int, int, int], ratio: float) -> np.ndarray:
    """`region` grown `ratio` times about its centre (each side, so a clipped region keeps its aspect);
    what lies beyond the image is reflected."""
    x1, y1, x2, y2 = region
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    half_w, half_h = (x2 - x1) * ratio / 2.0, (y2 - y1) * ratio / 2.0
    gx1, gy1 = int(round(cx - half_w)), int(round(cy - half_h))
    gx2, gy2 = int(round(cx + half_w)), int(round(cy + half_h))
    height, width = image.shape[:2]
    inside = image[max(gy1, 0) : min(gy2, height), max(gx1, 0) : min(gx2, width)]
    pads = (max(-gy1, 0), max(gy2 - height, 0), max(-gx1, 0), max(gx2 - width, 0))
    if not any(pads):
        return inside
    border = cv2.BORDER_REFLECT_101 if min(inside.shape[:2]) > 1 else cv2.BORDER_REPLICATE
    return cv2.copyMakeBorder(inside, *pads, border)


def load_source_image(record: FaceRecord, data_root: Path) -> np.ndarray:
    """The record's image as BGR uint8, as stored (no drawn mask)."""
    return load_image_bgr(data_root / record.image)


def decode_faces(
    records: list[FaceRecord], data_root: Path, spec: PreprocessSpec, load: ImageLoader = load_source_image
) -> FaceArrays:
    """Crop every record; `load` gives the source image (train/synth.py's loader draws masks first)."""
    size, n = context_size(spec), len(records)
    contract = np.empty((n, spec.input_size, spec.input_size, 3), np.uint8)
    context = np.empty((n, size, size, 3), np.uint8)
    fraction = np.empty(n, np.float32)
    cached_key, image = None, None
    started = time.monotonic()
    for i, record in enumerate(records):
        key = (record.image, record.placement, record.key if record.placement else None)
        if key != cached_key:
            cached_key, image = key, load(record, data_root)
        contract[i], context[i], fraction[i] = face_pixels(record, image, spec)
        if (i + 1) % 2000 == 0 or i + 1 == n:
            log.info("decoded %d/%d faces (%.0f s)", i + 1, n, time.monotonic() - started)
    return FaceArrays(list(records), contract, context, fraction)


def cache_key(records: list[FaceRecord], spec: PreprocessSpec, data_root: Path, extra: str = "") -> str:
    payload = json.dumps(
        [
            CACHE_VERSION,
            spec.to_dict(),
            CONTEXT_MARGIN,
            str(Path(data_root).resolve()),
            extra,
            [r.to_dict() for r in records],
        ],
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def cached_faces(
    records: list[FaceRecord],
    data_root: Path,
    spec: PreprocessSpec,
    cache_dir: Path,
    load: ImageLoader = load_source_image,
    extra_key: str = "",
) -> FaceArrays:
    """decode_faces, read from `cache_dir` when the same records and spec were decoded before."""
    folder = Path(cache_dir) / f"faces_{spec.input_size}_{cache_key(records, spec, data_root, extra_key)}"
    if (folder / "done").is_file():
        log.info("reading cached crops from %s", folder)
        return FaceArrays(
            list(records),
            np.load(folder / "contract.npy"),
            np.load(folder / "context.npy"),
            np.load(folder / "contract_fraction.npy"),
        )
    arrays = decode_faces(records, data_root, spec, load)
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "contract.npy", arrays.contract)
    np.save(folder / "context.npy", arrays.context)
    np.save(folder / "contract_fraction.npy", arrays.contract_fraction)
    (folder / "records.json").write_text(json.dumps([r.to_dict() for r in records]))
    (folder / "done").write_text("ok\n")
    log.info("cached %d crops in %s", len(records), folder)
    return arrays
