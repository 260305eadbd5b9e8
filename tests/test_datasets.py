"""Dataset readers on tiny folders written by the tests."""

import logging
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
    jpeg_is_truncated,
    load_image_bgr,
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
        ("WithMask", "with_mask"),  # Kaggle "Face Mask 12K": CamelCase folders
        ("WithoutMask", "without_mask"),
        ("withoutmask", "without_mask"),
        ("NoMask", "without_mask"),
        ("IncorrectMask", "mask_weared_incorrect"),  # CamelCase split: incorrect_mask
        ("MaskWornIncorrectly", "mask_weared_incorrect"),
        ("CMFD", "with_mask"),  # MaskedFace-Net: correctly / incorrectly masked face dataset
        ("IMFD", "mask_weared_incorrect"),
        ("face_with_mask", "with_mask"),  # Kaggle "Face Mask Detection" classes
        ("face_no_mask", "without_mask"),
        ("face_with_mask_incorrect", "mask_weared_incorrect"),
        ("mask_incorrect", "mask_weared_incorrect"),
        ("Improper Mask", "mask_weared_incorrect"),
        ("incorrectly_worn", "mask_weared_incorrect"),
        ("mask-incorrectly-worn", "mask_weared_incorrect"),
        ("partial_mask", "mask_weared_incorrect"),
        ("AFDB_masked_face_dataset", "with_mask"),  # RMFD, a folder per person below each
        ("AFDB_face_dataset", "without_mask"),
        ("cats", None),
        ("hat", None),  # the Kaggle set's non-face classes stay unknown
        ("mask_surgical", None),
        ("face_other_covering", None),  # a scarf or a hand: not a mask label
        ("masked_face", "with_mask"),
        ("Unmasked Face", "without_mask"),
        ("face_mask", "with_mask"),  # AIZOO's masked class (its unmasked one, `face`, stays unknown)
        ("no_face_mask", "without_mask"),
        ("mask_weared_incorrectly", "mask_weared_incorrect"),
        ("face", None),
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


def test_nested_class_folders_are_read_recursively_and_hidden_files_left_out(tmp_path):
    _write_image(tmp_path / "CMFD" / "01000" / "b.jpg")  # MaskedFace-Net / RMFD: a folder per batch or person
    _write_image(tmp_path / "CMFD" / "00000" / "a.jpg")
    _write_image(tmp_path / "CMFD" / "00000" / "deeper" / "c.png")
    _write_image(tmp_path / "CMFD" / "top.jpg")
    _write_image(tmp_path / "IMFD" / "person" / "d.JPG")
    _write_image(tmp_path / "IMFD" / ".thumbnails" / "e.jpg")
    _write_image(tmp_path / "IMFD" / ".f.jpg")
    _write_image(tmp_path / "IMFD" / "__MACOSX" / "person" / "d.JPG")  # a zip unpacked inside the folder
    (tmp_path / "IMFD" / "person" / "._d.JPG").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    _write_image(tmp_path / "__MACOSX" / "CMFD" / "._a.jpg")
    _write_image(tmp_path / ".cache" / "x.jpg")
    dataset = read_class_folders(tmp_path)
    assert dataset.labels == ("with_mask", "mask_weared_incorrect")
    assert [(s.image.relative_to(tmp_path).as_posix(), s.label) for s in dataset.samples] == [
        ("CMFD/00000/a.jpg", "with_mask"),
        ("CMFD/00000/deeper/c.png", "with_mask"),
        ("CMFD/01000/b.jpg", "with_mask"),
        ("CMFD/top.jpg", "with_mask"),
        ("IMFD/person/d.JPG", "mask_weared_incorrect"),
    ]


def test_unknown_class_folder_with_images_only_in_sub_folders_is_still_an_error(tmp_path):
    _write_image(tmp_path / "with_mask" / "a.jpg")
    _write_image(tmp_path / "faces_of_staff" / "person" / "b.jpg")
    with pytest.raises(DatasetError, match="faces_of_staff"):
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


def test_pascal_voc_layout_annotations_and_jpegimages(tmp_path):
    _write_image(tmp_path / "JPEGImages" / "scene1.jpg", height=100, width=200)
    (tmp_path / "Annotations").mkdir()
    (tmp_path / "Annotations" / "scene1.xml").write_text(VOC_XML.format(filename="scene1.jpg"))
    (tmp_path / "Annotations" / "._scene1.xml").write_bytes(b"\x00\x05\x16\x07 not xml")  # AppleDouble
    (tmp_path / "ImageSets" / "Main").mkdir(parents=True)
    assert is_voc_scene_folder(tmp_path)
    (scene,) = read_voc_scenes(tmp_path)
    assert scene.image == tmp_path / "JPEGImages" / "scene1.jpg"
    assert [f.label for f in scene.faces] == ["with_mask", "without_mask"]


@pytest.mark.parametrize("images", ["Images", "images", "Annotations"])
def test_voc_images_in_images_folder_of_any_case_or_beside_the_xml(tmp_path, images):
    _write_image(tmp_path / images / "scene1.jpg", height=100, width=200)
    (tmp_path / "Annotations").mkdir(exist_ok=True)
    (tmp_path / "Annotations" / "scene1.xml").write_text(VOC_XML.format(filename="scene1.jpg"))
    (scene,) = read_voc_scenes(tmp_path)
    assert scene.image == tmp_path / images / "scene1.jpg"


def test_voc_xml_and_images_side_by_side_in_the_root(tmp_path):
    _write_image(tmp_path / "scene1.JPG", height=100, width=200)  # Roboflow's flat export
    (tmp_path / "scene1.xml").write_text(VOC_XML.format(filename="scene1.jpeg"))
    assert is_voc_scene_folder(tmp_path)
    (scene,) = read_voc_scenes(tmp_path)
    assert scene.image == tmp_path / "scene1.JPG"


def test_a_non_voc_xml_beside_class_folders_does_not_make_a_voc_folder(tmp_path):
    _write_image(tmp_path / "with_mask" / "a.jpg")
    (tmp_path / "haarcascade_frontalface_default.xml").write_text("<opencv_storage></opencv_storage>")
    assert not is_voc_scene_folder(tmp_path)
    assert [s.label for s in face_samples(tmp_path)] == ["with_mask"]


def test_unknown_voc_objects_are_skipped_with_one_warning_counting_them(tmp_path, caplog):
    other = "<object><name>{}</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>9</xmax><ymax>9</ymax></bndbox></object>"
    for i, names in enumerate((["hat", "mask_surgical"], ["hat", "hat"], [])):
        _write_image(tmp_path / "images" / f"s{i}.jpg", height=100, width=200)
        xml = VOC_XML.format(filename=f"s{i}.jpg").replace(
            "</annotation>", "".join(other.format(n) for n in names) + "</annotation>"
        )
        (tmp_path / "annotations").mkdir(exist_ok=True)
        (tmp_path / "annotations" / f"s{i}.xml").write_text(xml)
    with caplog.at_level(logging.WARNING, logger="edge.datasets"):
        scenes = read_voc_scenes(tmp_path)
    thin = "mask_weared_incorrect (box under 2 px)"  # VOC_XML's 1 px wide box: no face, but counted
    assert [scene.skipped for scene in scenes] == [
        (thin, "hat", "mask_surgical"),
        (thin, "hat", "hat"),
        (thin,),
    ]
    assert all(len(scene.faces) == 2 for scene in scenes)
    (record,) = caplog.records
    assert "skipped 7 objects" in record.getMessage()
    assert f"{thin} 3, hat 3, mask_surgical 1" in record.getMessage()


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


def _jpeg_bytes(height: int = 48, width: int = 40, **params) -> bytes:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    flags = [flag for key, value in params.items() for flag in (getattr(cv2, key), value)]
    return cv2.imencode(".jpg", image, flags)[1].tobytes()


def _with_exif_thumbnail(data: bytes) -> bytes:
    """The JPEG with an APP1 segment after its start marker that holds a small JPEG (own scan and end marker)."""
    payload = b"Exif\x00\x00" + _jpeg_bytes(8, 8)
    return data[:2] + b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload + data[2:]


@pytest.mark.parametrize(
    "data",
    [
        _jpeg_bytes(),
        _jpeg_bytes(IMWRITE_JPEG_PROGRESSIVE=1),
        _jpeg_bytes(IMWRITE_JPEG_RST_INTERVAL=1),
        _with_exif_thumbnail(_jpeg_bytes()),
    ],
    ids=["baseline", "progressive", "restart-markers", "exif-thumbnail"],
)
def test_jpeg_truncation_is_found_at_any_cut_and_a_whole_file_passes(data):
    assert not jpeg_is_truncated(data)
    assert not jpeg_is_truncated(data + b"appended \xff\xd8 trailer")  # bytes after the end marker
    assert not jpeg_is_truncated(data[:2] + b"junk" + data[2:])  # not a cut: left to the decoder
    assert all(jpeg_is_truncated(data[:cut]) for cut in range(2, len(data) - 1))


def test_unreadable_images_are_errors_that_name_the_file(tmp_path):
    good = tmp_path / "good.jpg"
    good.write_bytes(_jpeg_bytes())
    assert load_image_bgr(good).shape == (48, 40, 3)
    cases = {
        "empty.jpg": (b"", "empty"),
        "junk.png": (b"this is not an image" * 20, "decode"),
        "cut.jpg": (_jpeg_bytes()[:-300], "truncated"),
    }
    for name, (data, why) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(DatasetError, match=f"{name}.*{why}"):
            load_image_bgr(tmp_path / name)
    with pytest.raises(DatasetError, match="missing.jpg"):
        load_image_bgr(tmp_path / "missing.jpg")


def test_split_folders_are_read_as_one_dataset_with_the_union_of_labels(tmp_path):
    _write_image(tmp_path / "train" / "mask" / "a.jpg")
    _write_image(tmp_path / "train" / "no_mask" / "b.jpg")
    _write_image(tmp_path / "Test" / "incorrect" / "c.jpg")
    dataset = read_class_folders(tmp_path)
    assert dataset.labels == ("with_mask", "without_mask", "mask_weared_incorrect")
    assert sorted(s.image.name for s in dataset.samples) == ["a.jpg", "b.jpg", "c.jpg"]
    assert not is_voc_scene_folder(tmp_path)


def test_a_split_folder_beside_a_label_folder_is_still_an_unknown_label(tmp_path):
    _write_image(tmp_path / "train" / "mask" / "a.jpg")
    _write_image(tmp_path / "mask" / "b.jpg")
    with pytest.raises(DatasetError, match="train"):
        read_class_folders(tmp_path)


def test_voc_splits_are_a_voc_folder_and_every_split_is_read(tmp_path):
    for split in ("train", "valid", "test"):
        _write_image(tmp_path / split / f"{split}.jpg", height=100, width=200)
        (tmp_path / split / f"{split}.xml").write_text(VOC_XML.format(filename=f"{split}.jpg"))
    assert is_voc_scene_folder(tmp_path)
    scenes = read_voc_scenes(tmp_path)
    assert sorted(scene.image.name for scene in scenes) == ["test.jpg", "train.jpg", "valid.jpg"]
    assert len(face_samples(tmp_path)) == 6  # two faces each; the 1 px box is dropped


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims `width` x `height` pixels, with almost no pixel data behind it."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 9))
        + chunk(b"IEND", b"")
    )


def test_an_image_whose_header_claims_too_many_pixels_is_unreadable_not_a_crash(tmp_path):
    """OpenCV raises cv2.error for it (past its pixel limit) instead of returning None as for other damage."""
    path = tmp_path / "huge.png"
    path.write_bytes(_png_claiming(60000, 60000))
    with pytest.raises(DatasetError, match="huge.png"):
        load_image_bgr(path)


def test_jfif_jpe_and_tiff_files_are_images_in_any_case(tmp_path):
    """Scraped datasets carry JPEGs named .jfif or .jpe and scans as .tif: OpenCV reads them all."""
    image = np.full((40, 30, 3), 100, np.uint8)
    jpeg, tiff = cv2.imencode(".jpg", image)[1].tobytes(), cv2.imencode(".tif", image)[1].tobytes()
    for name, data in (("a.jfif", jpeg), ("b.JPE", jpeg), ("c.TIF", tiff), ("d.tiff", tiff)):
        (tmp_path / "mask").mkdir(exist_ok=True)
        (tmp_path / "mask" / name).write_bytes(data)
    dataset = read_class_folders(tmp_path)
    assert [s.image.name for s in dataset.samples] == ["a.jfif", "b.JPE", "c.TIF", "d.tiff"]
    assert all(load_image_bgr(s.image).shape == (40, 30, 3) for s in dataset.samples)


def test_linked_sub_folders_are_followed_once_and_a_link_loop_ends(tmp_path):
    _write_image(tmp_path / "elsewhere" / "batch" / "a.jpg")
    _write_image(tmp_path / "data" / "with_mask" / "b.jpg")
    (tmp_path / "data" / "with_mask" / "batch").symlink_to(tmp_path / "elsewhere" / "batch")
    (tmp_path / "data" / "with_mask" / "loop").symlink_to(tmp_path / "data" / "with_mask")
    dataset = read_class_folders(tmp_path / "data")
    assert sorted(s.image.name for s in dataset.samples) == ["a.jpg", "b.jpg"]


def _voc_scene_with(objects: str, root: Path) -> Path:
    _write_image(root / "images" / "s.jpg", height=100, width=200)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / "annotations" / "s.xml").write_text(
        f"<annotation><filename>s.jpg</filename><size><width>200</width><height>100</height></size>{objects}</annotation>"
    )
    return root


BOX = "<object><name>{}</name><bndbox><xmin>{}</xmin><ymin>{}</ymin><xmax>{}</xmax><ymax>{}</ymax></bndbox></object>"


def test_a_voc_box_drawn_corner_to_corner_backwards_is_kept_in_order(tmp_path):
    root = _voc_scene_with(
        BOX.format("mask", 50.5, 60, 10, 10.0) + BOX.format("no_mask", 1, 2, 1, 9), tmp_path
    )
    (scene,) = read_voc_scenes(root)
    assert [(f.label, f.box) for f in scene.faces] == [("with_mask", (10.0, 10.0, 50.5, 60.0))]


def test_voc_objects_without_a_usable_box_are_skipped_and_counted_not_fatal(tmp_path, caplog):
    objects = (
        BOX.format("mask", 10, 10, 50, 60)
        + "<object><name>no_mask</name><pose>Frontal</pose></object>"  # no <bndbox>
        + BOX.format("no_mask", "", 10, 50, 60)
        + BOX.format("no_mask", "nan", 10, 50, 60)
    )
    with caplog.at_level(logging.WARNING, logger="edge.datasets"):
        (scene,) = read_voc_scenes(_voc_scene_with(objects, tmp_path))
    assert [f.label for f in scene.faces] == ["with_mask"]
    assert len(scene.skipped) == 3 and all(name.startswith("no_mask") for name in scene.skipped)
    assert "skipped 3 objects" in caplog.text


def test_voc_folder_whose_objects_have_no_face_label_we_know_is_an_error_naming_them(tmp_path):
    """Every box skipped would score the detector against no faces at all: numbers, but meaningless."""
    root = _voc_scene_with(
        BOX.format("person", 10, 10, 50, 60) + BOX.format("head", 60, 10, 90, 60), tmp_path
    )
    with pytest.raises(DatasetError, match="person 1, head 1|head 1, person 1"):
        read_voc_scenes(root)


def test_an_empty_split_folder_is_left_out_not_an_error(tmp_path):
    """Exports often ship an empty valid/ or test/: the splits that have images are the dataset."""
    _write_image(tmp_path / "train" / "mask" / "a.jpg")
    _write_image(tmp_path / "train" / "no_mask" / "b.jpg")
    (tmp_path / "valid").mkdir()
    (tmp_path / "test" / "mask").mkdir(parents=True)
    dataset = read_class_folders(tmp_path)
    assert [s.image.name for s in dataset.samples] == ["a.jpg", "b.jpg"] and dataset.is_two_class


def test_an_empty_split_beside_voc_splits_is_left_out(tmp_path):
    _write_image(tmp_path / "train" / "s.jpg", height=100, width=200)
    (tmp_path / "train" / "s.xml").write_text(VOC_XML.format(filename="s.jpg"))
    (tmp_path / "valid").mkdir()
    (tmp_path / "valid" / ".DS_Store").write_bytes(b"Bud1")
    assert is_voc_scene_folder(tmp_path)
    assert [scene.image.name for scene in read_voc_scenes(tmp_path)] == ["s.jpg"]


def test_a_namespaced_voc_annotation_reads_like_a_plain_one(tmp_path):
    """`<annotation xmlns=...>` puts every tag in a namespace; read as is, it held no objects at all."""
    _write_image(tmp_path / "images" / "s.jpg", height=100, width=200)
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "s.xml").write_text(
        VOC_XML.format(filename="s.jpg").replace(
            "<annotation>", '<annotation xmlns="http://example.org/voc">', 1
        )
    )
    (scene,) = read_voc_scenes(tmp_path)
    assert scene.image.name == "s.jpg" and (scene.width, scene.height) == (200, 100)
    assert [f.label for f in scene.faces] == ["with_mask", "without_mask"]


def test_difficult_faces_and_unscored_objects_are_ignore_regions_not_faces(tmp_path):
    objects = (
        BOX.format("mask", 10, 10, 50, 60)
        + BOX.format("no_mask", 60, 10, 90, 60).replace("<bndbox>", "<difficult>1</difficult><bndbox>")
        + BOX.format("face_other_covering", 100, 10, 140, 60)
        + BOX.format("no_mask", 150, 10, 190, 60).replace("<bndbox>", "<difficult>0</difficult><bndbox>")
    )
    (scene,) = read_voc_scenes(_voc_scene_with(objects, tmp_path))
    assert [(f.label, f.box) for f in scene.faces] == [
        ("with_mask", (10.0, 10.0, 50.0, 60.0)),
        ("without_mask", (150.0, 10.0, 190.0, 60.0)),
    ]
    assert scene.ignored == ((60.0, 10.0, 90.0, 60.0), (100.0, 10.0, 140.0, 60.0))
    assert sorted(scene.skipped) == ["face_other_covering", "no_mask (difficult)"]


def test_files_that_are_no_image_or_lie_in_no_class_folder_are_listed_and_counted_in_a_warning(
    tmp_path, caplog
):
    _write_image(tmp_path / "train" / "mask" / "a.jpg")
    (tmp_path / "train" / "mask" / "labels.csv").write_text("a.jpg,mask\n")
    _write_image(tmp_path / "test" / "no_mask" / "b.jpg")
    (tmp_path / "test" / "no_mask" / "notes").write_text("no suffix")
    _write_image(tmp_path / "test" / "stray.png")  # an image beside the class folders
    (tmp_path / "test" / "no_mask" / ".DS_Store").write_bytes(b"Bud1")  # hidden: not data, not counted
    with caplog.at_level(logging.WARNING, logger="edge.datasets"):
        dataset = read_class_folders(tmp_path)
    assert [s.image.name for s in dataset.samples] == ["a.jpg", "b.jpg"]
    assert sorted(p.name for p in dataset.left_out) == ["labels.csv", "notes", "stray.png"]
    assert "left out 3 files" in caplog.text and ".csv 1" in caplog.text and "(no suffix) 1" in caplog.text


def test_an_unusable_voc_annotation_is_an_error_or_collected_when_asked(tmp_path):
    root = _voc_folder(tmp_path)
    (root / "annotations" / "gone.xml").write_text(VOC_XML.format(filename="gone.jpg"))
    (root / "annotations" / "broken.xml").write_text("<annotation><object>")
    with pytest.raises(DatasetError, match="broken.xml: not valid XML"):
        read_voc_scenes(root)
    unusable = []
    (scene,) = read_voc_scenes(root, unusable)
    assert scene.image.name == "scene1.jpg"
    assert [(xml.name, "image is not in" in why or "not valid XML" in why) for xml, why in unusable] == [
        ("broken.xml", True),
        ("gone.xml", True),
    ]
