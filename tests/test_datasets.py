"""Dataset readers on tiny folders written by the tests."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.datasets import (
    DatasetError,
    canonical_label,
    face_samples,
    is_voc_scene_folder,
    iter_face_crops,
    read_class_folders,
    read_voc_scenes,
)
from edge.preprocess import PreprocessSpec


def _write_image(path: Path, height: int = 40, width: int = 30, value: int = 100) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((height, width, 3), value, np.uint8))


VOC_XML = """<annotation><filename>{filename}</filename>
<size><width>200</width><height>100</height><depth>3</depth></size>
<object><name>with_mask</name><bndbox><xmin>10</xmin><ymin>10</ymin><xmax>50</xmax><ymax>60</ymax></bndbox></object>
<object><name>mask_weared_incorrect</name><bndbox><xmin>100</xmin><ymin>20</ymin><xmax>101</xmax><ymax>40</ymax></bndbox></object>
<object><name>No-Mask</name><bndbox><xmin>120</xmin><ymin>20</ymin><xmax>150</xmax><ymax>52</ymax></bndbox></object>
</annotation>"""


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("mask", "with_mask"),
        ("With-Mask", "with_mask"),
        ("no_mask", "without_mask"),
        ("No Mask", "without_mask"),
        ("WITHOUT_MASK", "without_mask"),
        ("incorrect", "mask_weared_incorrect"),
        ("mask_weared_incorrect", "mask_weared_incorrect"),
        ("mask-worn-incorrectly", "mask_weared_incorrect"),
        ("cats", None),
    ],
)
def test_label_aliases(name, label):
    assert canonical_label(name) == label


def test_class_folders_with_aliases_are_two_class(tmp_path):
    _write_image(tmp_path / "mask" / "a.jpg")
    _write_image(tmp_path / "mask" / "b.png")
    _write_image(tmp_path / "no-mask" / "c.jpg")
    (tmp_path / "no-mask" / "notes.txt").write_text("not an image")
    dataset = read_class_folders(tmp_path)
    assert dataset.labels == ("with_mask", "without_mask")
    assert dataset.is_two_class
    assert [(s.image.name, s.label) for s in dataset.samples] == [
        ("a.jpg", "with_mask"),
        ("b.png", "with_mask"),
        ("c.jpg", "without_mask"),
    ]
    assert all(s.is_crop for s in dataset.samples)


def test_three_class_folders_are_not_two_class(tmp_path):
    for name in ("with_mask", "without_mask", "incorrect"):
        _write_image(tmp_path / name / "x.jpg")
    dataset = read_class_folders(tmp_path)
    assert dataset.labels == ("with_mask", "without_mask", "mask_weared_incorrect")
    assert not dataset.is_two_class


def test_unknown_class_folder_is_an_error_naming_it(tmp_path):
    _write_image(tmp_path / "with_mask" / "a.jpg")
    _write_image(tmp_path / "sunglasses" / "b.jpg")
    with pytest.raises(DatasetError, match="sunglasses"):
        read_class_folders(tmp_path)


def test_empty_or_missing_dataset_is_an_error(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        read_class_folders(tmp_path / "nope")
    (tmp_path / "with_mask").mkdir()
    with pytest.raises(DatasetError, match="no images"):
        read_class_folders(tmp_path)


def _voc_folder(root: Path) -> Path:
    _write_image(root / "images" / "scene1.jpg", height=100, width=200)
    (root / "annotations").mkdir(parents=True)
    (root / "annotations" / "scene1.xml").write_text(VOC_XML.format(filename="scene1.png"))  # wrong extension
    return root


def test_voc_scenes_skip_thin_boxes_and_map_labels(tmp_path):
    root = _voc_folder(tmp_path)
    assert is_voc_scene_folder(root)
    (scene,) = read_voc_scenes(root)
    assert scene.image == root / "images" / "scene1.jpg"
    assert (scene.width, scene.height) == (200, 100)
    assert [(f.label, f.box) for f in scene.faces] == [
        ("with_mask", (10.0, 10.0, 50.0, 60.0)),
        ("without_mask", (120.0, 20.0, 150.0, 52.0)),
    ]


def test_voc_missing_image_is_an_error(tmp_path):
    (tmp_path / "annotations").mkdir()
    (tmp_path / "images").mkdir()
    (tmp_path / "annotations" / "x.xml").write_text(VOC_XML.format(filename="x.jpg"))
    with pytest.raises(DatasetError, match="image"):
        read_voc_scenes(tmp_path)


def test_face_sizes_are_box_height_or_image_height(tmp_path):
    spec = PreprocessSpec(input_size=24)
    voc = _voc_folder(tmp_path / "voc")
    _write_image(tmp_path / "crops" / "with_mask" / "a.jpg", height=70, width=50)
    samples = face_samples(voc) + face_samples(tmp_path / "crops")
    rows = list(iter_face_crops(samples, spec))
    assert [height for _, _, height in rows] == [50, 32, 70]
    assert all(crop.shape == (24, 24, 3) and crop.dtype == np.uint8 for _, crop, _ in rows)
