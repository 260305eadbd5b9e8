"""Choosing face samples for calibration and parity when the training run left no split lists.

The training run's own split is always preferred (convert/training_output.py). Without it, every
dataset folder under `--data` is read with edge.datasets and split by a hash of the image path, so
each image (and every box of a scene) lands on the same side on every machine. Near duplicates can then
straddle the split, which does not bias float/int8 agreement but makes accuracies optimistic; the
parity report says which split it used.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edge.datasets import DatasetError, FaceSample, face_samples, is_voc_scene_folder, read_class_folders

log = logging.getLogger(__name__)


def _is_dataset(folder: Path) -> bool:
    if is_voc_scene_folder(folder):
        return True
    try:
        read_class_folders(folder)
    except DatasetError:
        return False
    return True


def dataset_folders(root: Path) -> list[Path]:
    """`root` itself if it is a dataset, else its sub-folders that are (e.g. the shared data folder)."""
    root = Path(root)
    if _is_dataset(root):
        return [root]
    folders = [p for p in sorted(root.iterdir()) if p.is_dir() and _is_dataset(p)] if root.is_dir() else []
    if not folders:
        raise DatasetError(f"{root}: neither a dataset (class folders or VOC scenes) nor a folder of them")
    return folders


def _in_validation(image: Path, val_fraction: float, root: Path | None) -> bool:
    """Hashes the path inside `root`, so where the data folder sits (or how `--data` spells it) does
    not move an image to the other side."""
    if root is not None and image.is_relative_to(root):
        image = image.relative_to(root)
    digest = hashlib.sha256(image.as_posix().encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < val_fraction


def hash_split(
    samples: list[FaceSample], val_fraction: float = 0.2, root: Path | None = None
) -> tuple[list[FaceSample], list[FaceSample]]:
    """(train, validation) by a hash of each sample's image path under the data folder `root`:
    deterministic, scenes kept whole."""
    root = Path(root) if root is not None else None
    in_val = [_in_validation(s.image, val_fraction, root) for s in samples]
    train = [s for s, v in zip(samples, in_val, strict=True) if not v]
    val = [s for s, v in zip(samples, in_val, strict=True) if v]
    return train, val


def samples_from_data(root: Path) -> list[FaceSample]:
    samples = []
    for folder in dataset_folders(root):
        found = face_samples(folder)
        log.info("%d faces in %s", len(found), folder)
        samples.extend(found)
    return samples


def stratified_indices(labels: Sequence[str], count: int, seed: int = 0) -> list[int]:
    """Up to `count` indices spread evenly over labels (scarce labels give all they have), sorted.

    Calibration ranges are set by the activations the crops cause; a set that is 90% one class can
    clip the activations another class needs.
    """
    by_label: dict[str, list[int]] = defaultdict(list)
    for index, label in enumerate(labels):
        by_label[label].append(index)
    rng = np.random.default_rng(seed)
    pools = {
        label: [group[i] for i in rng.permutation(len(group))] for label, group in sorted(by_label.items())
    }
    picked: list[int] = []
    while len(picked) < count and any(pools.values()):
        for pool in pools.values():
            if pool and len(picked) < count:
                picked.append(pool.pop())
    return sorted(picked)


def stratified_pick(samples: list[FaceSample], count: int, seed: int = 0) -> list[FaceSample]:
    """`stratified_indices` over samples, sorted by image so each scene image is read once."""
    picked = [samples[i] for i in stratified_indices([s.label for s in samples], count, seed)]
    return sorted(picked, key=lambda s: (s.image.as_posix(), s.box or ()))
