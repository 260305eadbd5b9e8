"""The training table: one record per face the classifier will learn from or be validated on.

Three shared folders feed it (see ../shared/data/README.md): `faces2/` class folders (each image is a
loose face crop), `scenes/` VOC photos (faces cropped from the boxes), `synthetic_masked/` MaskedFace-Net.
Every record carries the key its split group is made from, so near duplicates, the same synthetic face
id and whole scenes stay on one side of the split; masks we synthesize later copy their source's group.
A dataset of one's own (class folders or VOC scenes, read by edge/datasets.py as `maskwatch evaluate`
reads it) has no group lists: its near duplicates and paired photos are found by image hashes instead
(`dataset_records`). Only paths and numbers live here; pixels are made by train/crops.py.
"""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from edge.datasets import (
    MIN_BOX_SIDE_PX,
    DatasetError,
    canonical_label,
    is_voc_scene_folder,
    load_image_bgr,
    read_class_folders,
    read_voc_scenes,
    split_folders,
)
from edge.model_metadata import LABELS
from edge.preprocess import Box

log = logging.getLogger(__name__)

FACES2 = "faces2"
SCENES = "scenes"
MASKEDFACENET = "synthetic_masked"
# faces2 files masks worn below the nose as with_mask; the product calls that worn wrongly (see the file)
FACES2_RELABELS = Path(__file__).with_name("faces2_relabels.csv")
# The same photo filed in two folders (faces2 web photos that are andrewmvd scenes); see read_links
CROSS_SOURCE_LINKS = Path(__file__).with_name("cross_source_links.csv")
# The shared folder's parts and the file each is read from: a folder with any of them is the shared layout
SHARED_PARTS = {
    FACES2: "faces2/groups.csv",
    SCENES: "scenes/near_duplicate_groups.csv",
    MASKEDFACENET: "synthetic_masked/faces.csv",
}
# Sources that are not photos of real people: MaskedFace-Net, and our own drawn masks (`synth:<source>`).
# A dataset of one's own counts as real: its photos are what the model will be judged on.
SYNTHETIC_SOURCES = (MASKEDFACENET,)


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
        return self.source not in SYNTHETIC_SOURCES and not self.source.startswith("synth:")

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
    readers = {
        FACES2: lambda: faces2_records(data_root, sizes, relabels),
        SCENES: lambda: scene_records(data_root),
        MASKEDFACENET: lambda: maskedfacenet_records(data_root),
    }
    missing = [part for part, marker in SHARED_PARTS.items() if not (data_root / marker).is_file()]
    if missing:
        log.warning(
            "%s: no %s: its faces are left out", data_root, ", ".join(SHARED_PARTS[part] for part in missing)
        )
    records = [record for part, read in readers.items() if part not in missing for record in read()]
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


# --- datasets of one's own: class folders and VOC scenes -----------------------------------------------

# Two photos whose 64-bit dHash (a 9x8 grey thumbnail's horizontal gradients) differ in at most this many
# bits are one photo for the split. On faces2 these join 3911 images into 3684 groups (the largest 11);
# 321 of the 351 pairs they link are in one group of its hand-checked groups.csv as well.
NEAR_DUPLICATE_BITS = 4  # the whole photo: re-encoded, resized, recoloured or slightly cut copies
MIRROR_BITS = 2  # the whole photo against the other one mirrored
PAIR_BITS = 2  # the tops of two face crops of different labels: a photo with a pasted mask and without
PAIR_TOP_SHARE = 0.45  # the top of a face crop, which a pasted mask leaves alone


def is_shared_layout(root: Path) -> bool:
    """The shared data folder (../shared/data/README.md): faces2/, scenes/ or synthetic_masked/ with the
    group lists they are split by."""
    return any((Path(root) / marker).is_file() for marker in SHARED_PARTS.values())


class SkippedInputs:
    """What was left out of the training data and why, each thing named: logged and written to the run's
    summary, so that no file or face is dropped without a word."""

    EXAMPLES = 5

    def __init__(self) -> None:
        self.reasons: dict[str, list[str]] = {}

    def add(self, reason: str, what: object) -> None:
        self.reasons.setdefault(reason, []).append(str(what))

    def counts(self) -> dict[str, int]:
        return {reason: len(items) for reason, items in self.reasons.items()}

    def to_dict(self) -> dict[str, dict]:
        return {
            reason: {"count": len(items), "examples": items[: self.EXAMPLES]}
            for reason, items in self.reasons.items()
        }

    def log(self) -> None:
        for reason, items in self.reasons.items():
            log.warning("left out %d: %s; e.g. %s", len(items), reason, " | ".join(items[:3]))


@dataclass(frozen=True)
class ImageHash:
    """dHashes of one photo (whole, mirrored, top), and its label when it is a face crop."""

    whole: int
    mirrored: int
    top: int
    label: str | None  # None: a scene photo, which holds faces of several labels


def _dhash(gray: np.ndarray) -> int:
    small = cv2.resize(gray, (9, 8), interpolation=cv2.INTER_AREA).astype(np.int16)
    return int(np.packbits((small[:, 1:] > small[:, :-1]).ravel()).view(">u8")[0])


def image_hash(image_bgr: np.ndarray, label: str | None) -> ImageHash:
    gray = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY)
    top = gray[: max(1, int(round(gray.shape[0] * PAIR_TOP_SHARE)))]
    return ImageHash(_dhash(gray), _dhash(gray[:, ::-1]), _dhash(top), label)


def _bit_counts(values: np.ndarray) -> np.ndarray:
    if hasattr(np, "bitwise_count"):  # numpy 2
        return np.bitwise_count(values)
    as_bytes = values[..., None].view(np.uint8)
    return np.unpackbits(as_bytes, axis=-1).sum(axis=-1)


def near_duplicate_links(hashes: dict[str, ImageHash], cells: int = 4_000_000) -> list[tuple[str, str]]:
    """(image, image) pairs that show one photo: near duplicates, mirrored copies, and face crops of
    different labels with the same top (one face with a pasted mask and without), sorted. Every pair is
    compared, `cells` pairs at a time (about 30 MB of scratch arrays each)."""
    images = sorted(hashes)
    chunk = max(1, cells // max(len(images), 1))
    whole = np.array([hashes[i].whole for i in images], np.uint64)
    mirrored = np.array([hashes[i].mirrored for i in images], np.uint64)
    top = np.array([hashes[i].top for i in images], np.uint64)
    labels = np.array([hashes[i].label or "" for i in images])
    crops = labels != ""
    links = set()
    for start in range(0, len(images), chunk):
        rows = slice(start, start + chunk)
        same = (_bit_counts(whole[rows, None] ^ whole[None]) <= NEAR_DUPLICATE_BITS) | (
            _bit_counts(whole[rows, None] ^ mirrored[None]) <= MIRROR_BITS
        )
        paired = (
            (_bit_counts(top[rows, None] ^ top[None]) <= PAIR_BITS)
            & (crops[rows, None] & crops[None])
            & (labels[rows, None] != labels[None])
        )
        for a, b in zip(*np.nonzero(same | paired), strict=True):
            if start + a != b:
                links.add(tuple(sorted((images[start + a], images[b]))))
    return sorted(links)


def image_root(roots: Sequence[Path]) -> Path:
    """The folder that record images are relative to: the one dataset, or the folder several share."""
    if len(roots) == 1:
        return Path(roots[0])
    return Path(os.path.commonpath([os.path.abspath(root) for root in roots]))


def _under(path: Path, base: Path) -> str:
    return Path(os.path.relpath(os.path.abspath(path), os.path.abspath(base))).as_posix()


def check_dataset_roots(roots: Sequence[Path]) -> None:
    """Each dataset folder exists and is given once: a folder inside another would train on its faces twice."""
    real = [Path(os.path.realpath(root)) for root in roots]
    for i, root in enumerate(roots):
        if Path(root).exists() and not Path(root).is_dir():
            raise DatasetError(f"{root} is a file, not a dataset folder (unpack an archive first)")
        if not Path(root).is_dir():
            raise DatasetError(f"dataset folder {root} does not exist")
        for j in range(i):
            if real[i].is_relative_to(real[j]) or real[j].is_relative_to(real[i]):
                raise DatasetError(
                    f"--data {roots[j]} and --data {root} are the same folder or one holds the other; "
                    "give each dataset folder once"
                )


def dataset_sources(roots: Sequence[Path]) -> list[str]:
    """A source name for each dataset of one's own: its folder's name, with as many parent folders as
    tell it from the others and from the shared folder's sources (`site a/door`, `site b/door`)."""
    parts = [Path(os.path.abspath(root)).parts for root in roots]
    names = []
    for i, own in enumerate(parts):
        for k in range(1, len(own) + 1):
            name = "/".join(own[-k:]).lstrip("/")
            others = {"/".join(p[-k:]).lstrip("/") for j, p in enumerate(parts) if j != i}
            if name not in others and name not in SHARED_PARTS:
                break
        names.append(name)
    return names


def rebased(records: list[FaceRecord], root: Path, base: Path) -> list[FaceRecord]:
    """`records` whose images are under `root` with their image paths made relative to `base`."""
    if os.path.abspath(root) == os.path.abspath(base):
        return records
    return [replace(r, image=_under(Path(root) / r.image, base)) for r in records]


def clipped_box(box: Box, width: int, height: int) -> Box | None:
    """A box cut to its photo (annotators draw past the edge), or None when under 2 px of it is inside."""
    x1, y1, x2, y2 = (
        float(np.clip(v, 0, limit)) for v, limit in zip(box, (width, height, width, height), strict=True)
    )
    return (x1, y1, x2, y2) if x2 - x1 >= MIN_BOX_SIDE_PX and y2 - y1 >= MIN_BOX_SIDE_PX else None


def dataset_records(
    root: Path, base: Path, source: str, skipped: SkippedInputs
) -> tuple[list[FaceRecord], dict[str, ImageHash]]:
    """Every face of a class-folder or VOC dataset of one's own (read by edge.datasets, as `maskwatch
    evaluate` reads it), and each photo's hashes for near_duplicate_links.

    Each photo is decoded once here: to leave out those that cannot be read before they are split, to
    know a crop's face size, to bring a scene's boxes into its photo's pixels (edge.scene_photo) and to
    hash it. Keys are `<source>:<path in the dataset>` (plus `#<box>`), so two datasets may hold the same
    file names; images are paths under `base`; each photo is its own group. What cannot be used is left
    out and named in `skipped`.
    """
    root = Path(root)
    if is_voc_scene_folder(root):
        return _scene_dataset_records(root, base, source, skipped)
    if held := _held_datasets(root):
        raise DatasetError(
            f"{root} holds datasets ({', '.join(p.name for p in held)}), not class folders: give each its own "
            f"--data ({' '.join(f'--data {p}' for p in held)})"
        )
    dataset = read_class_folders(root)
    for path in dataset.left_out:
        skipped.add("files that are no image (by suffix) or lie in no class folder", path)
    records, hashes = [], {}
    for sample in dataset.samples:
        try:
            image = load_image_bgr(sample.image)
        except DatasetError as exc:
            skipped.add("unreadable images", exc)
            continue
        inside, path = sample.image.relative_to(root).as_posix(), _under(sample.image, base)
        records.append(
            FaceRecord(
                key=f"{source}:{inside}",
                source=source,
                label=sample.label,
                group=f"{source}:{inside}",
                image=path,
                face_px=int(image.shape[0]),
            )
        )
        hashes[path] = image_hash(image, sample.label)
    return records, hashes


def _held_datasets(root: Path) -> list[Path]:
    """ROOT's sub-folders that are datasets themselves, when ROOT has no class or split folder of its own."""
    folders = [p for p in sorted(root.iterdir()) if p.is_dir() and not p.name.startswith((".", "__"))]
    if any(canonical_label(p.name) for p in folders) or split_folders(root):
        return []
    return [
        p
        for p in folders
        if is_voc_scene_folder(p)
        or is_shared_layout(p)
        or split_folders(p)
        or any(canonical_label(q.name) for q in p.iterdir() if q.is_dir())
    ]


def _scene_dataset_records(
    root: Path, base: Path, source: str, skipped: SkippedInputs
) -> tuple[list[FaceRecord], dict[str, ImageHash]]:
    from edge.scene_photo import load_scene_photo

    unusable: list[tuple[Path, str]] = []
    scenes = read_voc_scenes(root, unusable)
    for _, why in unusable:
        skipped.add("VOC annotations that are not valid XML or name an image that is not there", why)
    records, hashes = [], {}
    for scene in scenes:
        for name in scene.skipped:
            skipped.add(
                "VOC objects that are no face label we know, difficult, or without a usable box",
                f"{scene.image}: {name}",
            )
        if not scene.faces:
            continue
        try:
            photo = load_scene_photo(scene)
        except DatasetError as exc:
            skipped.add("unreadable images", f"{exc} ({len(scene.faces)} faces)")
            continue
        inside, path = scene.image.relative_to(root).as_posix(), _under(scene.image, base)
        height, width = photo.image.shape[:2]
        for index, face in enumerate(photo.scene.faces):
            box = clipped_box(face.box, width, height)
            if box is None:
                skipped.add(
                    "VOC boxes outside their photo",
                    f"{scene.image} box {index} {tuple(round(v, 1) for v in face.box)} in {width}x{height}",
                )
                continue
            records.append(
                FaceRecord(
                    key=f"{source}:{inside}#{index}",
                    source=source,
                    label=face.label,
                    group=f"{source}:{inside}",
                    image=path,
                    box=box,
                    face_px=int(round(box[3] - box[1])),
                )
            )
        hashes[path] = image_hash(photo.image, None)
    return records, hashes


SHARED_DATA = Path("../shared/data")


def add_data_argument(parser, help_text: str) -> None:
    """`--data DIR`, repeatable, as `python -m train` and `python -m train.keypoints` both take it; read it
    back with data_roots()."""
    parser.add_argument("--data", type=Path, action="append", default=None, metavar="DIR", help=help_text)


def data_roots(given: list[Path] | None) -> list[Path]:
    """The `--data` folders given, or the shared data folder when none was."""
    return list(given) if given else [SHARED_DATA]


def training_records(
    roots: Sequence[Path], relabels: dict[str, str] | None = None, read_shared=real_records
) -> tuple[list[FaceRecord], Path, SkippedInputs]:
    """(records, the folder their images are relative to, what was left out) of the `--data` folders:
    the shared data folder (read by `read_shared`) or datasets of one's own, several at once. Near
    duplicates and paired photos of one's own datasets share a group, within a dataset and across them.
    """
    roots = [Path(root) for root in roots]
    check_dataset_roots(roots)
    base = image_root(roots)
    records: list[FaceRecord] = []
    hashes: dict[str, ImageHash] = {}
    skipped = SkippedInputs()
    own = [root for root in roots if not is_shared_layout(root)]
    sources = dict(zip(own, dataset_sources(own), strict=True))
    for root in roots:
        if root not in sources:
            records += rebased(read_shared(root, relabels), root, base)
            continue
        source = sources[root]
        found, found_hashes = dataset_records(root, base, source, skipped)
        log.info("%s: %d faces (%s) as source %r", root, len(found), count_by(found, "label"), source)
        records += found
        hashes.update(found_hashes)
    if hashes:
        links = near_duplicate_links(hashes)
        records = join_linked_groups(records, links)
        log.info(
            "%d pairs of near-duplicate or paired photos keep their faces on one side of the split",
            len(links),
        )
    twice = [key for key, n in count_by(records, "key").items() if n > 1]
    if twice:
        raise DatasetError(
            f"{len(twice)} faces are in the data twice (e.g. {twice[0]}); give each dataset folder once"
        )
    skipped.log()
    return records, base, skipped
