"""Reading labelled face data from disk: class-folder datasets and PASCAL VOC scene folders.

Training, conversion and `maskwatch evaluate` must agree on what a dataset folder means (which folder
name is which label, which boxes are too small to use, how big a face is), or their numbers stop being
comparable. Everything here is plain file reading: no TensorFlow, so it also runs on a Pi.

Two layouts, as public mask datasets ship them:
- class folders: ROOT/<label>/**/*.jpg|png, images at any depth under the label folder (RMFD and
  MaskedFace-Net keep sub-folders); each image already is a face crop, so its face size is the image
  height.
- VOC scenes: XML with one <object> per face box in ROOT/annotations/ or ROOT/Annotations/ (or in ROOT
  itself), images in ROOT/images/, Images/ or JPEGImages/, or next to the XML.
Either may come split, ROOT/Train/, ROOT/valid/, ROOT/test/ ... each in one of those layouts (Kaggle and
Roboflow exports): every split is read, since a model that never saw the dataset may be scored on all of it.
Hidden files and folders (`.x`, macOS `._x.jpg` and `__MACOSX/`) are not data and are left out.
"""

from __future__ import annotations

import logging
import math
import os
import re
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge.model_metadata import LABELS
from edge.preprocess import Box, PreprocessSpec, crop_face, crop_whole_image

log = logging.getLogger(__name__)

# What OpenCV 4.6 and later decode (GIF through its video reader where imread cannot: `_first_gif_frame`);
# scraped datasets name JPEGs .jfif or .jpe, and a file left out for its suffix is a face lost without a word
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif")
MIN_BOX_SIDE_PX = 2  # VOC boxes thinner than this are annotation slips, not faces

# Folder and VOC names seen in public mask datasets, after `_normalize_name`: the one table of them.
# MaskedFace-Net ships CMFD/ ("correctly masked face dataset") and IMFD/ ("incorrectly masked"), which
# our shared copy calls correct/ and incorrect/; `face_*` are the Kaggle "Face Mask Detection" classes
# (its other classes, `hat`, `mask_surgical` ..., are not faces); `afdb_*` are RMFD's two folders.
_LABEL_ALIASES = {
    "with_mask": "with_mask",
    "mask": "with_mask",
    "masked": "with_mask",
    "withmask": "with_mask",
    "correct": "with_mask",
    "cmfd": "with_mask",
    "face_with_mask": "with_mask",
    "masked_face": "with_mask",
    "face_mask": "with_mask",  # AIZOO's masked class; its unmasked one, plain `face`, is too vague to map
    "with_face_mask": "with_mask",
    "afdb_masked_face_dataset": "with_mask",
    "without_mask": "without_mask",
    "no_mask": "without_mask",
    "nomask": "without_mask",
    "withoutmask": "without_mask",
    "unmasked": "without_mask",
    "face_no_mask": "without_mask",
    "unmasked_face": "without_mask",
    "no_face_mask": "without_mask",
    "without_face_mask": "without_mask",
    "afdb_face_dataset": "without_mask",
    "mask_weared_incorrect": "mask_weared_incorrect",
    "mask_weared_incorrectly": "mask_weared_incorrect",
    "mask_worn_incorrect": "mask_weared_incorrect",
    "mask_worn_incorrectly": "mask_weared_incorrect",
    "incorrect": "mask_weared_incorrect",
    "incorrect_mask": "mask_weared_incorrect",
    "incorrectly_masked": "mask_weared_incorrect",
    "imfd": "mask_weared_incorrect",
    "face_with_mask_incorrect": "mask_weared_incorrect",
    "mask_incorrect": "mask_weared_incorrect",
    "improper_mask": "mask_weared_incorrect",
    "incorrectly_worn": "mask_weared_incorrect",
    "mask_incorrectly_worn": "mask_weared_incorrect",
    "partial_mask": "mask_weared_incorrect",
}
TWO_CLASS_LABELS = ("with_mask", "without_mask")
# Split folder names of exported datasets, after `_normalize_name`
_SPLIT_NAMES = frozenset(
    {"train", "training", "val", "valid", "validation", "test", "testing", "dev", "eval", "evaluation"}
)


class DatasetError(ValueError):
    """A dataset folder is not in a layout we can read; the message names the path and the fix."""


@dataclass(frozen=True)
class FaceSample:
    """One labelled face: a whole image that is a crop (`box` None) or a box in a scene image."""

    image: Path
    label: str
    box: Box | None = None

    @property
    def is_crop(self) -> bool:
        return self.box is None


@dataclass(frozen=True)
class Scene:
    """One annotated scene image and its ground-truth face boxes (x2/y2 exclusive, pixels)."""

    image: Path
    width: int
    height: int
    faces: tuple[FaceSample, ...]
    skipped: tuple[str, ...] = ()  # names of its objects that are no face label we know (`hat` ...)
    # boxes scoring neither rewards nor penalises: faces marked <difficult>, objects of labels we do not
    # score (a detection on an unscored `face_other_covering` is no false positive, nor found face)
    ignored: tuple[Box, ...] = ()


@dataclass(frozen=True)
class ClassFolderDataset:
    root: Path
    samples: tuple[FaceSample, ...]
    labels: tuple[str, ...]  # our labels present, in LABELS order
    # files left out: no image suffix (`notes.txt`, `labels.csv`), or an image in no class folder (ROOT/x.jpg)
    left_out: tuple[Path, ...] = ()

    @property
    def is_two_class(self) -> bool:
        return is_two_class(self.labels)


def is_two_class(labels: Iterable[str]) -> bool:
    """with_mask and without_mask only: scored as 2 classes (a worn-wrong mask is "not with_mask")."""
    return set(labels) == set(TWO_CLASS_LABELS)


def _normalize_name(name: str) -> str:
    """`No-Mask`, `no mask`, `NoMask` -> `no_mask`; an all-capitals name (`CMFD`) is not split."""
    name = re.sub(r"(?<=[a-z])(?=[A-Z])", "_", name.strip())
    return name.lower().replace("-", "_").replace(" ", "_")


def canonical_label(name: str) -> str | None:
    """Our label for a folder or VOC class name (`Mask`, `no-mask`, `WithMask`, `IMFD` ...), or None."""
    return _LABEL_ALIASES.get(_normalize_name(name))


def _is_hidden(name: str) -> bool:
    """Dot files and folders, macOS `._x.jpg` resource forks and the `__MACOSX/` folder zips carry."""
    return name.startswith(".") or name == "__MACOSX"


def image_files(folder: Path, skip: Path | None = None) -> list[Path]:
    """Every image file at any depth under `folder`, hidden ones and the folder `skip` (unless it is
    `folder` itself) left out, sorted by path."""
    return _files(folder, skip)[0]


def _files(folder: Path, skip: Path | None = None) -> tuple[list[Path], list[Path]]:
    """(image files, other files) at any depth under `folder`, hidden ones and `skip` left out, each
    sorted by path.

    Linked folders are followed (a dataset put together from links would otherwise lose them without a
    word), each real folder once, so a link back up the tree does not loop.
    """
    found, others = [], []
    seen = {os.path.realpath(skip)} - {os.path.realpath(folder)} if skip is not None else set()
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames[:] = [name for name in dirnames if not _is_hidden(name)]
        for name in filenames:
            path = Path(dirpath, name)
            if _is_hidden(name) or not path.is_file():
                continue
            (found if path.suffix.lower() in IMAGE_SUFFIXES else others).append(path)
    return sorted(found), sorted(others)


def split_folders(root: Path) -> list[Path]:
    """ROOT's folders when every one of them is a split (`Train/`, `valid/`, `Test/` ...), else []."""
    root = Path(root)
    if not root.is_dir():
        return []
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not _is_hidden(p.name))
    if folders and all(_normalize_name(p.name) in _SPLIT_NAMES for p in folders):
        return folders
    return []


def _log_splits(root: Path, counts: dict[str, int], what: str) -> None:
    log.info(
        "%s: read every split, %s",
        root,
        ", ".join(f"{name} ({count} {what})" for name, count in counts.items()),
    )


def read_class_folders(root: Path) -> ClassFolderDataset:
    """Every image under ROOT/<label>/ (sub-folders included), labelled by its folder name through the aliases.

    An unknown folder name is an error rather than a skip: a silently dropped class makes every number
    in the report wrong. Two folders mapping to one label (`mask/` and `with_mask/`) are merged, and so
    are the splits of ROOT/<split>/<label>/. Files that are no image (by suffix) and images in no class
    folder are left out, listed in `left_out` and counted in one warning.
    """
    dataset = _read_class_folders(Path(root))
    if dataset.left_out:
        suffixes = Counter(path.suffix.lower() or "(no suffix)" for path in dataset.left_out)
        log.warning(
            "%s: left out %d files that are no image (by suffix) or lie in no class folder (%s), e.g. %s",
            root,
            len(dataset.left_out),
            ", ".join(f"{suffix} {count}" for suffix, count in suffixes.most_common()),
            dataset.left_out[0],
        )
    return dataset


def _read_class_folders(root: Path) -> ClassFolderDataset:
    if not root.is_dir():
        raise DatasetError(f"dataset folder {root} does not exist")
    # a split with no image at all (exports often ship an empty valid/) is no part of the dataset
    splits = [split for split in split_folders(root) if image_files(split)]
    if splits:
        parts = [_read_class_folders(split) for split in splits]
        _log_splits(root, {part.root.name: len(part.samples) for part in parts}, "images")
        present = {label for part in parts for label in part.labels}
        labels = tuple(label for label in LABELS if label in present)
        samples = tuple(
            sample for label in labels for part in parts for sample in part.samples if sample.label == label
        )
        left_out = tuple(path for part in parts for path in part.left_out)
        return ClassFolderDataset(root=root, samples=samples, labels=labels, left_out=left_out)
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not _is_hidden(p.name))
    by_label: dict[str, list[FaceSample]] = {}
    unknown, left_out = [], []
    for folder in folders:
        label = canonical_label(folder.name)
        files, others = _files(folder)
        if label is None:
            if files:
                unknown.append(folder.name)
            continue
        by_label.setdefault(label, []).extend(FaceSample(path, label) for path in files)
        left_out.extend(others)
    if unknown:
        raise DatasetError(
            f"{root}: folder(s) {', '.join(unknown)} are not a known label; rename them to one of "
            f"{', '.join(LABELS)} (or mask / no_mask / incorrect)"
        )
    labels = tuple(label for label in LABELS if by_label.get(label))
    if not labels:
        raise DatasetError(f"{root}: no images in any class folder (expected ROOT/<label>/*.jpg)")
    samples = tuple(sample for label in labels for sample in by_label[label])
    loose = sorted(
        p
        for p in root.iterdir()
        if p.is_file() and not _is_hidden(p.name) and p.suffix.lower() in IMAGE_SUFFIXES
    )
    return ClassFolderDataset(root=root, samples=samples, labels=labels, left_out=tuple(loose + left_out))


def _xml_files(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.iterdir() if p.suffix.lower() == ".xml" and not _is_hidden(p.name) and p.is_file()
    )


def _sub_folders(root: Path, names: Sequence[str]) -> list[Path]:
    """ROOT's folders whose lower-cased name is in `names` (`Annotations` is `annotations`), in that order."""
    children = sorted(p for p in root.iterdir() if p.is_dir())
    return [p for name in names for p in children if p.name.lower() == name]


def _starts_with_annotation(xml_path: Path) -> bool:
    try:
        _, element = next(iter(ET.iterparse(xml_path, events=("start",))))
    except (ET.ParseError, StopIteration, OSError):
        return False
    return element.tag == "annotation"


def _annotations_dir(root: Path) -> Path | None:
    """Where a VOC folder keeps its XML: annotations/ or Annotations/, else ROOT itself when its first XML
    is a VOC <annotation> (Roboflow's flat export; a stray face-detector cascade XML is not)."""
    root = Path(root)
    if not root.is_dir():
        return None
    for folder in _sub_folders(root, ("annotations",)):
        if _xml_files(folder):
            return folder
    xmls = _xml_files(root)
    return root if xmls and _starts_with_annotation(xmls[0]) else None


def _image_dirs(root: Path, annotations: Path) -> list[Path]:
    """Where a VOC folder's images may be, searched in order: images/, Images/, JPEGImages/, beside the XML."""
    folders = [*_sub_folders(root, ("images", "jpegimages")), annotations, root]
    return list(dict.fromkeys(folders))


def _voc_splits(root: Path) -> list[Path]:
    """ROOT's split folders when each is a VOC folder or holds nothing at all (an export's empty valid/)."""
    splits = [split for split in split_folders(root) if any(not _is_hidden(p.name) for p in split.iterdir())]
    return splits if splits and all(_annotations_dir(split) is not None for split in splits) else []


def is_voc_scene_folder(root: Path) -> bool:
    """A VOC folder, or one whose every split that holds anything is."""
    return _annotations_dir(Path(root)) is not None or bool(_voc_splits(root))


def _find_image(images_dirs: Sequence[Path], filename: str, stem: str) -> Path | None:
    """The XML's <filename> in the first folder that has it, else its stem (or the XML's) with any image suffix."""
    exact = [folder / filename for folder in images_dirs] if filename else []
    names = dict.fromkeys((Path(filename).stem if filename else stem, stem))
    suffixes = [case(suffix) for suffix in IMAGE_SUFFIXES for case in (str.lower, str.upper)]
    guesses = [folder / f"{name}{suffix}" for folder in images_dirs for name in names for suffix in suffixes]
    return next((path for path in [*exact, *guesses] if path.is_file()), None)


def _box_of(obj: ET.Element) -> Box | None:
    """The object's box, corners in order (an annotator may drag from bottom right to top left), or None
    when it has no <bndbox> or one without four numbers: one such object must not stop a whole dataset."""
    try:
        x1, y1, x2, y2 = (float(obj.findtext(f"bndbox/{tag}")) for tag in ("xmin", "ymin", "xmax", "ymax"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    if not all(math.isfinite(v) for v in (x1, y1, x2, y2)):
        return None
    return min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)


def read_voc_scene(xml_path: Path, images_dir: Path | Sequence[Path]) -> Scene:
    """One VOC annotation: its image (looked for in `images_dir`, or in each of several folders in turn)
    and labelled boxes; objects of unknown labels, without a usable box or with one under 2 px listed
    in `Scene.skipped`."""
    images_dirs = [Path(images_dir)] if isinstance(images_dir, str | os.PathLike) else list(images_dir)
    try:
        root = ET.parse(xml_path).getroot()
    except ET.ParseError as exc:
        raise DatasetError(f"{xml_path}: not valid XML ({exc})") from exc
    for element in root.iter():  # `<annotation xmlns=...>` would hide every tag from the plain names below
        if isinstance(element.tag, str) and element.tag.startswith("{"):
            element.tag = element.tag.split("}", 1)[1]
    image = _find_image(images_dirs, (root.findtext("filename") or "").strip(), xml_path.stem)
    if image is None:
        where = " or ".join(str(folder) for folder in images_dirs)
        raise DatasetError(f"{xml_path}: its image is not in {where}")
    width = int(float(root.findtext("size/width") or 0))
    height = int(float(root.findtext("size/height") or 0))
    faces, skipped, ignored = [], [], []
    for obj in root.iter("object"):
        name = (obj.findtext("name") or "").strip()
        label = canonical_label(name)
        box = _box_of(obj)
        if label is None:
            skipped.append(name)
        elif box is None:
            skipped.append(f"{name} (no usable <bndbox>)")
        elif _is_difficult(obj):
            skipped.append(f"{name} (difficult)")
        if box is None:
            continue
        x1, y1, x2, y2 = box
        if label is None or _is_difficult(obj):
            ignored.append(box)
        elif x2 - x1 >= MIN_BOX_SIDE_PX and y2 - y1 >= MIN_BOX_SIDE_PX:
            faces.append(FaceSample(image, label, (x1, y1, x2, y2)))
        else:
            skipped.append(f"{name} (box under {MIN_BOX_SIDE_PX} px)")
    return Scene(
        image=image,
        width=width,
        height=height,
        faces=tuple(faces),
        skipped=tuple(skipped),
        ignored=tuple(ignored),
    )


def _is_difficult(obj: ET.Element) -> bool:
    """PASCAL VOC's `<difficult>1</difficult>`: a face its annotators would not hold a detector to."""
    return (obj.findtext("difficult") or "").strip().lower() in ("1", "true", "yes")


def skipped_object_counts(scenes: Iterable[Scene]) -> dict[str, int]:
    """How many objects of each unknown label (or without a box) the scenes skipped, most frequent first."""
    return dict(Counter(name for scene in scenes for name in scene.skipped).most_common())


def read_voc_scenes(root: Path, unusable: list[tuple[Path, str]] | None = None) -> list[Scene]:
    """Every annotated scene of a VOC folder (Annotations/ + JPEGImages/, annotations/ + images/ ...).

    Objects whose label is no face class we know (`hat`, `mask_surgical`) or that have no usable box are
    skipped with one warning for the whole folder that counts them by name. When every object is skipped
    it is an error: the detector would be scored against no faces at all, which gives numbers that mean
    nothing (a dataset that spells its labels in a way `_LABEL_ALIASES` does not know).
    An XML file that is not valid or names an image that is not there is an error, unless `unusable` is
    given: then it is left out and appended to it as (XML path, why).
    """
    root = Path(root)
    annotations = _annotations_dir(root)
    if annotations is not None:
        scenes = _read_voc_folder(root, annotations, unusable)
    elif splits := _voc_splits(root):
        parts = {split.name: _read_voc_folder(split, _annotations_dir(split), unusable) for split in splits}
        _log_splits(root, {name: len(scenes) for name, scenes in parts.items()}, "scenes")
        scenes = [scene for scenes in parts.values() for scene in scenes]
    else:
        raise DatasetError(
            f"{root} is not a VOC scene folder (expected annotations/*.xml or Annotations/*.xml, "
            "and images/ or JPEGImages/)"
        )
    skipped = skipped_object_counts(scenes)
    counts = ", ".join(f"{name or '(no name)'} {count}" for name, count in skipped.items())
    if skipped and not any(scene.faces for scene in scenes):
        raise DatasetError(
            f"{root}: none of its objects is a face we can score ({counts}); rename the labels to one of "
            f"{', '.join(LABELS)} (or mask / no_mask / incorrect)"
        )
    if skipped:
        log.warning(
            "%s: skipped %d objects whose label is not a face class we know or that have no usable box: %s",
            root,
            sum(skipped.values()),
            counts,
        )
    return scenes


def _read_voc_folder(
    root: Path, annotations: Path, unusable: list[tuple[Path, str]] | None = None
) -> list[Scene]:
    images_dirs = _image_dirs(root, annotations)
    scenes = []
    for xml in _xml_files(annotations):
        try:
            scenes.append(read_voc_scene(xml, images_dirs))
        except DatasetError as exc:
            if unusable is None:
                raise
            unusable.append((xml, str(exc)))
    return scenes


def face_samples(root: Path) -> list[FaceSample]:
    """Every labelled face of a dataset folder, whichever layout it has."""
    if is_voc_scene_folder(root):
        return [face for scene in read_voc_scenes(root) for face in scene.faces]
    return list(read_class_folders(root).samples)


def jpeg_is_truncated(data: bytes) -> bool:
    """True when JPEG data stops before its end-of-image marker: a cut-off download or copy.

    OpenCV decodes such a file without an error and paints the missing part grey, so it would be scored
    as a photo. The segments before the first scan are stepped over by their lengths, so the end marker
    of an EXIF thumbnail inside them does not count; from the scan on, 0xFF 0xD9 can only be the end
    marker (0xFF in scan data is always followed by 0x00 or a restart marker), and bytes appended after
    it are allowed.
    """
    pos, end = 2, len(data)
    while pos + 1 < end:
        if data[pos] != 0xFF:
            return False  # no marker where one must be: damaged in a way only the decoder can judge
        marker = data[pos + 1]
        if marker == 0xDA:  # start of scan
            return data.find(b"\xff\xd9", pos) < 0
        if marker == 0xD9:
            return False
        if marker == 0xFF:  # a fill byte before a marker
            pos += 1
        else:
            pos += 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
    return True


def load_image_bgr(path: Path, exif_orientation: bool = True) -> np.ndarray:
    """An image as HxWx3 uint8 BGR, turned upright by its EXIF orientation unless `exif_orientation` is
    False (the pixels as stored: what some annotation tools drew their boxes on, `edge.scene_photo`).
    Unreadable files (missing, empty, corrupt, a JPEG cut short) are an error that names them."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise DatasetError(f"cannot read image {path}: {exc.strerror or exc}") from exc
    if not data:
        raise DatasetError(f"cannot read image {path}: the file is empty")
    if data[:2] == b"\xff\xd8" and jpeg_is_truncated(data):
        raise DatasetError(f"cannot read image {path}: the JPEG is truncated (no end-of-image marker)")
    flags = cv2.IMREAD_COLOR if exif_orientation else cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
    # decoded from the bytes already read, not read again (imdecode applies EXIF orientation as imread does)
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    except cv2.error as exc:  # a header claiming more pixels than OpenCV allows raises rather than gives None
        raise DatasetError(
            f"cannot read image {path}: OpenCV refused it ({str(exc).strip().splitlines()[-1]})"
        ) from exc
    if image is None and data[:4] == b"GIF8":
        image = _first_gif_frame(data)
    if image is None:
        raise DatasetError(f"cannot read image {path}: not an image OpenCV can decode")
    return image


def _first_gif_frame(data: bytes) -> np.ndarray | None:
    """A GIF's first frame through OpenCV's video reader: imread learnt GIF only in OpenCV 4.11, and the
    Pi's apt OpenCV is 4.6. Only files that start with GIF's signature come here, so the video reader
    never gets to guess at an arbitrary corrupt file. It reads the bytes from a temporary file of its
    own naming: the reader crashes the process on a file name that is not valid UTF-8."""
    with tempfile.NamedTemporaryFile(suffix=".gif") as copy:
        copy.write(data)
        copy.flush()
        capture = cv2.VideoCapture(copy.name)
        try:
            ok, frame = capture.read()
        finally:
            capture.release()
    if not ok or frame is None or frame.size == 0:
        return None
    return frame if frame.ndim == 3 else cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)


def face_height_px(sample: FaceSample, image: np.ndarray) -> int:
    """The face size used for per-size metrics: box height, or the image height for a crop."""
    if sample.box is None:
        return int(image.shape[0])
    return int(round(sample.box[3] - sample.box[1]))


def load_face_crop(sample: FaceSample, spec: PreprocessSpec, image: np.ndarray | None = None) -> np.ndarray:
    """The model input for one sample, made by the shared contract (a crop image is used whole)."""
    frame = load_image_bgr(sample.image) if image is None else image
    if sample.box is None:
        return crop_whole_image(frame, spec, frame_order="BGR")
    return crop_face(frame, sample.box, spec, frame_order="BGR")


def iter_face_crops(
    samples: Iterable[FaceSample], spec: PreprocessSpec
) -> Iterator[tuple[FaceSample, np.ndarray, int]]:
    """(sample, crop, face height px) for each sample, reading each scene image once per run of boxes."""
    cached_path, cached_image = None, None
    for sample in samples:
        if sample.image != cached_path:
            cached_path, cached_image = sample.image, load_image_bgr(sample.image)
        yield sample, load_face_crop(sample, spec, cached_image), face_height_px(sample, cached_image)
