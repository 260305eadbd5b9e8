"""Face crops with their labels and sizes: what calibration and the parity check run on.

A training run saves the exact contract crops it used (`representative.npz`: real training faces;
`validation.npz`: the whole validation split, drawn masks included) and conversion prefers them: the
int8 model is calibrated and checked on the very pixels the float model saw. Without them, crops are
made again from face lists with edge.datasets, through the same crop contract.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.datasets import FaceSample, iter_face_crops
from edge.preprocess import PreprocessSpec


class CropSetError(ValueError):
    """Saved crops do not fit the model (size, labels); the message names the file."""


@dataclass
class CropSet:
    crops: np.ndarray  # (N, S, S, 3) uint8 in the spec's colour order
    labels: list[str]
    face_px: list[int]
    origin: str  # where the crops came from, for the report
    is_real: np.ndarray | None = None  # (N,) bool where known: real photo vs drawn/synthetic mask

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, indices: Sequence[int]) -> CropSet:
        indices = np.asarray(indices, dtype=np.int64)
        return CropSet(
            crops=self.crops[indices],
            labels=[self.labels[i] for i in indices],
            face_px=[self.face_px[i] for i in indices],
            origin=self.origin,
            is_real=None if self.is_real is None else self.is_real[indices],
        )


def load_npz(path: Path, labels: Sequence[str], spec: PreprocessSpec) -> CropSet:
    """A training run's saved crops: `crops`, `labels` (indices into `labels`), `face_px`, `is_real`."""
    with np.load(path) as data:
        crops, label_index, face_px = data["crops"], data["labels"], data["face_px"]
        is_real = data["is_real"].astype(bool) if "is_real" in data.files else None
    size = spec.input_size
    if crops.dtype != np.uint8 or crops.shape[1:] != (size, size, 3):
        raise CropSetError(
            f"{path}: crops are {crops.shape} {crops.dtype}, the spec says (N, {size}, {size}, 3) uint8"
        )
    if len(label_index) and (label_index.min() < 0 or label_index.max() >= len(labels)):
        raise CropSetError(f"{path}: label indices outside 0..{len(labels) - 1}")
    return CropSet(
        crops=crops,
        labels=[labels[int(i)] for i in label_index],
        face_px=[int(v) for v in face_px],
        origin=path.name,
        is_real=is_real,
    )


def from_samples(samples: Sequence[FaceSample], spec: PreprocessSpec, origin: str) -> CropSet:
    """Crops made from images on disk with the contract (scene images are read once per run of boxes)."""
    crops, labels, heights = [], [], []
    for sample, crop, height in iter_face_crops(samples, spec):
        crops.append(crop)
        labels.append(sample.label)
        heights.append(height)
    size = spec.input_size
    stacked = np.stack(crops) if crops else np.zeros((0, size, size, 3), np.uint8)
    return CropSet(crops=stacked, labels=labels, face_px=heights, origin=origin)
