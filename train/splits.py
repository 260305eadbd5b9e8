"""Train/validation split by group, deterministic, stratified so the scarce class reaches validation.

A random split by file puts near duplicates, the same synthetic face and boxes of one scene on both sides
and inflates every number. Here whole groups move together: faces2 `group`, MaskedFace-Net face id,
scenes by image with near-duplicate pairs joined, and a synthesized face with the photo it was drawn on.
Within each source, groups holding `mask_weared_incorrect` are split apart from the others, so that the
82 real worn-wrong faces land in validation in proportion rather than by luck. A dataset of one's own is
split by each group's rarest label, so that every class of it is split, however few its faces; and no
stratum goes to validation whole, so a class with a single photo is still trained on.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter, defaultdict

from edge.datasets import DatasetError, canonical_label
from edge.model_metadata import LABELS
from train.data import SHARED_PARTS, FaceRecord

log = logging.getLogger(__name__)

RARE_LABEL = "mask_weared_incorrect"
FEW_FACES = 10  # fewer training faces of a class than this are worth a warning


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
    real = [r for r in records if not r.source.startswith("synth:")]
    sizes: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for record, stratum in zip(real, _strata(real), strict=True):
        sizes[(record.source, stratum)][record.group] += 1
    val_groups: set[str] = set()
    for stratum in sorted(sizes):
        groups = sizes[stratum]
        target = val_fraction * sum(groups.values())
        taken = 0
        for group in sorted(groups, key=lambda g: _order_key(g, seed))[:-1]:  # the last stays in training
            if taken >= target:
                break
            val_groups.add(group)
            taken += groups[group]
    return val_groups


def _strata(records: list[FaceRecord]) -> list[str]:
    """Each record's stratum within its source: in the shared folder's sources whether its group holds
    the rare label (the split its runs were made with); in datasets of one's own its group's label that
    is rarest in that source."""
    rare_groups = {r.group for r in records if r.label == RARE_LABEL}
    counts = Counter((r.source, r.label) for r in records)
    rarest: dict[tuple[str, str], str] = {}
    for r in records:
        held = rarest.get((r.source, r.group))
        if held is None or (counts[(r.source, r.label)], r.label) < (counts[(r.source, held)], held):
            rarest[(r.source, r.group)] = r.label
    return [
        (RARE_LABEL if r.group in rare_groups else "")
        if r.source in SHARED_PARTS
        else rarest[(r.source, r.group)]
        for r in records
    ]


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


def check_split(train: list[FaceRecord], val: list[FaceRecord], where: str) -> None:
    """Stops with a DatasetError naming the fix when the model cannot learn every label from `train` or
    there is nothing to validate on; warns about labels that validation will not measure or that have
    very few faces to learn from. `where` names the data in the messages."""
    trained, validated = Counter(r.label for r in train), Counter(r.label for r in val)
    for label in LABELS:
        if trained[label]:
            continue
        aliases = sorted(
            {name for name in ("incorrect", "mask", "no_mask") if canonical_label(name) == label}
        )
        if validated[label]:
            raise DatasetError(
                f"{where}: all {validated[label]} {label} faces went to validation and none is left to train "
                "on (their photos are grouped with others that went there); add more photos of that class"
            )
        raise DatasetError(
            f"{where}: no {label} faces to train on; the classifier has an output for each of "
            f"{', '.join(LABELS)} and would never learn this one. Add a folder {label}/ "
            f"({' or '.join(f'{a}/' for a in aliases)}) or VOC objects of that name, or train on the shared "
            "data as well (--data ../shared/data --data YOUR_DATASET)"
        )
    if not val:
        raise DatasetError(
            f"{where}: the validation split is empty: {len(train)} faces in "
            f"{len({r.group for r in train})} groups of near-duplicate photos are too few to split; add photos"
        )
    for label in LABELS:
        if not validated[label]:
            log.warning(
                "no %s faces in the validation split (%d to train on): validation will not measure it",
                label,
                trained[label],
            )
        if trained[label] < FEW_FACES:
            log.warning("only %d %s faces to train on: the model will barely learn it", trained[label], label)
