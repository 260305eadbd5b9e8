"""VOC boxes are moved into the pixels of the photo OpenCV decodes when `<size>` shows they were drawn on
other ones: a phone JPEG's stored pixels before EXIF turns it upright, or the photo before a resize."""

from __future__ import annotations

import logging
import os
import struct
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.datasets import FaceSample, Scene, load_image_bgr
from edge.scene_photo import AS_ANNOTATED, EXIF_TURNED, RESCALED, SIZE_DISAGREES, load_scene_photo

UPRIGHT_BOX = (40, 20, 100, 100)  # a face in the 300x120 upright photo, x2/y2 exclusive

# EXIF orientation tag -> how the stored pixels were made from the upright photo (the inverse of what a
# viewer applies to show them upright)
STORED_FROM_UPRIGHT = {
    2: lambda im: cv2.flip(im, 1),
    3: lambda im: cv2.rotate(im, cv2.ROTATE_180),
    4: lambda im: cv2.flip(im, 0),
    5: cv2.transpose,
    6: lambda im: cv2.rotate(im, cv2.ROTATE_90_COUNTERCLOCKWISE),
    7: lambda im: cv2.rotate(cv2.transpose(im), cv2.ROTATE_180),
    8: lambda im: cv2.rotate(im, cv2.ROTATE_90_CLOCKWISE),
}


def with_exif_orientation(jpeg: bytes, orientation: int) -> bytes:
    """The JPEG with an APP1 EXIF segment holding only the orientation tag (0x0112), as phones write it."""
    tiff = b"MM\x00\x2a" + struct.pack(">I", 8) + struct.pack(">H", 1)
    tiff += struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack(">I", 0)
    app1 = b"Exif\x00\x00" + tiff
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + jpeg[2:]


def upright_photo() -> np.ndarray:
    """300x120 with a textured face-sized patch at UPRIGHT_BOX, so every turn of it looks different."""
    rng = np.random.default_rng(0)
    photo = np.full((120, 300, 3), 90, np.uint8)
    x1, y1, x2, y2 = UPRIGHT_BOX
    photo[y1:y2, x1:x2] = rng.integers(0, 255, (y2 - y1, x2 - x1, 3), dtype=np.uint8)
    photo[:10, :30] = 255  # a bright corner: flips are told apart
    return photo


def box_of_mask(mask: np.ndarray) -> tuple[float, float, float, float]:
    ys, xs = np.nonzero(mask)
    return float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)


def stored_scene(tmp_path: Path, orientation: int) -> Scene:
    """A JPEG stored turned with its EXIF orientation set, annotated on the stored pixels (LabelImg)."""
    turn = STORED_FROM_UPRIGHT[orientation]
    stored = turn(upright_photo())
    mask = np.zeros((120, 300), np.uint8)
    x1, y1, x2, y2 = UPRIGHT_BOX
    mask[y1:y2, x1:x2] = 1
    stored_box = box_of_mask(turn(mask))
    ok, jpeg = cv2.imencode(".jpg", stored, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    path = tmp_path / f"phone_{orientation}.jpg"
    path.write_bytes(with_exif_orientation(jpeg.tobytes(), orientation))
    height, width = stored.shape[:2]
    return Scene(path, width, height, (FaceSample(path, "without_mask", stored_box),), ignored=(stored_box,))


@pytest.mark.parametrize("orientation", [5, 6, 7, 8])
def test_boxes_drawn_on_stored_pixels_are_turned_with_the_photo(tmp_path, orientation):
    scene = stored_scene(tmp_path, orientation)
    assert load_image_bgr(scene.image).shape[:2] == (120, 300)  # OpenCV turns the photo upright

    photo = load_scene_photo(scene)

    assert photo.fit == EXIF_TURNED
    assert photo.image.shape[:2] == (120, 300)
    assert (photo.scene.width, photo.scene.height) == (300, 120)
    assert photo.scene.faces[0].box == pytest.approx(UPRIGHT_BOX)
    assert photo.scene.ignored[0] == pytest.approx(UPRIGHT_BOX)
    assert photo.scene.faces[0].label == "without_mask"


def test_a_photo_annotated_upright_is_left_alone(tmp_path):
    """<size> already the upright photo's: the annotator saw what OpenCV decodes."""
    scene = stored_scene(tmp_path, 6)
    upright = Scene(scene.image, 300, 120, (FaceSample(scene.image, "with_mask", UPRIGHT_BOX),))
    photo = load_scene_photo(upright)
    assert photo.fit == AS_ANNOTATED and photo.scene is upright


def test_boxes_of_a_photo_resized_after_annotation_are_scaled(tmp_path):
    path = tmp_path / "small.png"
    cv2.imwrite(str(path), upright_photo())
    big_box = tuple(2.0 * v for v in UPRIGHT_BOX)  # annotated at 600x240
    photo = load_scene_photo(Scene(path, 600, 240, (FaceSample(path, "with_mask", big_box),)))
    assert photo.fit == RESCALED
    assert photo.scene.faces[0].box == pytest.approx(UPRIGHT_BOX)


def test_a_size_that_is_no_turn_or_resize_is_reported_and_the_boxes_kept(tmp_path, caplog):
    path = tmp_path / "photo.png"
    cv2.imwrite(str(path), upright_photo())
    scene = Scene(path, 500, 500, (FaceSample(path, "with_mask", UPRIGHT_BOX),))
    with caplog.at_level(logging.WARNING):
        photo = load_scene_photo(scene)
    assert photo.fit == SIZE_DISAGREES and photo.scene.faces[0].box == UPRIGHT_BOX
    assert "annotated as 500x500, but the photo is 300x120" in caplog.text


def test_a_square_photo_turned_by_exif_cannot_be_told_and_is_taken_as_annotated(tmp_path):
    """Same width and height either way: <size> says nothing, so the boxes are taken as written."""
    path = tmp_path / "square.jpg"
    ok, jpeg = cv2.imencode(".jpg", np.zeros((100, 100, 3), np.uint8))
    path.write_bytes(with_exif_orientation(jpeg.tobytes(), 6))
    photo = load_scene_photo(Scene(path, 100, 100, (FaceSample(path, "with_mask", (10, 10, 50, 60)),)))
    assert photo.fit == AS_ANNOTATED


def test_a_gif_is_read_in_bgr_on_every_opencv():
    """OpenCV's imread reads GIF from 4.11 only; the Pi's apt OpenCV 4.6 goes through its video reader."""
    image = load_image_bgr(Path(__file__).parent / "data" / "with_mask_red.gif")  # RGB (220, 40, 40)
    assert image.shape == (64, 64, 3)
    assert tuple(int(v) for v in image[32, 32]) == (40, 40, 220)


def test_a_gif_whose_name_is_not_utf8_is_read_on_every_opencv(tmp_path):
    """OpenCV 4.6's video reader, the Pi's way to GIFs, crashed the process (SIGSEGV) on such a name:
    run in a child process."""
    name = os.path.join(os.fsencode(tmp_path), b"old card \xff.gif")
    with open(name, "wb") as f:
        f.write((Path(__file__).parent / "data" / "with_mask_red.gif").read_bytes())
    code = (
        "import sys\n"
        "from edge.datasets import load_image_bgr\n"
        "image = load_image_bgr(sys.argv[1])\n"
        "print(image.shape, tuple(int(v) for v in image[32, 32]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, os.fsdecode(name)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "(64, 64, 3) (40, 40, 220)"
