"""Masks we draw ourselves (edge/synth/masks.py) on unmasked faces: more worn-wrong faces, fewer shortcuts.

In faces2 the unmasked photos are mostly tight celebrity crops and the masked ones varied web photos, so
a model can learn crop style instead of masks. Drawing a correct mask and a wrongly worn mask on the
very same unmasked face gives three labels for one crop style, one person and one light: only the
mask can tell them apart. It also multiplies the scarce `mask_weared_incorrect` class with real faces
(MaskedFace-Net's are synthetic FFHQ portraits with one blue mask template).

A synthesized record copies its source's key (plus `@placement`), group, image and box, so it lands on
the same side of the split as the photo it was drawn on. Drawing is seeded by the record key: the same
face always gets the same mask, on any machine.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from pathlib import Path

import numpy as np

from train.crops import load_source_image
from train.data import FaceRecord

log = logging.getLogger(__name__)

CORRECT = "correct"
MIN_SCORE = 0.5
MIN_VISIBLE_SHARE = 0.5  # a placement whose mask would mostly fall off the photo is not drawn there


def _masks():
    from edge.synth import masks  # imported late: only needed when masks are drawn

    return masks


def incorrect_placements() -> dict[str, float]:
    """The synthesizer's wrong placements with how often each is drawn.

    Real wrong wear is mostly a mask below the nose (most of the andrewmvd worn-wrong boxes and
    MaskedFace-Net's largest sub-type); a chin left out under a mask that covers nose and mouth is the
    subtlest case and borders on correct wear, so it is drawn rarely.
    """
    weights = {"below_nose": 0.5, "mouth_only": 0.2, "on_chin": 0.2, "chin_out": 0.1}
    known = _masks().PLACEMENTS_INCORRECT
    return {p: weights.get(p, 0.1) for p in known}


def record_rng(key: str, seed: int) -> np.random.Generator:
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def source_face(record: FaceRecord, keypoints: dict[str, dict]) -> dict | None:
    """The detected face (box, keypoints) to draw on: the tallest confident one, or None."""
    found = keypoints.get(record.key)
    if not found:
        return None
    faces = [f for f in found["faces"] if f["score"] >= MIN_SCORE]
    if not faces:
        return None
    return max(faces, key=lambda f: f["box"][3] - f["box"][1])


def _seen_enough(face: dict, placement: str, found: dict) -> bool:
    """Whether most of a mask worn as `placement` would be inside the photo. faces2's unmasked photos are
    mostly tight crops ending at the chin: a mask drawn on the chin there fell off the photo, and 218 of
    its 358 `on_chin` faces showed a bare face labelled worn-wrong (the same photo is without_mask)."""
    size = found.get("image_size")
    if size is None:  # a keypoint cache from before image sizes were kept
        return True
    share = _masks().visible_share(face["keypoints"], face["box"], placement, (int(size[0]), int(size[1])))
    return share >= MIN_VISIBLE_SHARE


def synth_records(
    records: list[FaceRecord], keypoints: dict[str, dict], seed: int = 0, incorrect_per_face: int = 1
) -> list[FaceRecord]:
    """For every unmasked face with keypoints: one correct mask and `incorrect_per_face` wrong ones, each
    in a placement that the photo shows for the most part."""
    placements = incorrect_placements()
    made = []
    for record in records:
        if record.label != "without_mask" or record.placement is not None:
            continue
        face = source_face(record, keypoints)
        if face is None:
            continue
        found = keypoints[record.key]
        if not _seen_enough(face, CORRECT, found):
            continue
        rng = record_rng(record.key, seed)
        names = [name for name in placements if _seen_enough(face, name, found)]
        wrong = []
        if names:
            odds = np.array([placements[n] for n in names]) / sum(placements[n] for n in names)
            wrong = rng.choice(len(names), size=min(incorrect_per_face, len(names)), replace=False, p=odds)
        for placement in (CORRECT, *(names[i] for i in wrong)):
            made.append(
                dataclasses.replace(
                    record,
                    key=f"{record.key}@{placement}",
                    source=f"synth:{record.source}",
                    label="with_mask" if placement == CORRECT else "mask_weared_incorrect",
                    placement=placement,
                    extra={**record.extra, "mask_face": face},
                )
            )
    log.info(
        "synthesized %d masked faces from %d unmasked faces",
        len(made),
        sum(1 for r in made if r.placement == CORRECT),
    )
    return made


def load_image_with_mask(record: FaceRecord, data_root: Path, seed: int = 0) -> np.ndarray:
    """The record's source image (BGR); with a mask drawn on its face when the record is synthesized."""
    image = load_source_image(record, data_root)
    if record.placement is None:
        return image
    masks = _masks()
    face = record.extra["mask_face"]
    rng = record_rng(record.key, seed)
    style = masks.random_style(rng)
    return masks.draw_mask(image, face["keypoints"], face["box"], record.placement, rng, style=style)
