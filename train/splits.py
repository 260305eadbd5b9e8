"""Train/validation split by group, deterministic, stratified so the scarce class reaches validation.

A random split by file puts near duplicates, the same synthetic face and boxes of one scene on both sides
and inflates every number. Here whole groups move together: faces2 `group`, MaskedFace-Net face id,
scenes by image with near-duplicate pairs joined, and a synthesized face with the photo it was drawn on.
Within each source, groups holding `mask_weared_incorrect` are split apart from the others, so that the
82 real worn-wrong faces land in validation in proportion rather than by luck.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict

from train.data import FaceRecord

RARE_LABEL = "mask_weared_incorrect"


def _order_key(group: str, seed: int) -> str:
    """A stable pseudo-random order for groups: the same seed gives the same split on every machine."""
    return hashlib.sha256(f"{seed}:{group}".encode()).hexdigest()


def split_groups(records: list[FaceRecord], val_fraction: float = 0.2, seed: int = 0) -> set[str]:
    """The set of groups that go to validation: about `val_fraction` of each source's faces.

    Synthesized records (source `synth:<x>`) are not counted: they follow the group of the face they
    were drawn on. A group joined across sources (train/data.py read_links) is counted in each of them.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be between 0 and 1, got {val_fraction}")
    sizes: dict[tuple[str, bool], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    rare_groups = {r.group for r in records if r.label == RARE_LABEL and not r.source.startswith("synth:")}
    for record in records:
        if record.source.startswith("synth:"):
            continue
        sizes[(record.source, record.group in rare_groups)][record.group] += 1
    val_groups: set[str] = set()
    for stratum in sorted(sizes):
        groups = sizes[stratum]
        target = val_fraction * sum(groups.values())
        taken = 0
        for group in sorted(groups, key=lambda g: _order_key(g, seed)):
            if taken >= target:
                break
            val_groups.add(group)
            taken += groups[group]
    return val_groups


def split_records(
    records: list[FaceRecord], val_fraction: float = 0.2, seed: int = 0
) -> tuple[list[FaceRecord], list[FaceRecord]]:
    """(train, validation) records; no group is on both sides."""
    val_groups = split_groups(records, val_fraction, seed)
    train = [r for r in records if r.group not in val_groups]
    val = [r for r in records if r.group in val_groups]
    return train, val


def hold_out(
    records: list[FaceRecord], sources: tuple[str, ...]
) -> tuple[list[FaceRecord], list[FaceRecord]]:
    """(kept, held out): a held-out source's real faces are held out; masks drawn on them, and faces
    of other sources in a held-out face's group (the same photo in two folders), are dropped.

    Drawn masks on held-out faces are not scored: the question a held-out source answers is how the
    model does on real faces it has never seen, and a drawn face shares its photo with a real one. For
    the same reason a copy of a held-out photo in another folder must not be trained on.
    """
    unknown = set(sources) - {r.source for r in records}
    if unknown:
        raise ValueError(
            f"held-out source(s) {sorted(unknown)} not in the data (sources: {sorted({r.source for r in records})})"
        )
    drawn = {f"synth:{s}" for s in sources}
    held = [r for r in records if r.source in sources]
    held_groups = {r.group for r in held}
    kept = [
        r for r in records if r.source not in sources and r.source not in drawn and r.group not in held_groups
    ]
    return kept, held
