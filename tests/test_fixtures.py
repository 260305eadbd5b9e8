"""Fixture helpers: the sample photo ships in scikit-image, its measured face is right, frames are as asked."""

from __future__ import annotations

from itertools import pairwise

import cv2
import numpy as np
import pytest

from edge.synth.scene import ASTRONAUT_BOX, ASTRONAUT_KEYPOINTS, approach, sample_image_path
from tests.fixtures import (
    astronaut_face,
    empty_frames,
    entrance_frame,
    masked,
    person_passes,
    walking_towards_camera,
    write_frames,
)


def test_sample_photo_is_the_one_bundled_in_the_scikit_image_wheel():
    """skimage.data.astronaut() reads the same file from the wheel: nothing is downloaded."""
    data = pytest.importorskip("skimage.data")
    path = sample_image_path()
    assert path.parent.name == "data" and path.parent.parent.name == "skimage"
    bundled = data.astronaut()  # RGB
    assert np.array_equal(cv2.imread(str(path))[:, :, ::-1], bundled)
    ours = astronaut_face().image[:512]  # BGR, badges painted over, body extension below row 512
    assert np.array_equal(ours[:150], cv2.imread(str(path))[:150])  # the face is untouched


def test_measured_keypoints_match_the_detector():
    """The hand-measured box and keypoints agree with our BlazeFace detector (skipped until it is installed)."""
    faces = pytest.importorskip("edge.faces")
    try:
        detector = faces.FaceDetector()
    except (FileNotFoundError, ImportError) as missing:  # models not fetched, or no TFLite runtime
        pytest.skip(f"detector not installed: {missing}")
    found = detector.detect(np.ascontiguousarray(astronaut_face().image[:512]))
    assert found, "the detector found no face in the astronaut photo"
    face = max(found, key=lambda f: f.score)
    height = ASTRONAUT_BOX[3] - ASTRONAUT_BOX[1]
    np.testing.assert_allclose(face.box, ASTRONAUT_BOX, atol=0.15 * height)
    found_points, measured = np.array(face.keypoints), np.array(ASTRONAUT_KEYPOINTS)
    np.testing.assert_allclose(found_points[:4], measured[:4], atol=0.1 * height)  # eyes, nose, mouth
    # ear points are BlazeFace's least certain (hers are under her hair): the pyramid's fine pass puts
    # the left one 14 px (0.15 face heights) above the short-range model's
    np.testing.assert_allclose(found_points[4:], measured[4:], atol=0.2 * height)


def test_masked_faces_keep_the_geometry_and_carry_the_label():
    bare, on_chin = masked(None), masked("on_chin")
    assert bare.label == "without_mask" and masked("correct").label == "with_mask"
    assert on_chin.label == "mask_weared_incorrect" and on_chin.keypoints == bare.keypoints
    assert not np.array_equal(on_chin.image, bare.image)
    assert masked("correct") is masked("correct")  # cached: cheap to call in every test


def test_entrance_frame_puts_the_face_where_asked():
    frame, face = entrance_frame("correct", face_px=100, centre=(200, 260))
    assert frame.shape == (480, 640, 3) and frame.dtype == np.uint8
    x1, y1, x2, y2 = face.box
    assert y2 - y1 == pytest.approx(100, abs=0.5)
    assert ((x1 + x2) / 2, (y1 + y2) / 2) == pytest.approx((200, 260), abs=0.5)
    assert face.label == "with_mask"
    x, y = (int(v) for v in face.keypoints[3])
    b, _, r = frame[y, x].astype(int)
    assert b > r + 30  # the blue mask is over the mouth in the frame itself


def test_mirrored_person_has_mirrored_keypoints():
    frame, face = entrance_frame(None, face_px=120, centre=(320, 240), mirrored=True)
    right_eye, left_eye = face.keypoints[0], face.keypoints[1]
    assert right_eye[0] < left_eye[0]  # the detector's "right eye" is still on the image's left
    original = astronaut_face()
    assert abs(right_eye[1] - left_eye[1]) == pytest.approx(
        abs(original.keypoints[0][1] - original.keypoints[1][1])
        * 120
        / (ASTRONAUT_BOX[3] - ASTRONAUT_BOX[1]),
        abs=0.5,
    )


def test_small_faces_are_shrunk_without_losing_the_truth():
    frame, face = entrance_frame(None, face_px=30, centre=(100, 100))
    assert face.box[3] - face.box[1] == pytest.approx(30, abs=0.5)
    x1, y1, x2, y2 = (int(v) for v in face.box)
    assert frame[y1:y2, x1:x2].std() > 10  # a face, not the flat wall


def test_walk_grows_the_face_and_person_passes_brackets_it_with_empty_frames():
    clip = walking_towards_camera("below_nose", n_frames=10, start_px=50, end_px=150)
    heights = [faces[0].height for faces in clip.faces]
    assert heights[0] == pytest.approx(50, abs=0.5) and heights[-1] == pytest.approx(150, abs=0.5)
    assert all(b > a for a, b in pairwise(heights))
    passes = person_passes(None, lead=3, walk=6, tail=2)
    assert len(passes) == 11 and passes.first_face == 3
    assert passes.faces[:3] == [(), (), ()] and passes.faces[-2:] == [(), ()]
    assert np.array_equal(passes.frames[0], empty_frames(1)[0])


def test_approach_speeds_up_as_the_person_nears():
    path = approach(5, 40.0, 200.0, (0.0, 0.0), (100.0, 0.0))
    growth = np.diff([height for height, _ in path])
    assert all(b > a for a, b in pairwise(growth))
    assert path[0][1] == (0.0, 0.0) and path[-1][1] == pytest.approx((100.0, 0.0))
    with pytest.raises(ValueError):
        approach(0, 40.0, 200.0, (0.0, 0.0), (1.0, 1.0))


def test_write_frames_round_trips_in_order(tmp_path):
    frames = [entrance_frame(None, face_px=60 + 20 * i)[0] for i in range(3)]
    paths = write_frames(frames, tmp_path / "clip")
    assert [p.name for p in paths] == ["0000.png", "0001.png", "0002.png"]
    for path, frame in zip(sorted((tmp_path / "clip").iterdir()), frames, strict=True):
        assert np.array_equal(cv2.imread(str(path)), frame)
