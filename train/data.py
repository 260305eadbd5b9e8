"""The training table: one record per face the classifier will learn from or be validated on.

Three shared folders feed it (see ../shared/data/README.md): `faces2/` class folders (each image is a
loose face crop), `scenes/` VOC photos (faces cropped from the boxes), `synthetic_masked/` MaskedFace-Net.
Every record carries the key its split group is made from, so near duplicates, the same synthetic face
id and whole scenes stay on one side of the split; masks we synthesize later copy their source's group.
Only paths and numbers live here; pixels are made by train/crops.py.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from edge.datasets import load_image_bgr, read_voc_scenes
from edge.model_metadata import LABELS

log = logging.getLogger(__name__)

FACES2 = "faces2"
SCENES = "scenes"
MASKEDFACENET = "synthetic_masked"
# faces2 files masks worn below the nose as with_mask; the product calls that worn wrongly (see the file)
FACES2_RELABELS = Path(__file__).with_name("faces2_relabels.csv")
# The same photo filed in two folders (faces2 web photos that are andrewmvd scenes); see read_links
CROSS_SOURCE_LINKS = Path(__file__).with_name("cross_source_links.csv")
# Sources photographed from real people; MaskedFace-Net and our own synthesized masks are not.
REAL_SOURCES = (FACES2, SCENES)


@dataclass(frozen=True)
class FaceRecord:
    """One face: where its pixels come from, its label, its split group and its size in the source."""

    key: str  # unique, stable: the relative path, plus `#box` for scene boxes, plus `@placement` if synthesized
    source: str  # faces2, scenes, synthetic_masked, or synth:<source> for masks we drew
    label: str
    group: str  # split unit; synthesized records copy their source's group
    image: str  # path relative to the data root
    box: tuple[float, float, float, float] | None = None  # None: the whole image is the face crop
    face_px: int = 0  # box height, or image height for whole-image crops (per-size metrics)
    placement: str | None = None  # edge.synth.masks placement when this face got a drawn mask
    extra: dict = field(default_factory=dict)

    @property
    def label_index(self) -> int:
        return LABELS.index(self.label)

    @property
    def is_real(self) -> bool:
        """A real photo of a real face with its published label (no drawn or synthetic mask)."""
        return self.source in REAL_SOURCES

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> FaceRecord:
        box = tuple(data["box"]) if data.get("box") is not None else None
        return cls(**{**data, "box": box})


def _read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _image_height(data_root: Path, relative: str, sizes: dict[str, tuple[int, int]]) -> int:
    """From manifest.csv when it lists the file (no decoding), else from the image itself."""
    if relative in sizes:
        return sizes[relative][1]
    return int(load_image_bgr(data_root / relative).shape[0])


def read_manifest_sizes(data_root: Path) -> dict[str, tuple[int, int]]:
    """{relative path: (width, height)} from manifest.csv, so face sizes need no image decoding."""
    manifest = data_root / "manifest.csv"
    if not manifest.is_file():
        return {}
    sizes = {}
    for row in _read_csv(manifest):
        if row.get("width") and row.get("height"):
            sizes[row["path"]] = (int(row["width"]), int(row["height"]))
    return sizes


def read_relabels(path: Path = FACES2_RELABELS) -> dict[str, str]:
    """{faces2 path: label} for images whose published label contradicts ours, checked by eye.

    faces2's with_mask folder holds masks pulled below the nose (RMFD and web photos). The product
    calls that `mask_weared_incorrect`, and a model taught that such a mask is worn correctly calls the
    real worn-wrong faces of other sources `with_mask`: the missed violator the alarm exists for.
    """
    relabels = {}
    for row in _read_csv(path):
        if row["label"] not in LABELS:
            raise ValueError(f"{path}: {row['path']}: label {row['label']!r} is not one of {LABELS}")
        relabels[row["path"]] = row["label"]
    return relabels


def faces2_records(
    data_root: Path, sizes: dict[str, tuple[int, int]], relabels: dict[str, str] | None = None
) -> list[FaceRecord]:
    """faces2 whole-image crops, grouped by groups.csv `group` (near duplicates, augmented copies), with
    `relabels` (default: train/faces2_relabels.csv) applied; a relabelled record keeps its old label in
    `extra["published_label"]`."""
    relabels = read_relabels() if relabels is None else relabels
    records = []
    for row in _read_csv(data_root / FACES2 / "groups.csv"):
        label = relabels.get(row["path"], row["label"])
        records.append(
            FaceRecord(
                key=row["path"],
                source=FACES2,
                label=label,
                group=f"{FACES2}:{row['group']}",
                image=row["path"],
                face_px=_image_height(data_root, row["path"], sizes),
                extra={"published_label": row["label"]} if label != row["label"] else {},
            )
        )
    return records


def maskedfacenet_records(data_root: Path) -> list[FaceRecord]:
    """MaskedFace-Net 256x256 faces, grouped by FFHQ face id (51 faces appear masked both ways)."""
    records = []
    for row in _read_csv(data_root / MASKEDFACENET / "faces.csv"):
        records.append(
            FaceRecord(
                key=row["path"],
                source=MASKEDFACENET,
                label=row["label3"],
                group=f"{MASKEDFACENET}:{row['face_id']}",
                image=row["path"],
                face_px=256,
                extra={"subtype": row["subtype"]},
            )
        )
    return records


def scene_records(data_root: Path) -> list[FaceRecord]:
    """One record per VOC box (boxes under 2 px skipped); whole scenes, and near-duplicate pairs, group."""
    pair_group = {
        row["image"]: row["group"] for row in _read_csv(data_root / SCENES / "near_duplicate_groups.csv")
    }
    records = []
    for scene in read_voc_scenes(data_root / SCENES):
        relative = scene.image.relative_to(data_root).as_posix()
        group = f"{SCENES}:{pair_group.get(relative, Path(relative).stem)}"
        for index, face in enumerate(scene.faces):
            x1, y1, x2, y2 = face.box
            records.append(
                FaceRecord(
                    key=f"{relative}#{index}",
                    source=SCENES,
                    label=face.label,
                    group=group,
                    image=relative,
                    box=(x1, y1, x2, y2),
                    face_px=int(round(y2 - y1)),
                )
            )
    return records


def read_links(path: Path = CROSS_SOURCE_LINKS) -> list[tuple[str, str]]:
    """(image, linked image) pairs of data paths that show the same photo in two shared folders.

    The data's own groups stop at a folder's edge: faces2/groups.csv and near_duplicate_groups.csv never
    name the other folder, yet some faces2 web photos are andrewmvd scenes (cropped, mirrored or pasted
    into a collage). Found with ORB feature matches and checked by eye; without the link a face can be
    trained on as a scene box and validated on as a faces2 photo.
    """
    return [(row["image"], row["linked_image"]) for row in _read_csv(path)]


def join_linked_groups(records: list[FaceRecord], links: list[tuple[str, str]]) -> list[FaceRecord]:
    """`records` with the groups of linked images merged into one, named by its first group in sorted
    order so the result depends on neither record nor link order; links to absent images are ignored."""
    parent: dict[str, str] = {}

    def root(group: str) -> str:
        while parent.get(group, group) != group:
            group = parent[group]
        return group

    groups_of: dict[str, set[str]] = {}
    for record in records:
        groups_of.setdefault(record.image, set()).add(record.group)
    for image, linked in links:
        if image in groups_of and linked in groups_of:
            first, *others = sorted(groups_of[image] | groups_of[linked])
            for group in others:
                low, high = sorted((root(first), root(group)))
                parent[high] = low
    return [replace(r, group=root(r.group)) if root(r.group) != r.group else r for r in records]


def real_records(
    data_root: Path, relabels: dict[str, str] | None = None, links: list[tuple[str, str]] | None = None
) -> list[FaceRecord]:
    """Every face of the three shared folders, in a fixed order; `relabels` as in faces2_records (`{}`:
    faces2's labels as published); groups joined across folders by `links` (default: read_links())."""
    data_root = Path(data_root)
    sizes = read_manifest_sizes(data_root)
    records = (
        faces2_records(data_root, sizes, relabels)
        + scene_records(data_root)
        + maskedfacenet_records(data_root)
    )
    records = join_linked_groups(records, read_links() if links is None else links)
    unknown = {r.label for r in records} - set(LABELS)
    if unknown:
        raise ValueError(f"{data_root}: labels {sorted(unknown)} are not in {LABELS}")
    log.info("%d faces from %s", len(records), data_root)
    return records


def count_by(records: list[FaceRecord], *fields: str) -> dict[str, int]:
    """{"source/label": n, ...}: the data summary written to training_summary.json and the card."""
    counts: dict[str, int] = {}
    for record in records:
        key = "/".join(str(getattr(record, name)) for name in fields)
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))
