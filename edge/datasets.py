"""Reading labelled face data from disk: class-folder datasets and PASCAL VOC scene folders.

Training, conversion and `maskwatch evaluate` must agree on what a dataset folder means (which folder
name is which label, which boxes are too small to use, how big a face is), or their numbers stop being
comparable. Everything here is plain file reading: no TensorFlow, so it also runs on a Pi.

Two layouts:
- class folders: ROOT/<label>/*.jpg|png; each image already is a face crop, so its face size is the
  image height.
- VOC scenes: ROOT/images/*.jpg + ROOT/annotations/*.xml with one <object> per face box.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge.model_metadata import LABELS
from edge.preprocess import Box, PreprocessSpec, crop_face, crop_whole_image

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
MIN_BOX_SIDE_PX = 2  # VOC boxes thinner than this are annotation slips, not faces

# Folder and VOC names seen in public mask datasets, after `_normalize_name`. `correct` is
# MaskedFace-Net's CMFD folder ("correctly masked"), the twin of its `incorrect` folder.
_LABEL_ALIASES = {
    "with_mask": "with_mask",
    "mask": "with_mask",
    "masked": "with_mask",
    "withmask": "with_mask",
    "correct": "with_mask",
    "without_mask": "without_mask",
    "no_mask": "without_mask",
    "nomask": "without_mask",
    "withoutmask": "without_mask",
    "unmasked": "without_mask",
    "mask_weared_incorrect": "mask_weared_incorrect",
    "mask_worn_incorrect": "mask_weared_incorrect",
    "mask_worn_incorrectly": "mask_weared_incorrect",
    "incorrect": "mask_weared_incorrect",
    "incorrect_mask": "mask_weared_incorrect",
    "incorrectly_masked": "mask_weared_incorrect",
}
TWO_CLASS_LABELS = ("with_mask", "without_mask")


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


@dataclass(frozen=True)
class ClassFolderDataset:
    root: Path
    samples: tuple[FaceSample, ...]
    labels: tuple[str, ...]  # our labels present, in LABELS order

    @property
    def is_two_class(self) -> bool:
        """with_mask and without_mask only: scored as 2 classes (a worn-wrong mask is "not with_mask")."""
        return set(self.labels) == set(TWO_CLASS_LABELS)


def _normalize_name(name: str) -> str:
    return name.strip().lower().replace("-", "_").replace(" ", "_")


def canonical_label(name: str) -> str | None:
    """Our label for a folder or VOC class name (`Mask`, `no-mask`, `incorrect` ...), or None."""
    return _LABEL_ALIASES.get(_normalize_name(name))


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def read_class_folders(root: Path) -> ClassFolderDataset:
    """Every image of ROOT/<label>/, labelled by its folder name through the aliases.

    An unknown folder name is an error rather than a skip: a silently dropped class makes every number
    in the report wrong. Two folders mapping to one label (`mask/` and `with_mask/`) are merged.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"dataset folder {root} does not exist")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    by_label: dict[str, list[FaceSample]] = {}
    unknown = []
    for folder in folders:
        label = canonical_label(folder.name)
        files = _image_files(folder)
        if label is None:
            if files:
                unknown.append(folder.name)
            continue
        by_label.setdefault(label, []).extend(FaceSample(path, label) for path in files)
    if unknown:
        raise DatasetError(
            f"{root}: folder(s) {', '.join(unknown)} are not a known label; rename them to one of "
            f"{', '.join(LABELS)} (or mask / no_mask / incorrect)"
        )
    labels = tuple(label for label in LABELS if by_label.get(label))
    if not labels:
        raise DatasetError(f"{root}: no images in any class folder (expected ROOT/<label>/*.jpg)")
    samples = tuple(sample for label in labels for sample in by_label[label])
    return ClassFolderDataset(root=root, samples=samples, labels=labels)


def is_voc_scene_folder(root: Path) -> bool:
    annotations = Path(root) / "annotations"
    return annotations.is_dir() and any(annotations.glob("*.xml"))


def _find_image(images_dir: Path, filename: str, stem: str) -> Path | None:
    if filename and (images_dir / filename).is_file():
        return images_dir / filename
    for name in (Path(filename).stem if filename else stem, stem):
        for suffix in IMAGE_SUFFIXES:
            candidate = images_dir / f"{name}{suffix}"
            if candidate.is_file():
                return candidate
    return None


def _box_of(obj: ET.Element, xml_path: Path) -> Box:
    bndbox = obj.find("bndbox")
    if bndbox is None:
        raise DatasetError(f"{xml_path}: an <object> has no <bndbox>")
    try:
        return tuple(float(bndbox.findtext(tag)) for tag in ("xmin", "ymin", "xmax", "ymax"))  # type: ignore[return-value]
    except (TypeError, ValueError) as exc:
        raise DatasetError(f"{xml_path}: malformed <bndbox> ({exc})") from exc


def read_voc_scene(xml_path: Path, images_dir: Path) -> Scene:
    """One VOC annotation: its image and labelled boxes; boxes under 2 px and unknown labels dropped."""
    try:
        root = ET.parse(xml_path).getroot()
    except ET.ParseError as exc:
        raise DatasetError(f"{xml_path}: not valid XML ({exc})") from exc
    image = _find_image(images_dir, (root.findtext("filename") or "").strip(), xml_path.stem)
    if image is None:
        raise DatasetError(f"{xml_path}: its image is not in {images_dir}")
    width = int(float(root.findtext("size/width") or 0))
    height = int(float(root.findtext("size/height") or 0))
    faces = []
    for obj in root.iter("object"):
        name = obj.findtext("name") or ""
        label = canonical_label(name)
        if label is None:
            log.warning("%s: skipping object with unknown label %r", xml_path.name, name)
            continue
        x1, y1, x2, y2 = _box_of(obj, xml_path)
        if x2 - x1 < MIN_BOX_SIDE_PX or y2 - y1 < MIN_BOX_SIDE_PX:
            continue
        faces.append(FaceSample(image, label, (x1, y1, x2, y2)))
    return Scene(image=image, width=width, height=height, faces=tuple(faces))


def read_voc_scenes(root: Path) -> list[Scene]:
    """Every annotated scene of ROOT/annotations/*.xml with its image from ROOT/images/."""
    root = Path(root)
    if not is_voc_scene_folder(root):
        raise DatasetError(f"{root} is not a VOC scene folder (expected annotations/*.xml and images/)")
    images_dir = root / "images" if (root / "images").is_dir() else root
    return [read_voc_scene(xml, images_dir) for xml in sorted((root / "annotations").glob("*.xml"))]


def face_samples(root: Path) -> list[FaceSample]:
    """Every labelled face of a dataset folder, whichever layout it has."""
    if is_voc_scene_folder(root):
        return [face for scene in read_voc_scenes(root) for face in scene.faces]
    return list(read_class_folders(root).samples)


def load_image_bgr(path: Path) -> np.ndarray:
    """An image as HxWx3 uint8 BGR; unreadable files are an error that names them."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise DatasetError(f"cannot read image {path}")
    return image


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
